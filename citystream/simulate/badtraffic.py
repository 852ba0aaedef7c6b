"""Bad traffic the gate must refuse: one misbehaving actor per kind, each with the rejection reason it should get.

Pure: actors are sensor specs plus the payloads they send each round; the runner does the HTTP and register calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from citystream.simulate.city import CENTRE, SensorSpec
from schemas.common import Domain
from schemas.rejections import RejectionReason


class BadKind(StrEnum):
    UNREGISTERED = "unregistered"
    SUSPENDED = "suspended_mid_run"
    EXPIRED = "expired"
    WRONG_KEY = "wrong_key"
    UNDECLARED_METRIC = "undeclared_metric"
    MALFORMED = "malformed"
    OVER_QUOTA = "over_quota"


EXPECTED_REASON: dict[BadKind, RejectionReason] = {
    # A sensor never declared has no credential: the one it shows is made up, so its requests are refused whole.
    BadKind.UNREGISTERED: RejectionReason.BAD_CREDENTIALS,
    BadKind.SUSPENDED: RejectionReason.SENSOR_NOT_ACTIVE,
    BadKind.EXPIRED: RejectionReason.SENSOR_EXPIRED,
    BadKind.WRONG_KEY: RejectionReason.BAD_CREDENTIALS,
    BadKind.UNDECLARED_METRIC: RejectionReason.UNDECLARED_METRIC,
    BadKind.MALFORMED: RejectionReason.MALFORMED,
    BadKind.OVER_QUOTA: RejectionReason.RATE_LIMITED,
}
OVER_QUOTA_BURST = 6  # readings per round from a sensor allowed 1 per minute


@dataclass(frozen=True)
class BadActor:
    kind: BadKind
    spec: SensorSpec
    registered: bool = True  # False: never declared (its credential is made up)

    def payloads(self, seq: int, observed_at: str, metrics: dict[str, float]) -> list[dict]:
        """What this actor sends in one round (a list of RawReading-shaped dicts, some deliberately broken)."""
        reading = {"sensor_id": self.spec.sensor_id, "seq": seq, "observed_at": observed_at, "metrics": metrics}
        if self.kind is BadKind.MALFORMED:
            # Alternate the ways a payload can be broken: a non-integer seq, a naive timestamp, a string value.
            variant = seq % 3
            if variant == 0:
                return [{**reading, "seq": f"{seq}"}]
            if variant == 1:
                return [{**reading, "observed_at": observed_at.replace("+00:00", "")}]
            return [{**reading, "metrics": {name: "n/a" for name in metrics}}]
        if self.kind is BadKind.OVER_QUOTA:
            return [{**reading, "seq": seq * OVER_QUOTA_BURST + i} for i in range(OVER_QUOTA_BURST)]
        return [reading]


def build_bad_actors(prefix: str) -> list[BadActor]:
    """One actor per bad kind; ids `<prefix>bad-<kind>`. All are traffic loops so their readings look ordinary."""
    location = (CENTRE[0] + 0.01, CENTRE[1] - 0.01)

    def spec(kind: BadKind, **extra) -> SensorSpec:
        return SensorSpec(f"{prefix}bad-{kind.value.replace('_', '-')}", Domain.TRAFFIC, location,
                          {"capacity_vph": 1800.0}, **extra)

    return [
        BadActor(BadKind.UNREGISTERED, spec(BadKind.UNREGISTERED), registered=False),
        BadActor(BadKind.SUSPENDED, spec(BadKind.SUSPENDED)),
        BadActor(BadKind.EXPIRED, spec(BadKind.EXPIRED)),
        BadActor(BadKind.WRONG_KEY, spec(BadKind.WRONG_KEY)),
        BadActor(BadKind.UNDECLARED_METRIC, spec(BadKind.UNDECLARED_METRIC,
                                                 declared=("intensity", "averageVehicleSpeed"))),
        BadActor(BadKind.MALFORMED, spec(BadKind.MALFORMED)),
        BadActor(BadKind.OVER_QUOTA, spec(BadKind.OVER_QUOTA, rate_limit_per_minute=1)),
    ]
