"""The simulated city's sensors for a seed: traffic loops, energy meters, waste bins and their register declarations.

Pure: building a fleet does no I/O. Declarations are the JSON bodies of the register's `POST /v1/sensors`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from schemas.common import Domain

ORGANISATION = "Gemeente Amsterdam (simulated)"
CENTRE = (4.8952, 52.3702)  # Dam square, GeoJSON [lon, lat]

# Declared ranges are wide enough for every injected anomaly (a fire, a spike) but still physical: the gate refuses
# what lies outside them, and a simulator whose anomalies are refused as OUT_OF_RANGE would test nothing.
DECLARED: dict[Domain, tuple[tuple[str, str, float, float], ...]] = {
    Domain.TRAFFIC: (("intensity", "vehicles", 0, 5000), ("occupancy", "fraction", 0, 1),
                     ("averageVehicleSpeed", "km/h", 0, 250)),
    Domain.ENERGY: (("activePower", "kW", 0, 2000), ("totalActiveEnergyImport", "kWh", 0, 1e12),
                    ("voltage", "V", 0, 500), ("current", "A", 0, 5000), ("powerFactor", "ratio", -1, 1)),
    Domain.WASTE: (("fillingLevel", "fraction", 0, 1), ("temperature", "Cel", -50, 200),
                   ("cargoWeight", "kg", 0, 10000), ("methaneConcentration", "ppm", 0, 1e6)),
}
PURPOSE: dict[Domain, str] = {
    Domain.TRAFFIC: "Traffic flow monitoring for signal timing and congestion management (simulated loop detector).",
    Domain.ENERGY: "Grid load monitoring of a municipal feeder (simulated AC meter).",
    Domain.WASTE: "Collection route planning from container fill levels (simulated bin sensor).",
}


@dataclass(frozen=True)
class SensorSpec:
    """One simulated sensor and the parameters of its normal signal."""

    sensor_id: str
    domain: Domain
    location: tuple[float, float]
    params: dict[str, float] = field(default_factory=dict)
    declared: tuple[str, ...] | None = None  # metric names to declare; None = all of the domain's
    rate_limit_per_minute: int = 600

    def declaration(self, reporting_interval_s: float, active_until: datetime | None = None) -> dict:
        """Body of `POST /v1/sensors` for this sensor."""
        names = self.declared or tuple(name for name, *_ in DECLARED[self.domain])
        metrics = [{"name": n, "unit": u, "min": lo, "max": hi} for n, u, lo, hi in DECLARED[self.domain] if n in names]
        body = {
            "sensor_id": self.sensor_id, "owner_organisation": ORGANISATION, "domain": self.domain.value,
            "owner_contact_name": "City simulator", "owner_contact_email": "simulator@example.org",
            "metrics": metrics, "location": {"type": "Point", "coordinates": list(self.location)},
            "description": f"Simulated {self.domain.value} sensor", "purpose": PURPOSE[self.domain],
            "legal_ground": "public_task", "personal_data": False, "retention_days": 30,
            "reporting_interval_s": reporting_interval_s, "rate_limit_per_minute": self.rate_limit_per_minute,
        }
        if active_until is not None:
            body["active_until"] = active_until.isoformat()
        return body


def _location(rng: random.Random) -> tuple[float, float]:
    return (round(CENTRE[0] + rng.uniform(-0.06, 0.06), 6), round(CENTRE[1] + rng.uniform(-0.035, 0.035), 6))


def split_counts(total: int) -> dict[Domain, int]:
    """40 % traffic loops, 40 % energy meters, 20 % waste bins (at least one of each)."""
    traffic = max(1, round(total * 0.4))
    energy = max(1, round(total * 0.4))
    return {Domain.TRAFFIC: traffic, Domain.ENERGY: energy, Domain.WASTE: max(1, total - traffic - energy)}


def build_fleet(seed: int, total: int, prefix: str) -> list[SensorSpec]:
    """`total` normal sensors, deterministic for `seed`; ids `<prefix><domain>-<nnnn>`."""
    rng = random.Random(f"fleet/{seed}")
    fleet: list[SensorSpec] = []
    for domain, count in split_counts(total).items():
        for index in range(count):
            sensor_id = f"{prefix}{domain.value}-{index:04d}"
            if domain is Domain.TRAFFIC:
                params = {"capacity_vph": rng.choice((900.0, 1800.0, 3600.0))}
            elif domain is Domain.ENERGY:
                commercial = rng.random() < 0.35
                params = {"commercial": float(commercial), "scale": rng.uniform(0.7, 1.4) * (1 if commercial else 8),
                          "meter_start_kwh": round(rng.uniform(1_000, 90_000), 1)}
            else:
                every_h = rng.choice((24.0, 48.0, 72.0))
                # Collected before it overflows: a normal bin peaks at 62-87 % (the overflow rule fires at 90 %).
                params = {"fill_per_h": rng.uniform(0.6, 0.85) / every_h, "round_every_s": every_h * 3600,
                          "round_phase_s": rng.uniform(0, every_h) * 3600 + 6 * 3600,
                          "capacity_kg": rng.choice((120.0, 240.0, 1100.0))}
            fleet.append(SensorSpec(sensor_id, domain, _location(rng), params))
    return fleet
