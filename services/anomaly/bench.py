"""`make bench` hook: µs per reading of the full detector set per domain, beside a raw ceiling loop."""

from __future__ import annotations

import time

from services.anomaly.detectors import Profile
from services.anomaly.engine import Engine
from services.anomaly.scenarios import generate

SCENARIO_BY_DOMAIN = {"traffic": "traffic_congestion", "energy": "energy_spike", "waste": "waste_fire"}


def measure(domain: str) -> tuple[float, float]:
    """(detector µs/reading, ceiling µs/reading) over three weeks of one sensor's 5-minute readings."""
    readings = generate(SCENARIO_BY_DOMAIN[domain]).readings
    engine, profile = Engine(domain, with_rollups=False), Profile()
    state = engine.new_state()
    started = time.perf_counter()
    for obs in readings:
        engine.observe(state, obs, profile)
    detectors = (time.perf_counter() - started) / len(readings) * 1e6
    # The ceiling: the same dict lookups and one EWMA update per metric, nothing else.
    table: dict[str, list[float]] = {}
    started = time.perf_counter()
    for obs in readings:
        for metric, value in obs.metrics.items():
            cell = table.get(metric)
            if cell is None:
                cell = table[metric] = [value, 0.0]
            cell[1] += 0.05 * (abs(value - cell[0]) - cell[1])
            cell[0] += 0.05 * (value - cell[0])
    ceiling = (time.perf_counter() - started) / len(readings) * 1e6
    return detectors, ceiling


def main() -> None:
    print("domain   detectors_us_per_reading  raw_ceiling_us  ratio  target<=20us")
    for domain in SCENARIO_BY_DOMAIN:
        detectors, ceiling = measure(domain)
        print(f"{domain:8} {detectors:24.1f} {ceiling:15.2f} {detectors / ceiling:6.1f}  "
              f"{'ok' if detectors <= 20 else 'OVER'}")


if __name__ == "__main__":
    main()
