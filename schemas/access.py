"""The Kafka access policy, generated from the topic catalogue: one principal per service and per city system."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.topics import CATALOGUE, TopicSpec


@dataclass(frozen=True)
class Grant:
    principal: str               # Kafka user name, e.g. "citystream-gate"
    resource: str                # "topic" | "group" | "cluster" | "transactional-id"
    name: str                    # resource name, or prefix when pattern == "prefixed"
    pattern: str                 # "literal" | "prefixed"
    operations: tuple[str, ...]  # Kafka operation names, e.g. ("Write", "Describe")


SERVICE_PRINCIPALS: dict[str, str] = {
    "register": "citystream-register",
    "ingest-gate": "citystream-gate",
    "ingest-http": "citystream-ingest-http",
    "ingest-sink": "citystream-sink",
    "anomaly": "citystream-anomaly",
    "api": "citystream-api",
}
# Super user of the broker: creates topics, provisions principals and ACLs (`citystream topics create`,
# `citystream kafka-users`, the tests). No service runs as it.
ADMIN_PRINCIPAL = "citystream-admin"
CITY_SYSTEM_PREFIX = "city-"

# Consumer-group names and Faust app ids the services use by default (their settings take them from here).
GATE_APP_ID = "citystream-ingest-gate"
SINK_GROUP_ID = "citystream-ingest-sink"
ANOMALY_APP_ID = "citystream-anomaly"

# Catalogue roles that stand for more than one service. Both gates admit readings with the same `admit()` against
# the register, so "ingest" (the writer of the validated and rejected topics) is the HTTP gate and the Kafka-native
# gate; a topic that only one of them may read names it ("ingest-gate").
ROLE_SERVICES: dict[str, tuple[str, ...]] = {"ingest": ("ingest-gate", "ingest-http")}
CITY_SYSTEM_ROLES = frozenset({"city systems", "integrators"})

WRITE = ("Write", "Describe")
READ = ("Read", "Describe")
# Faust's internal topics (changelogs, the ticks topic) are created and used by the app itself.
FAUST_INTERNAL = ("Create", "Read", "Write", "Describe", "DescribeConfigs")


def city_system_principal(name: str) -> str:
    """The Kafka user of city system `name` (`citystream kafka-users add NAME`)."""
    return name if name.startswith(CITY_SYSTEM_PREFIX) else CITY_SYSTEM_PREFIX + name


def role_principals(role: str, city_systems: Iterable[str]) -> tuple[str, ...]:
    """The principals a catalogue writer or reader name stands for."""
    if role in CITY_SYSTEM_ROLES:
        return tuple(city_system_principal(name) for name in city_systems)
    return tuple(SERVICE_PRINCIPALS[service] for service in ROLE_SERVICES.get(role, (role,)))


def _topic_grants(spec: TopicSpec, topic_prefix: str, city_systems: tuple[str, ...]) -> list[Grant]:
    name = topic_prefix + spec.name
    writers = role_principals(spec.writer, city_systems) + tuple(
        principal for role in spec.dead_letter_writers for principal in role_principals(role, city_systems))
    readers = tuple(principal for role in spec.readers for principal in role_principals(role, city_systems))
    return [Grant(principal, "topic", name, "literal", WRITE) for principal in writers] + [
        Grant(principal, "topic", name, "literal", READ) for principal in readers]


def grants(topic_prefix: str = "", city_systems: Iterable[str] = ()) -> list[Grant]:
    """Every ACL the platform needs: the catalogue's writers and readers, plus each service's consumer groups and
    Faust internal topics. Anything not granted here is refused (`allow.everyone.if.no.acl.found=false`)."""
    city_systems = tuple(city_systems)
    service = SERVICE_PRINCIPALS
    policy = [grant for spec in CATALOGUE for grant in _topic_grants(spec, topic_prefix, city_systems)]
    policy += [
        # The register creates its own topic at start-up when it is missing.
        Grant(service["register"], "topic", topic_prefix + "citystream.register.sensors.v1", "literal",
              ("Create", "DescribeConfigs")),
        # The gate's raw-topic group is `<gate app id>.raw`; its Faust app uses the app id itself.
        Grant(service["ingest-gate"], "group", GATE_APP_ID, "prefixed", READ),
        Grant(service["ingest-gate"], "topic", GATE_APP_ID, "prefixed", FAUST_INTERNAL),
        Grant(service["ingest-sink"], "group", topic_prefix + SINK_GROUP_ID, "literal", READ),
        # The anomaly app's consumer group, its changelog and ticks topics (`<app id>-...`); it reads its group's
        # committed offsets for the lag metric.
        Grant(service["anomaly"], "group", ANOMALY_APP_ID, "prefixed", READ),
        Grant(service["anomaly"], "topic", ANOMALY_APP_ID, "prefixed", FAUST_INTERNAL),
    ]
    # A city system may consume what it may read under consumer groups named after itself.
    policy += [Grant(city_system_principal(name), "group", city_system_principal(name), "prefixed", READ)
               for name in city_systems]
    return policy
