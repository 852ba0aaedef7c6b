"""Broker failures under sustained HTTP load on the three-node cluster, every reading counted by (sensor_id, seq).

The real register, ingest-http (whose gate admits every reading), sink and an anomaly worker run as processes
(citystream.bench), the load is the benchmark's (`http_load` at a fixed rate). Steady load, then: SIGKILL the node
leading most readings partitions and, while it is down, overflow probe bins (citystream.bench.alerts); restart it,
wait until its replicas are back in sync; SIGTERM the node then leading most, restart it; then two nodes down, when
no write can reach min.insync.replicas = 2: every batch must be answered 503 with Retry-After, none 2xx and none
500; both back, load again. At the end every reading that got a 2xx is stored exactly once in TimescaleDB (lost 0,
duplicates 0) and every probe's overflow alert is stored once. The figures (ack p50/p99 during each failover,
seconds until the acknowledged rate is back, lost, duplicates, probes) are printed as one JSON line and saved as
chaos.json under the test's tmp dir; docs/benchmarks.md records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field

import asyncpg
import httpx
import orjson
import pytest

from citystream.bench import accounting
from citystream.bench.alerts import ProbeResult, alert_latency
from citystream.bench.fleet import BenchFleet, register_fleet
from citystream.bench.load import LoadResult, http_load, percentile
from citystream.bench.processes import Service, anomaly_group, platform_services
from citystream.devenv import kafka
from citystream.simulate.clients import RegisterClient
from citystream.simulate.settings import LOCAL_ADMIN_TOKEN
from schemas.common import Domain
from schemas.topics import ALERTS, readings_topic
from services.common.kafka import create_topics
from tests.integration.cluster.brokers import admin, busiest_leader, signal_node, wait_in_sync

SENSORS = 200
PROBES = 8  # waste bins that overflow one by one while a node is dead
RATE_PER_S = 2000  # readings/s offered: below what the pipeline takes on two busy cores, so a dip is the failure's
BATCH = 100
CONNECTIONS = 8
SEQ_BASE = 3 * 10**12  # this test's seq range in the session's shared database
RECOVERED_SHARE = 0.9  # "full rate": the acknowledged rate over 2 s is back to 90 % of the steady phase's
ANSWER_BOUND_S = 10.0  # every answer, a 503 included, comes within this (the ack deadline is 2.5 s)
ADMITTED = 'citystream_ingest_readings_total{domain="traffic",outcome="admitted",path="http",reason=""}'


@dataclass
class Timeline:
    """The ingest's admitted-readings counter sampled every 0.25 s: (wall time, total)."""

    url: str
    samples: list[tuple[float, float]] = field(default_factory=list)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                try:
                    text = (await client.get(self.url + "/metrics")).text
                    line = next((line for line in text.splitlines() if line.startswith(ADMITTED)), None)
                    self.samples.append((time.time(), float(line.rsplit(" ", 1)[1]) if line else 0.0))
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.25)

    def recovered_after(self, since: float, full_per_s: float, window_s: float = 2.0) -> float | None:
        """Seconds from `since` until the acknowledged rate over `window_s` is back to `full_per_s` × the share
        (None: never)."""
        points = [p for p in self.samples if p[0] >= since]
        for i, (at, total) in enumerate(points):
            later = next((p for p in points[i:] if p[0] >= at + window_s), None)
            if later is None:
                return None
            if (later[1] - total) / (later[0] - at) >= RECOVERED_SHARE * full_per_s:
                return round(at - since, 1)
        return None


def _figures(load: LoadResult) -> dict:
    return {"seconds": round(load.seconds, 1), "acked": len(load.accepted_keys),
            "acked_per_s": round(load.acked_per_s),
            "ack_p50_ms": _ms(percentile(load.latencies_ms, 50, load.failed_requests)),
            "ack_p99_ms": _ms(percentile(load.latencies_ms, 99, load.failed_requests)),
            "requests": len(load.latencies_ms) + load.failed_requests, "not_2xx": dict(load.errors)}


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def _load(urls: list[str], fleet: BenchFleet, seconds: float) -> LoadResult:
    return await http_load(urls, fleet, batch=BATCH, connections=CONNECTIONS, duration_s=seconds,
                           seq_base=SEQ_BASE, rate=RATE_PER_S)


async def _wait_admitted(url: str, fleet: BenchFleet) -> LoadResult:
    """The ingest learns the fleet's credentials from the register topic: small batches until one is admitted."""
    merged = LoadResult(started=time.time())
    deadline = time.monotonic() + 60
    while not merged.accepted_keys:
        assert time.monotonic() < deadline, f"no batch admitted in 60 s: {dict(merged.errors)} {merged.rejected}"
        result = await http_load(url, fleet, batch=10, connections=1, duration_s=0.3, seq_base=SEQ_BASE)
        merged.accepted_keys |= result.accepted_keys
        merged.errors.update(result.errors)
        await asyncio.sleep(0.3)
    return merged


async def _two_down_answers(url: str, fleet: BenchFleet, count: int) -> list[tuple[int, str | None, float, set]]:
    """`count` batches while two nodes are down: (status, Retry-After, seconds to the answer, keys) each."""
    answers = []
    async with httpx.AsyncClient(base_url=url, timeout=ANSWER_BOUND_S + 5) as client:
        for _ in range(count):
            credential, payloads, keys, _ = fleet.next_batch(BATCH, SEQ_BASE)
            began = time.monotonic()
            response = await client.post("/v1/readings", content=orjson.dumps({"readings": payloads}),
                                         headers={"Authorization": f"Bearer {credential}",
                                                  "Content-Type": "application/json"})
            answers.append((response.status_code, response.headers.get("retry-after"),
                            time.monotonic() - began, set(keys)))
    return answers


OPENED_OVERFLOWS = """SELECT sensor_id, count(*) AS n FROM alert_events
WHERE kind = 'overflow' AND event_type = 'opened' AND sensor_id = ANY($1) GROUP BY sensor_id"""


async def _overflow_alerts(url: str, sensor_ids: list[str], expected: int) -> dict[str, int]:
    """Opened overflow alerts stored per probe bin, once `expected` bins have one (or 30 s passed)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + 30
        while True:
            rows = await connection.fetch(OPENED_OVERFLOWS, sensor_ids)
            if len(rows) >= expected or time.monotonic() > deadline:
                return {row["sensor_id"]: row["n"] for row in rows}
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


async def _phase(name: str, urls: list[str], fleet: BenchFleet, seconds: float, phases: dict, acked: set,
                 during=None) -> None:
    """Load for `seconds`; `during` (a coroutine) runs alongside, from 1 s in."""
    load = asyncio.create_task(_load(urls, fleet, seconds))
    if during is not None:
        await asyncio.sleep(1.0)
        await during
    result = await load
    acked |= result.accepted_keys
    phases[name] = _figures(result)


@dataclass
class Run:
    """What the scenario did and saw."""

    fleet: BenchFleet
    probes: BenchFleet
    timeline: Timeline
    acked: set[int] = field(default_factory=set)
    phases: dict[str, dict] = field(default_factory=dict)
    events: dict[str, object] = field(default_factory=dict)
    probed: ProbeResult = field(default_factory=ProbeResult)
    answers: list = field(default_factory=list)  # the batches posted while two nodes were down


async def _scenario(cluster, access, services: dict[str, Service], uid: str) -> Run:
    """The failures under load, as the module docstring says, once every service is ready."""
    for service in services.values():
        await asyncio.to_thread(service.wait_ready, 180)
    register = RegisterClient(services["register"].url, LOCAL_ADMIN_TOKEN)
    try:
        fleet = await register_fleet(register, f"chaos{uid}-", SENSORS, Domain.TRAFFIC)
        probes = await register_fleet(register, f"chaosprobe{uid}-", PROBES, Domain.WASTE, seed=12)
    finally:
        await register.close()
    url = services["ingest-http"].url
    run = Run(fleet, probes, Timeline(url))
    run.acked |= (await _wait_admitted(url, fleet)).accepted_keys
    readings_topics = [readings_topic(domain) for domain in Domain]
    in_sync_topics = readings_topics + ["__consumer_offsets"]
    sampler = asyncio.create_task(run.timeline.run())
    events = run.events
    try:
        await _phase("steady", [url], fleet, 8, run.phases, run.acked)

        events["killed"], events["killed_led"] = await busiest_leader(access, readings_topics)

        async def sigkill() -> None:
            events["sigkill_at"] = time.time()
            await asyncio.to_thread(signal_node, cluster, events["killed"], signal.SIGKILL)
            events["sigkill_status"] = kafka.status(cluster)["state"]
            run.probed = await alert_latency(access, ALERTS, url, probes, spacing_s=0.5, settle_s=30)

        await _phase("sigkill", [url], fleet, 20, run.phases, run.acked, sigkill())
        restart_began = time.monotonic()
        await asyncio.to_thread(kafka.start, cluster)
        events["restart_s"] = time.monotonic() - restart_began
        rejoin = asyncio.create_task(_phase("rejoin", [url], fleet, 10, run.phases, run.acked))
        events["in_sync_s"] = await wait_in_sync(access, in_sync_topics, 90)
        await rejoin

        events["stopped"], events["stopped_led"] = await busiest_leader(access, readings_topics)

        async def sigterm() -> None:
            events["sigterm_at"] = time.time()
            await asyncio.to_thread(signal_node, cluster, events["stopped"], signal.SIGTERM)

        await _phase("sigterm", [url], fleet, 15, run.phases, run.acked, sigterm())
        await asyncio.to_thread(kafka.start, cluster)
        await wait_in_sync(access, in_sync_topics, 90)

        # Two of three down: one copy left, below min.insync.replicas = 2 (and the controllers below quorum).
        first, second = [node for node in cluster.kafka_nodes if node != events["killed"]][:2]
        await asyncio.to_thread(signal_node, cluster, first, signal.SIGTERM)
        await asyncio.to_thread(signal_node, cluster, second, signal.SIGKILL)
        run.answers = await _two_down_answers(url, fleet, 6)
        await asyncio.to_thread(kafka.start, cluster)
        await _phase("after_two_down", [url], fleet, 10, run.phases, run.acked)
        run.acked |= {key for status, _, _, keys in run.answers if status == 200 for key in keys}
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    return run


@pytest.mark.timeout(600)  # beside the cluster's start: ~130 s on two busy cores
async def test_broker_failures_under_load_lose_and_duplicate_nothing(cluster, database_url, tmp_path):
    access = admin(cluster)
    uid = uuid.uuid4().hex[:8]
    began, load_average_at_start = time.monotonic(), os.getloadavg()[0]  # the machine may be shared
    await create_topics(access)  # the cluster is this package's alone: the catalogue's own names and ACLs
    services: dict[str, Service] = platform_services(
        bootstrap=access.bootstrap, database_url=database_url, topic_prefix="", run_id=uid,
        logs_dir=tmp_path / "logs", roles=("register", "ingest-http", "ingest-sink"))
    services |= anomaly_group(1, bootstrap=access.bootstrap, database_url=database_url, topic_prefix="",
                              run_id=uid, logs_dir=tmp_path / "logs", app_id=f"chaos-anomaly-{uid}")
    for service in services.values():  # the cluster's admin, not the shared runtime's the session exported
        # Faust's own topics (changelogs) replicated like the catalogue's, or they would die with their one broker.
        service.env = service.env | access.environment() | {"CITYSTREAM_INGEST_RETRY_AFTER_S": "1",
                                                            "TOPIC_REPLICATION_FACTOR": "3"}
    for service in services.values():
        service.start()
    try:
        try:
            run = await _scenario(cluster, access, services, uid)
        finally:  # the sink drains what was acknowledged; everything else stops now
            for service in services.values():
                if service.name != "ingest-sink":
                    await asyncio.to_thread(service.stop)
        fleet, probes, probed, acked = run.fleet, run.probes, run.probed, run.acked
        stored, _ = await accounting.drain(database_url, SEQ_BASE, SEQ_BASE + 10**11, len(acked), timeout_s=120)
        books = await accounting.account(database_url, fleet.sensor_ids, SEQ_BASE, SEQ_BASE + 10**11, acked)
        probe_books = await accounting.account(database_url, probes.sensor_ids, 0, 10, probed.accepted_keys)
        alerts_stored = await _overflow_alerts(database_url, probes.sensor_ids, len(probed.latencies_ms))
    finally:
        await asyncio.to_thread(services["ingest-sink"].stop)

    phases, events, answers, timeline = run.phases, run.events, run.answers, run.timeline
    killed, led = events["killed"], events["killed_led"]
    stopped, stopped_led = events["stopped"], events["stopped_led"]
    restart_s, in_sync_s = events["restart_s"], events["in_sync_s"]
    kill_at, term_at = events["sigkill_at"], events["sigterm_at"]
    full_per_s = phases["steady"]["acked_per_s"]
    result = {
        "offered_per_s": RATE_PER_S, "sensors": SENSORS, "batch": BATCH, "full_rate_per_s": full_per_s,
        "elapsed_s": round(time.monotonic() - began, 1),
        "load_average_1m_at_start": round(load_average_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2), "phases": phases,
        "sigkill": {"node": killed, "readings_partitions_led": led, "ack_p50_ms": phases["sigkill"]["ack_p50_ms"],
                    "ack_p99_ms": phases["sigkill"]["ack_p99_ms"],
                    "recovered_full_rate_s": timeline.recovered_after(kill_at, full_per_s),
                    "restart_s": round(restart_s, 1), "replicas_in_sync_s": round(in_sync_s, 1)},
        "sigterm": {"node": stopped, "readings_partitions_led": stopped_led,
                    "ack_p50_ms": phases["sigterm"]["ack_p50_ms"], "ack_p99_ms": phases["sigterm"]["ack_p99_ms"],
                    "recovered_full_rate_s": timeline.recovered_after(term_at, full_per_s)},
        "two_down": [{"status": status, "retry_after": retry, "answer_s": round(seconds, 2)}
                     for status, retry, seconds, _ in answers],
        "acked": books.acked, "stored": stored, "lost": books.lost, "duplicates": books.duplicates,
        "stored_not_acked": books.unexpected,
        "probes": {"sent": PROBES, "not_admitted": probed.not_admitted, "alerted": len(probed.latencies_ms),
                   "missing": probed.missing,
                   "alert_p50_ms": _ms(percentile(probed.latencies_ms, 50, probed.missing)),
                   "alert_max_ms": _ms(max(probed.latencies_ms, default=None)),
                   "opened_alerts_stored": sorted(alerts_stored.values()), "readings_lost": probe_books.lost},
    }
    (tmp_path / "chaos.json").write_text(json.dumps(result, indent=1))
    print("chaos:", json.dumps(result))

    assert events["sigkill_status"] == "degraded"
    # Never a 500, never a lost answer: a batch is acknowledged (200) or refused whole (503, Retry-After).
    for name, phase in phases.items():
        assert set(phase["not_2xx"]) <= {"HTTP 503"}, (name, phase["not_2xx"])
        assert phase["acked"] > 0, (name, phase)
    assert [status for status, *_ in answers] == [503] * len(answers), result["two_down"]
    assert all(retry == "1" for _, retry, _, _ in answers), result["two_down"]
    assert all(seconds < ANSWER_BOUND_S for _, _, seconds, _ in answers), result["two_down"]
    # The load came back after each failure, and every acknowledged reading is stored exactly once.
    assert result["sigkill"]["recovered_full_rate_s"] is not None, timeline.samples
    assert result["sigterm"]["recovered_full_rate_s"] is not None, timeline.samples
    assert books.lost == 0 and books.duplicates == 0, result
    # Every probe is admitted (one answered 503 while the node was down is sent again after its Retry-After, as a
    # sensor would), alerts, and its overflow alert is stored once (deterministic alert ids).
    assert probed.not_admitted == 0 and probed.missing == 0 and probe_books.lost == 0, result["probes"]
    assert len(probed.latencies_ms) == PROBES, result["probes"]
    assert sorted(alerts_stored.values()) == [1] * len(probed.latencies_ms), result["probes"]
