"""Load generators: HTTP batches to `POST /v1/readings` and raw records to `citystream.readings.raw.v1`, as fast as
they go (or at a set rate), recording ack latency, outcomes and the (sensor, seq) keys that were acknowledged.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import orjson

from citystream.bench.fleet import BenchFleet, key_of
from schemas import headers as wire_headers
from schemas.topics import RAW_READINGS
from services.common.kafka import make_producer
from services.common.settings import KafkaAccess
from services.ingest.kafka_batches import send_batched
from services.ingest.records import OutRecord


@dataclass
class LoadResult:
    started: float = 0.0
    ended: float = 0.0
    sent: int = 0
    accepted_keys: set[int] = field(default_factory=set)
    rejected: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    failed_requests: int = 0  # requests without an answer: their latency is unknown, above the client timeout
    bad_sent: int = 0  # deliberately bad readings among `sent`
    bad_accepted: int = 0  # of those, acknowledged anyway (the gate let a bad reading through: must stay 0)
    acked_at: list[tuple[float, int]] = field(default_factory=list)  # (wall time, readings acked then)

    @property
    def seconds(self) -> float:
        return max(1e-9, self.ended - self.started)

    @property
    def acked_per_s(self) -> float:
        return len(self.accepted_keys) / self.seconds


class Admission(Protocol):
    """Paces a load by what is downstream of the ingest (the detected phase's lag gate, citystream/bench/judged.py)."""

    async def room(self, readings: int) -> None:
        """Returns once `readings` more may be sent; counts them as sent."""

    def not_admitted(self, readings: int) -> None:
        """Of the readings sent, these never reach the readings topics: refused by the ingest, or their request
        got no answer."""


def percentile(values: list[float], q: float, missing: int = 0) -> float | None:
    """The q-th percentile of `values` plus `missing` samples known only to be larger than all of them (a probe
    whose alert never came, a request that never got an answer). None when there are no samples or when the
    percentile falls among the missing ones: its value is then unknown, only larger than the wait."""
    total = len(values) + missing
    if not total:
        return None
    rank = min(total - 1, int(q / 100 * total))
    if rank >= len(values):
        return None
    return sorted(values)[rank]


async def http_load(url: str | list[str], fleet: BenchFleet, *, batch: int, connections: int, duration_s: float,
                    seq_base: int, rate: float | None = None, bad_every: int = 0,
                    progress: Callable[[int], None] = lambda n: None,
                    admit: Admission | None = None) -> LoadResult:
    """`connections` workers post batches for `duration_s`; `rate` (readings/s) caps the total when given; every
    `bad_every`-th reading is a bad one (fleet.BAD_KINDS), counted by the reason the ingest answers. With several
    ingest URLs (several ingest-http processes) the connections are spread over them; `admit.room(n)`, when given,
    is awaited before each batch of n readings is sent, and told which of them the ingest did not admit."""
    urls = [url] if isinstance(url, str) else list(url)
    result = LoadResult(started=time.time())
    deadline = time.monotonic() + duration_s
    per_url = -(-connections // len(urls))
    reserved = [0]  # readings whose send slot is taken: each worker books its slot before sleeping to it
    # aiohttp rather than httpx: its client costs the load generator about a seventh of httpx's CPU per request
    # (140 against 950 µs for a 1,000-reading batch on this project's machine), CPU the benchmark shares with the
    # platform it measures.
    clients = [aiohttp.ClientSession(base_url=u, timeout=aiohttp.ClientTimeout(total=30.0),
                                     connector=aiohttp.TCPConnector(limit=per_url)) for u in urls]
    try:

        async def worker(client: aiohttp.ClientSession) -> None:
            while time.monotonic() < deadline:
                if rate is not None:
                    # Booking first spreads the workers evenly; computing the slot from readings already sent
                    # would wake every worker at the same instant (bursts of `connections` batches).
                    due = result.started + reserved[0] / rate
                    reserved[0] += batch
                    if due > time.time():
                        await asyncio.sleep(due - time.time())
                    if time.monotonic() >= deadline:
                        break
                if admit is not None:
                    try:  # held back by the gate until the phase ends: the phase ends on time all the same
                        await asyncio.wait_for(admit.room(batch), max(0.0, deadline - time.monotonic()))
                    except TimeoutError:
                        break
                    if time.monotonic() >= deadline:
                        break
                credential, payloads, keys, bad = fleet.next_batch(batch, seq_base, bad_every=bad_every)
                result.sent += len(payloads)
                result.bad_sent += len(bad)
                began = time.perf_counter()
                try:
                    async with client.post("/v1/readings", data=orjson.dumps({"readings": payloads}),
                                           headers={"Authorization": f"Bearer {credential}",
                                                    "Content-Type": "application/json",
                                                    "Prefer": "return=minimal"}) as response:
                        status, content = response.status, await response.read()
                except (aiohttp.ClientError, TimeoutError) as problem:
                    result.errors[type(problem).__name__] += 1
                    result.failed_requests += 1
                    if admit is not None:  # admitted or not, unknown: the lag at the end is read from the broker
                        admit.not_admitted(len(payloads))
                    continue
                result.latencies_ms.append((time.perf_counter() - began) * 1000)
                if status == 200:
                    result.accepted_keys.update(keys)
                    result.bad_accepted += len(bad)
                    result.acked_at.append((time.time(), len(keys)))
                    refused = 0
                elif status in (207, 400, 401, 403, 404, 413, 422, 429):
                    refused = tally_answer(result, orjson.loads(content), keys, bad)
                else:
                    result.errors[f"HTTP {status}"] += 1
                    refused = len(payloads)
                if refused and admit is not None:
                    admit.not_admitted(refused)
                progress(len(payloads))

        await asyncio.gather(*(worker(clients[i % len(clients)]) for i in range(connections)))
    finally:
        for client in clients:
            await client.close()
    result.ended = time.time()
    return result


def tally_answer(result: LoadResult, body: dict, keys: list[int], bad: frozenset[int]) -> int:
    """Counts a non-200 answer to a batch of `keys` (`bad`: positions of the deliberately bad readings); returns
    how many readings it refused. With `Prefer: return=minimal` only the rejected readings are listed (each with its
    index); a full answer lists the accepted ones too; a request refused whole lists none."""
    outcomes = body.get("outcomes")
    if outcomes is None:
        result.rejected[body.get("reason")] += len(keys)
        return len(keys)
    refused = {outcome["index"]: outcome.get("reason") for outcome in outcomes if outcome["status"] == "rejected"}
    result.rejected.update(refused.values())
    result.accepted_keys.update(key for position, key in enumerate(keys) if position not in refused)
    result.bad_accepted += len(bad - refused.keys())
    return len(refused)


async def kafka_load(bootstrap: KafkaAccess | str, topic: str, fleet: BenchFleet, *, duration_s: float, seq_base: int,
                     max_records: int | None = None, window: int = 20_000, bad_every: int = 0,
                     rate: float | None = None, chunk: int = 1000,
                     progress: Callable[[int], None] = lambda n: None) -> LoadResult:
    """Produces raw readings (key = sensor id, `credential` header) with acks=all, `chunk` at a time as one record
    batch per partition (as a city system's bulk producer would), at most `rate` readings/s when given; a key
    counts once its chunk is acknowledged.
    Every `bad_every`-th reading is a bad one: acknowledged by Kafka but never expected in `readings` (the gate
    refuses it to the rejected topic), so its key is not among `accepted_keys`."""
    result = LoadResult(started=time.time())
    producer = make_producer(bootstrap, "bench-raw", linger_ms=20)
    await producer.start()
    deadline = time.monotonic() + duration_s
    in_flight: list[tuple[list[asyncio.Future], list[int]]] = []
    pending = 0
    try:
        while time.monotonic() < deadline and (max_records is None or result.sent < max_records):
            if rate is not None and (due := result.started + result.sent / rate) > time.time():
                await asyncio.sleep(due - time.time())
            credential, payloads, keys, bad = fleet.next_batch(chunk, seq_base, bad_every=bad_every)
            if bad:
                keys = [key for position, key in enumerate(keys) if position not in bad]
            result.bad_sent += len(bad)
            # One event-id per chunk of headers: the gate does not read it, and a uuid per record would cost the
            # load generator more CPU than the producer itself.
            headers = [*wire_headers.make_headers(RAW_READINGS, "bench"), (wire_headers.CREDENTIAL, credential.encode())]
            records = [OutRecord(topic, payload["sensor_id"].encode(), orjson.dumps(payload), headers)
                       for payload in payloads]
            futures: list[asyncio.Future] = []
            await send_batched(producer, records, str, futures)
            in_flight.append((futures, keys))
            result.sent += len(payloads)
            pending += len(payloads)
            if pending >= window:
                await _settle(in_flight, result)
                progress(pending)
                pending = 0
        await _settle(in_flight, result)
    finally:
        await producer.stop()
    result.ended = time.time()
    return result


async def _settle(in_flight: list, result: LoadResult) -> None:
    for futures, keys in in_flight:
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        problems = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if problems:  # a chunk not wholly acknowledged is not counted as sent-and-acked
            result.errors[type(problems[0]).__name__] += len(keys)
        else:
            result.accepted_keys.update(keys)
            result.acked_at.append((time.time(), len(keys)))
    in_flight.clear()


__all__ = ["Admission", "LoadResult", "http_load", "kafka_load", "key_of", "percentile"]
