"""The Kafka ACLs are the topic catalogue's writer and reader lists, nothing more on the catalogue's topics."""

from __future__ import annotations

from schemas.access import (
    ADMIN_PRINCIPAL,
    SERVICE_PRINCIPALS,
    Grant,
    city_system_principal,
    grants,
)
from schemas.topics import (
    ALERT_ACTIONS,
    CATALOGUE,
    RAW_READINGS,
    REGISTER_SENSORS,
    REJECTED_READINGS,
    readings_topic,
)

CITY = ("tram-depot", "waste-co")


def _principals(policy: list[Grant], topic: str, operation: str) -> set[str]:
    return {g.principal for g in policy
            if g.resource == "topic" and g.pattern == "literal" and g.name == topic and operation in g.operations}


def _expected(role: str) -> set[str]:
    by_role = {
        "city systems": {city_system_principal(name) for name in CITY},
        "integrators": {city_system_principal(name) for name in CITY},
        "ingest": {SERVICE_PRINCIPALS["ingest-gate"], SERVICE_PRINCIPALS["ingest-http"]},
    }
    return by_role.get(role, {SERVICE_PRINCIPALS[role]} if role in SERVICE_PRINCIPALS else set())


def test_writers_and_readers_of_every_topic_are_the_catalogues():
    policy = grants(city_systems=CITY)
    for spec in CATALOGUE:
        writers = _expected(spec.writer).union(*(_expected(role) for role in spec.dead_letter_writers))
        readers = set().union(*(_expected(role) for role in spec.readers))
        assert writers, spec.name
        assert _principals(policy, spec.name, "Write") == writers, spec.name
        assert _principals(policy, spec.name, "Read") == readers, spec.name


def test_the_trust_boundary_the_register_promises():
    policy = grants(city_systems=CITY)
    gate, http = SERVICE_PRINCIPALS["ingest-gate"], SERVICE_PRINCIPALS["ingest-http"]
    assert _principals(policy, RAW_READINGS, "Write") == {"city-tram-depot", "city-waste-co"}
    assert _principals(policy, RAW_READINGS, "Read") == {gate}
    for domain in ("traffic", "energy", "waste"):
        assert _principals(policy, readings_topic(domain), "Write") == {gate, http}
    assert _principals(policy, REGISTER_SENSORS, "Write") == {SERVICE_PRINCIPALS["register"]}
    assert _principals(policy, ALERT_ACTIONS, "Write") == {SERVICE_PRINCIPALS["api"]}
    # Dead letters: the anomaly worker and the sink put records they cannot process on the rejected topic.
    assert _principals(policy, REJECTED_READINGS, "Write") == {
        gate, http, SERVICE_PRINCIPALS["anomaly"], SERVICE_PRINCIPALS["ingest-sink"]}


def test_a_city_system_gets_nothing_outside_its_topics_and_groups():
    policy = [g for g in grants(city_systems=("tram-depot",)) if g.principal == "city-tram-depot"]
    assert {(g.resource, g.name, g.operations) for g in policy} == {
        ("topic", RAW_READINGS, ("Write", "Describe")),
        *(("topic", readings_topic(d), ("Read", "Describe")) for d in ("traffic", "energy", "waste")),
        ("group", "city-tram-depot", ("Read", "Describe")),
    }


def test_topic_prefix_applies_to_topics_and_no_admin_grants():
    policy = grants(topic_prefix="test.abc.", city_systems=CITY)
    assert all(g.name.startswith("test.abc.") for g in policy if g.resource == "topic" and g.pattern == "literal")
    assert ADMIN_PRINCIPAL not in {g.principal for g in policy}
    assert {g.principal for g in policy} == set(SERVICE_PRINCIPALS.values()) | {city_system_principal(n) for n in CITY}
    for grant in policy:
        assert grant.resource in {"topic", "group", "cluster", "transactional-id"}
        assert grant.pattern in {"literal", "prefixed"}
        assert grant.operations


def test_no_city_systems_no_city_grants():
    assert all(not g.principal.startswith("city-") for g in grants())
