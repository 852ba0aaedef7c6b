"""The benchmark's sensors: declared and activated through the register API, with gateway credentials, and the
reading payloads they send (city-model metrics, a per-sensor seq counter, `observed_at` ≈ now).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from citystream.simulate.city import SensorSpec, build_fleet
from citystream.simulate.clients import RegisterClient
from citystream.simulate.model import CityModel, SimConfig
from schemas.common import Domain

GATEWAY_MAX_SENSORS = 1000
VARIANTS = 16  # metric sets per sensor, cycled, so detectors do not see a flat line
# The bad readings a share of the load carries, cycled, and the reason the gate must give each of them.
BAD_KINDS: tuple[str, ...] = ("UNKNOWN_SENSOR", "UNDECLARED_METRIC", "OUT_OF_RANGE")


class Batch(NamedTuple):
    credential: str
    payloads: list[dict]
    keys: list[int]  # (sensor, seq) key of payload i
    bad: frozenset[int]  # positions of the deliberately bad readings


def bad_reading(kind: str, reading: dict) -> dict:
    """A traffic reading turned into one the gate must refuse with `kind` (same seq, so it is traceable)."""
    if kind == "UNKNOWN_SENSOR":  # a sensor the register has never seen, named under the gateway credential
        return {**reading, "sensor_id": f"{reading['sensor_id']}-undeclared"}
    if kind == "UNDECLARED_METRIC":  # a real metric name, but not one a traffic loop declares
        return {**reading, "metrics": {**reading["metrics"], "fillingLevel": 0.5}}
    if kind == "OUT_OF_RANGE":  # occupancy is declared as a fraction in [0, 1]
        return {**reading, "metrics": {**reading["metrics"], "occupancy": 7.5}}
    raise ValueError(f"unknown bad reading kind {kind!r}")


@dataclass
class BenchFleet:
    sensor_ids: list[str]
    credentials: list[str]  # credential of sensor i
    variants: list[list[dict[str, float]]]  # metric sets of sensor i
    seq: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seq = [0] * len(self.sensor_ids)
        self._cursor = itertools.cycle(range(len(self.sensor_ids)))
        self._made = 0  # readings made so far: every `bad_every`-th of them is a bad one

    def next_batch(self, size: int, seq_base: int, observed_at: str | None = None, *, bad_every: int = 0) -> Batch:
        """`size` readings of consecutive sensors sharing one credential; with `bad_every` = n, every n-th reading
        (counted across batches) is a bad one of the next kind in BAD_KINDS."""
        observed_at = observed_at or datetime.now(UTC).isoformat(timespec="milliseconds")
        first = next(self._cursor)
        credential = self.credentials[first]
        payloads, keys, bad = [], [], []
        index = first
        for position in range(size):
            if self.credentials[index] != credential:
                break
            n = self.seq[index] = self.seq[index] + 1
            seq = seq_base + n
            reading = {"sensor_id": self.sensor_ids[index], "seq": seq, "observed_at": observed_at,
                       "metrics": self.variants[index][n % VARIANTS]}
            self._made += 1
            if bad_every and self._made % bad_every == 0:
                reading = bad_reading(BAD_KINDS[(self._made // bad_every) % len(BAD_KINDS)], reading)
                bad.append(position)
            payloads.append(reading)
            keys.append(key_of(index, seq))
            index = next(self._cursor)
        return Batch(credential, payloads, keys, frozenset(bad))


def key_of(sensor_index: int, seq: int) -> int:
    """(sensor, seq) packed into one int: a set of a million of them stays small."""
    return (sensor_index << 44) | seq


def variants_for(specs: list[SensorSpec], seed: int) -> list[list[dict[str, float]]]:
    model = CityModel(SimConfig(seed=seed, sensors=len(specs), interval_s=300, start_t=time.time() - 86_400,
                                anomalies=False, bad_traffic=False), fleet=specs)
    rounds = [model.next_round() for _ in range(VARIANTS)]
    by_sensor = {spec.sensor_id: [] for spec in specs}
    for rnd in rounds:
        for reading in rnd.readings:
            by_sensor[reading.sensor_id].append(reading.metrics)
    return [by_sensor[spec.sensor_id] for spec in specs]


def domain_fleet(seed: int, count: int, prefix: str, domain: Domain | None) -> list[SensorSpec]:
    """Exactly `count` sensor specs of `domain` (or the city mix): the city's split gives each domain only a share,
    so the city is grown until it holds enough of them."""
    total = count
    while True:
        specs = [spec for spec in build_fleet(seed, total, prefix) if domain is None or spec.domain is domain]
        if len(specs) >= count:
            return specs[:count]
        total *= 2


async def register_fleet(register: RegisterClient, prefix: str, count: int, domain: Domain | None,
                         seed: int = 11, concurrency: int = 8, rate_limit_per_minute: int = 600_000) -> BenchFleet:
    """Declares `count` sensors (all of `domain`, or the city mix), activates them, issues gateway credentials."""
    specs = domain_fleet(seed, count, prefix, domain)
    # The benchmark measures the platform, not the rate limiter: by default each sensor may send 10,000 readings/s.
    specs = [SensorSpec(s.sensor_id, s.domain, s.location, s.params, rate_limit_per_minute=rate_limit_per_minute)
             for s in specs]
    gate = asyncio.Semaphore(concurrency)

    async def ensure(spec: SensorSpec) -> None:
        async with gate:
            await register.ensure_active(spec.declaration(60.0))

    await asyncio.gather(*(ensure(spec) for spec in specs))
    credentials: list[str] = []
    ids = [spec.sensor_id for spec in specs]
    for start in range(0, len(ids), GATEWAY_MAX_SENSORS):
        chunk = ids[start:start + GATEWAY_MAX_SENSORS]
        credential = await register.issue_gateway(chunk)
        credentials.extend([credential] * len(chunk))
    return BenchFleet(ids, credentials, variants_for(specs, seed))
