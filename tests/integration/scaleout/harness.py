"""One platform with two members per stage (two ingest-http processes on one port, two gates, two sinks) for the
kill-one-member tests, and the run those tests share: load, SIGKILL one member, drain, account by (sensor_id, seq)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from citystream.bench import accounting
from citystream.bench.failover import StoredTimeline, backlog_cleared_s, cumulative, rates, recovery_s
from citystream.bench.fleet import BenchFleet, register_fleet
from citystream.bench.load import LoadResult, kafka_load
from citystream.bench.processes import Service, platform_services
from citystream.simulate.clients import RegisterClient
from citystream.simulate.settings import SimulateSettings
from schemas.common import Domain
from schemas.topics import RAW_READINGS
from services.common.settings import KafkaAccess

SEQ_SPAN = 10**11  # each run numbers its readings in its own seq range, so its books are its own
ROLES = ("register", "ingest-http", "ingest-gate", "ingest-sink")
TWO_EACH = {"ingest-http": 2, "ingest-gate": 2, "ingest-sink": 2}
# A joining or leaving member moves partitions: the group settles within a heartbeat or two (3 s each).
SETTLE_S = 5.0


@dataclass
class ScaleOutPlatform:
    kafka: KafkaAccess
    database_url: str
    prefix: str
    run_id: str
    services: dict[str, Service]
    fleet: BenchFleet | None = None

    @property
    def http_url(self) -> str:
        return self.services["ingest-http"].url

    @property
    def raw_topic(self) -> str:
        return self.prefix + RAW_READINGS

    def members(self, role: str) -> list[Service]:
        return [s for s in self.services.values() if s.role == role]

    @classmethod
    def build(cls, kafka: KafkaAccess, database_url: str, logs_dir: Path) -> ScaleOutPlatform:
        run_id = uuid.uuid4().hex[:8]
        prefix = f"test.{run_id}."
        services = platform_services(bootstrap=kafka.bootstrap, database_url=database_url, topic_prefix=prefix,
                                     run_id=run_id, logs_dir=logs_dir, roles=ROLES, instances=TWO_EACH,
                                     shared_http_port=True)
        for service in services.values():  # the test session's broker credentials (its admin)
            service.env.update(kafka.environment())
            if service.role == "ingest-http":  # as `citystream run --members 2` runs them: one quota per sensor
                service.env["CITYSTREAM_INGEST_HTTP_SHARED_QUOTA"] = "true"
        return cls(kafka, database_url, prefix, run_id, services)

    def start(self) -> None:
        for service in self.services.values():
            service.start()
        self.wait_all_ready()

    def ensure_running(self) -> None:
        """Restart any member a test killed, then let its group settle."""
        restarted = [s for s in self.services.values() if not s.running()]
        for service in restarted:
            service.start()
        if restarted:
            self.wait_all_ready()
            time.sleep(SETTLE_S)

    def wait_all_ready(self) -> None:
        for service in self.services.values():
            service.wait_ready(120)
        wait_shared_port_ready(self.members("ingest-http"))

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()

    async def register(self, sensors: int) -> None:
        self.fleet = await self.declare("scale-", sensors)

    async def declare(self, prefix: str, sensors: int, **options) -> BenchFleet:
        """Declares, activates and credentials `sensors` traffic sensors in the register (options: register_fleet)."""
        register = RegisterClient(self.services["register"].url, SimulateSettings().admin_token.get_secret_value())
        try:
            return await register_fleet(register, prefix, sensors, Domain.TRAFFIC, **options)
        finally:
            await register.close()

    async def warm_up(self) -> None:
        """Both paths admit the fleet before any run is accounted: every ingest-http process and every gate has
        learned the gateway credentials from the register topic."""
        seq = 99 * SEQ_SPAN
        deadline = time.monotonic() + 60
        answered_ok = 0
        while answered_ok < 10:  # fresh connections land on either process sharing the port
            assert time.monotonic() < deadline, "the ingest-http processes never admitted the fleet"
            credential, payloads, _, _ = self.fleet.next_batch(20, seq)
            response = httpx.post(self.http_url + "/v1/readings", json={"readings": payloads}, timeout=10,
                                  headers={"Authorization": f"Bearer {credential}"})
            answered_ok = answered_ok + 1 if response.status_code == 200 else 0
            await asyncio.sleep(0.1 if response.status_code == 200 else 0.5)
        for attempt in range(1, 10):  # every raw partition (so both gates) admits: a chunk over the fleet stored
            low = (seq // SEQ_SPAN - attempt) * SEQ_SPAN
            sent = await kafka_load(self.kafka, self.raw_topic, self.fleet, duration_s=30, seq_base=low,
                                    max_records=len(self.fleet.sensor_ids), chunk=len(self.fleet.sensor_ids))
            stored, _ = await accounting.drain(self.database_url, low, low + SEQ_SPAN, len(sent.accepted_keys),
                                               timeout_s=20, stall_s=5)
            if stored == len(sent.accepted_keys):
                return
        raise AssertionError("the gates never admitted the fleet")


def wait_shared_port_ready(members: list[Service], timeout_s: float = 60) -> None:
    """Every process sharing the port listens on it, and a run of fresh connections (spread by the kernel over
    them) all answer ready: a process still catching up its register view would answer 503 to some."""
    port = members[0].port
    deadline = time.monotonic() + timeout_s
    ready_in_a_row = 0
    while ready_in_a_row < 16:
        assert time.monotonic() < deadline, [m.tail() for m in members]
        listening = all(any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                            for c in psutil.Process(m.process.pid).net_connections(kind="tcp")) for m in members)
        try:
            ok = listening and httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ok = False
        ready_in_a_row = ready_in_a_row + 1 if ok else 0
        time.sleep(0.05 if ok else 0.3)


@dataclass
class KillRun:
    load: LoadResult
    books: accounting.Accounting
    killed: str
    killed_at: float
    offered_per_s: float
    acked_series: list[tuple[float, int]]
    stored_series: list[tuple[float, int]]

    def figures(self) -> dict:
        """What docs/benchmarks.md records of a run: the books, the requests the kill broke, how long after the
        kill the acknowledged rate was back to 90 % of the offered rate (2-s windows), and how long until the
        readings waiting to be stored were back within two seconds of load (the survivor took over and caught up;
        the stored rate per 2 s is too bursty, batch commits, to judge window by window)."""
        end = self.load.ended
        return {"killed": self.killed, "offered_per_s": self.offered_per_s, "sent": self.load.sent,
                "acked": self.books.acked, "stored": self.books.stored, "lost": self.books.lost,
                "duplicates": self.books.duplicates, "stored_not_acked": self.books.unexpected,
                "requests_unanswered": self.load.failed_requests, "errors": dict(self.load.errors),
                "acked_rate_recovered_s": recovery_s(self.acked_series, self.killed_at, end, self.offered_per_s),
                "backlog_cleared_s": _rounded(backlog_cleared_s(self.acked_series, self.stored_series,
                                                                self.killed_at, end, int(2 * self.offered_per_s))),
                "load_s": round(self.load.seconds, 1), "killed_after_s": round(self.killed_at - self.load.started, 1),
                "stored_per_s_by_2s": rates(self.stored_series, self.load.started, end + 10)}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


async def kill_under_load(platform: ScaleOutPlatform, seq_base: int, offered_per_s: float, kill_after_s: float,
                          load: Callable[[int], Awaitable[LoadResult]],
                          pick_victim: Callable[[], Service]) -> KillRun:
    """Runs `load(seq_base)`, SIGKILLs `pick_victim()` after `kill_after_s`, waits until every acknowledged
    reading is stored (or nothing moves for 20 s), and accounts the run's seq range by (sensor_id, seq)."""
    low, high = seq_base, seq_base + SEQ_SPAN
    async with StoredTimeline(platform.database_url, low, high) as stored:
        running = asyncio.create_task(load(seq_base))
        await asyncio.sleep(kill_after_s)
        victim = pick_victim()
        killed_at = time.time()
        await asyncio.to_thread(victim.kill)
        result = await running
        await accounting.drain(platform.database_url, low, high, len(result.accepted_keys), timeout_s=90,
                               stall_s=20)
    books = await accounting.account(platform.database_url, platform.fleet.sensor_ids, low, high,
                                     result.accepted_keys)
    run = KillRun(result, books, victim.name, killed_at, offered_per_s, cumulative(result.acked_at), stored.series)
    print(f"\nkill-one {victim.role}: {json.dumps(run.figures())}")  # the figures docs/benchmarks.md records
    return run
