"""Scale points of the ingest gate's in-memory register view: memory and lookup cost at 1k, 100k and 1M sensors.

A micro-benchmark of pure code: it builds register records and applies them to the gate's own RegisterState
(the class `services.ingest` materialises from the register topic), then times `get` + credential match.
"""

from __future__ import annotations

import gc
import hashlib
import random
import time
from datetime import UTC, datetime

import psutil

from schemas.common import Domain
from schemas.register import CredentialHash, MetricDeclaration, SensorRegistration, SensorStatus
from services.common import jsonwire

SECRET_SHA = hashlib.sha256(b"bench-secret").hexdigest()


def _record(index: int, now: datetime) -> bytes:
    record = SensorRegistration(
        sensor_id=f"scale-traffic-{index:07d}", version=1, status=SensorStatus.ACTIVE, domain=Domain.TRAFFIC,
        owner_organisation="bench", metrics=(MetricDeclaration(name="intensity", unit="vehicles", min=0, max=5000),
                                             MetricDeclaration(name="occupancy", unit="fraction", min=0, max=1),
                                             MetricDeclaration(name="averageVehicleSpeed", unit="km/h", min=0,
                                                               max=250)),
        rate_limit_per_minute=600, reporting_interval_s=60,
        credentials=(CredentialHash(key_id=f"sk_{index:07d}", secret_sha256=SECRET_SHA),), updated_at=now)
    return jsonwire.dumps(record.model_dump(mode="json"))


def measure(count: int, lookups: int = 200_000) -> dict[str, float]:
    """Bytes per sensor of the view, seconds to apply `count` topic records, and ns per lookup + credential check."""
    from services.ingest.credentials import PresentedCredential, matches
    from services.ingest.register_state import RegisterState

    now = datetime.now(UTC)
    values = [(f"scale-traffic-{i:07d}".encode(), _record(i, now)) for i in range(count)]
    gc.collect()
    rss_before = psutil.Process().memory_info().rss  # RSS, not tracemalloc: tracing would slow the replay 5×
    started = time.perf_counter()
    state = RegisterState()
    for key, value in values:
        state.apply_record(key, value)
    apply_s = time.perf_counter() - started
    view_bytes = psutil.Process().memory_info().rss - rss_before
    del values
    rng = random.Random(1)
    probes = [(f"scale-traffic-{rng.randrange(count):07d}", None) for _ in range(lookups)]
    presented = {sensor_id: PresentedCredential(f"sk_{sensor_id[-7:]}", SECRET_SHA) for sensor_id, _ in probes}
    started = time.perf_counter()
    for sensor_id, _ in probes:
        entry = state.get(sensor_id)
        credential = presented[sensor_id]
        any(matches(credential, stored, now) for stored in entry.credentials_for(credential.key_id))
    lookup_ns = (time.perf_counter() - started) / lookups * 1e9
    return {"sensors": count, "view_bytes_per_sensor": view_bytes / count, "view_mb": view_bytes / 2**20,
            "replay_s": apply_s, "lookup_ns": lookup_ns}
