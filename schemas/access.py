"""The Kafka access policy: the topic catalogue's writers and readers as ACL grants, one principal per service.

Writers get Write + Describe on their topics, readers Read + Describe and Read on their consumer group. City systems
write only the raw topic, which only the ingest gate reads. The Strimzi KafkaUser resources (`citystream k8s
generate`) are rendered from `grants()` alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from schemas.topics import CATALOGUE, RAW_READINGS


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

# Catalogue roles -> the services that act in them ("ingest" is both the HTTP ingest and the Kafka-native gate).
_ROLE_SERVICES: dict[str, tuple[str, ...]] = {
    "register": ("register",),
    "ingest": ("ingest-gate", "ingest-http"),
    "ingest-sink": ("ingest-sink",),
    "anomaly": ("anomaly",),
    "api": ("api",),
}

# Consumer groups (the services' default group / Faust app ids); the Faust apps also name their internal topics
# (changelogs, repartition, assignor leader) after the app id, so they get prefixed grants on it.
_CONSUMER_GROUPS: dict[str, str] = {"ingest-gate": "citystream-ingest-gate", "ingest-sink": "citystream-ingest-sink",
                                    "anomaly": "citystream-anomaly"}
_FAUST_APPS = ("ingest-gate", "anomaly")
_WRITE = ("Write", "Describe")
_READ = ("Read", "Describe")


def _services(role: str, topic: str) -> tuple[str, ...]:
    services = _ROLE_SERVICES.get(role, ())
    if topic == RAW_READINGS:  # the raw topic is for the gate only: the HTTP ingest never consumes it
        services = tuple(s for s in services if s == "ingest-gate")
    return services


def grants(topic_prefix: str = "", city_systems: Iterable[str] = ()) -> list[Grant]:
    """Every ACL grant of the platform; `city_systems` are the principals of the systems writing raw readings."""
    result: list[Grant] = []
    readers_with_groups: set[str] = set()
    for spec in CATALOGUE:
        topic = topic_prefix + spec.name
        writers = _services(spec.writer, spec.name)
        if spec.name == RAW_READINGS:
            result += [Grant(system, "topic", topic, "literal", _WRITE) for system in city_systems]
        result += [Grant(SERVICE_PRINCIPALS[s], "topic", topic, "literal", _WRITE) for s in writers]
        for role in spec.readers:
            for service in _services(role, spec.name):
                result.append(Grant(SERVICE_PRINCIPALS[service], "topic", topic, "literal", _READ))
                readers_with_groups.add(service)
    for service in sorted(readers_with_groups & _CONSUMER_GROUPS.keys()):
        group = topic_prefix + _CONSUMER_GROUPS[service]
        if service in _FAUST_APPS:
            principal = SERVICE_PRINCIPALS[service]
            result += [Grant(principal, "topic", group, "prefixed", ("All",)),
                       Grant(principal, "group", group, "prefixed", ("Read", "Describe"))]
        else:
            result.append(Grant(SERVICE_PRINCIPALS[service], "group", group, "literal", ("Read",)))
    return result
