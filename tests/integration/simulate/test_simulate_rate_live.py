"""`citystream simulate --rate R` publishes about R readings per second: measured on the ingest's own clock
(`received_at` of the stored readings) against real register, ingest HTTP and sink processes, for two rates.
Rate control is checked with a generous bound; this is not a speed benchmark."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg

DURATION_S = 12
SKIP_S = 2.0  # the sim clock starts before registration: the first readings go out together, as a catch-up


async def _received(database_url: str, prefix: str, expected: int) -> list[float]:
    connection = await asyncpg.connect(database_url)
    try:
        for _ in range(60):
            rows = await connection.fetch("SELECT extract(epoch FROM received_at) AS t FROM readings "
                                          "WHERE sensor_id LIKE $1 ORDER BY received_at", f"{prefix}%")
            if len(rows) >= expected:
                break
            await asyncio.sleep(0.5)
        return [float(r["t"]) for r in rows]
    finally:
        await connection.close()


def _simulate(services, prefix: str, rate: float, tmp_path) -> None:
    env = os.environ | {"CITYSTREAM_REGISTER_URL": services["register"].url,
                        "CITYSTREAM_INGEST_URL": services["ingest-http"].url}
    completed = subprocess.run([sys.executable, "-m", "citystream.cli", "simulate", "--rate", str(rate),
                                "--sensors", "20", "--duration", str(DURATION_S), "--no-anomalies",
                                "--no-bad-traffic", "--prefix", prefix, "--labels", str(tmp_path / f"{prefix}.jsonl")],
                               check=False, capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_simulate_publishes_at_the_chosen_rate(live_services, fresh_database_url, tmp_path):
    measured = {}
    for rate in (10.0, 40.0):
        prefix = f"rate{int(rate)}-{uuid.uuid4().hex[:4]}-"
        _simulate(live_services, prefix, rate, tmp_path)
        times = asyncio.run(_received(fresh_database_url, prefix, int(rate * DURATION_S * 0.8)))
        assert times, f"nothing stored for --rate {rate}"
        window_start, window_end = times[0] + SKIP_S, times[-1]
        steady = [t for t in times if window_start <= t <= window_end]
        assert window_end - window_start > DURATION_S / 2, (window_start, window_end)
        measured[rate] = len(steady) / (window_end - window_start)
    for rate, per_s in measured.items():
        assert 0.7 * rate <= per_s <= 1.3 * rate, measured
    assert 2.8 <= measured[40.0] / measured[10.0] <= 5.2, measured
