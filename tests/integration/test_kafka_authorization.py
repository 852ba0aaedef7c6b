"""The broker enforces the catalogue (schemas/access.py): without credentials, or as a city system, nothing can be
written to the validated readings, register or actions topics, and a forged reading never reaches TimescaleDB;
a city system's readings on the raw topic still pass the gate and are stored."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from schemas.access import SERVICE_PRINCIPALS, city_system_principal, grants
from schemas.topics import ALERT_ACTIONS, CATALOGUE, RAW_READINGS, REGISTER_SENSORS, readings_topic
from services.common import jsonwire
from services.common.kafka import make_producer
from services.common.kafka_principals import apply_grants, delete_user, revoke_principal, upsert_users
from services.common.settings import KafkaAccess
from services.ingest.settings import IngestSettings
from services.ingest.sink_worker import SinkWorker
from tests.integration.ingest.helpers import publish_register
from tests.support.infra import Infrastructure
from tests.support.ingest_factories import new_credential, reading, registration
from tests.support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
PROTECTED = (readings_topic("traffic"), REGISTER_SENSORS, ALERT_ACTIONS)


@pytest.fixture
def principals(kafka: KafkaAccess, kafka_topics: str):
    """The catalogue's grants on this test's topics, for this test's own copies of the service principals (the
    runtime's real ones keep their passwords) and one city system. Yields service or city name -> KafkaAccess."""
    uid = uuid.uuid4().hex[:6]
    city = f"test-{uid}"
    own = {principal: f"{principal}-{uid}" for principal in SERVICE_PRINCIPALS.values()}
    policy = [replace(g, principal=own.get(g.principal, g.principal))
              for g in grants(topic_prefix=kafka_topics, city_systems=[city])]
    users = {g.principal: secrets.token_urlsafe(16) for g in policy}
    asyncio.run(upsert_users(kafka, users))
    asyncio.run(apply_grants(kafka, policy))
    access = {service: kafka.as_user(own[principal], users[own[principal]])
              for service, principal in SERVICE_PRINCIPALS.items()}
    access["city"] = kafka.as_user(city_system_principal(city), users[city_system_principal(city)])
    yield access
    for user in users:
        asyncio.run(revoke_principal(kafka, user))
        asyncio.run(delete_user(kafka, user))


async def _produce(access: KafkaAccess | str, topic: str, key: str, value: bytes, headers=()) -> None:
    producer = make_producer(access, f"authz-test-{uuid.uuid4().hex[:6]}", request_timeout_ms=5_000,
                             enable_idempotence=False)
    try:
        await producer.start()
        await producer.send_and_wait(topic, value, key=key.encode(), headers=list(headers))
    finally:
        await producer.stop()


async def _stored_seqs(database_url: str, sensor_id: str) -> list[int]:
    connection = await asyncpg.connect(database_url)
    try:
        return sorted(r["seq"] for r in await connection.fetch("SELECT seq FROM readings WHERE sensor_id = $1",
                                                                 sensor_id))
    finally:
        await connection.close()


def _start_gate(access: KafkaAccess, topic_prefix: str, database_url: str, tmp_path: Path) -> subprocess.Popen:
    env = os.environ | access.environment() | {
        "CITYSTREAM_TOPIC_PREFIX": topic_prefix, "CITYSTREAM_DATABASE_URL": database_url,
        # Under the gate's prefixed group and Faust-topic grants (schemas.access.GATE_APP_ID).
        "CITYSTREAM_INGEST_GATE_APP_ID": f"citystream-ingest-gate-{uuid.uuid4().hex[:6]}",
        "CITYSTREAM_INGEST_GATE_PORT": str(free_port()), "CITYSTREAM_INGEST_GATE_DATA_DIR": str(tmp_path / "gate"),
    }
    with (tmp_path / "gate.log").open("wb") as log_file:
        return subprocess.Popen([sys.executable, "-m", "services.ingest", "gate"], cwd=REPO, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


async def test_a_city_system_may_write_only_the_raw_topic(principals, settings):
    forged = jsonwire.dumps(reading(1) | {"sensor_id": "traffic-forged", "register_version": 3})
    for topic in PROTECTED:
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(principals["city"], settings.topic(topic), "traffic-forged", forged)
    await _produce(principals["city"], settings.topic(RAW_READINGS), "traffic-forged", forged)


async def test_an_unauthenticated_client_may_write_nothing(infrastructure: Infrastructure, settings):
    forged = jsonwire.dumps(reading(1) | {"sensor_id": "traffic-forged"})
    topics = (*PROTECTED, RAW_READINGS)
    if infrastructure.anonymous_bootstrap is None:
        # No listener without authentication: a client without credentials does not even get a connection.
        with pytest.raises((KafkaConnectionError, KafkaError)):
            await _produce(infrastructure.kafka_bootstrap, settings.topic(topics[0]), "traffic-forged", forged)
        return
    for topic in topics:
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(infrastructure.anonymous_bootstrap, settings.topic(topic), "traffic-forged", forged)


async def test_forged_readings_never_reach_timescaledb_and_a_city_systems_readings_do(
        principals, settings, infrastructure: Infrastructure, tmp_path):
    uid = uuid.uuid4().hex[:8]
    sensor = f"traffic-{uid}-authz"
    key, stored = new_credential()
    registered = registration(sensor, stored)
    # The register's principal publishes the registration, as the register service would.
    await publish_register(_as(settings, principals["register"]), registered)
    gate = _start_gate(principals["ingest-gate"], settings.topic_prefix, settings.database_url, tmp_path)
    sink_settings = IngestSettings(**_fields(principals["ingest-sink"]), database_url=settings.database_url,
                                   topic_prefix=settings.topic_prefix, instance_id=settings.instance_id)
    sink = SinkWorker(sink_settings)
    sink_task = asyncio.create_task(sink.run())
    try:
        validated = settings.topic(readings_topic("traffic"))
        # Forgeries: straight onto the validated topic, without credentials and as a city system.
        forged = jsonwire.dumps(reading(99) | {"sensor_id": sensor, "register_version": 1,
                                               "received_at": "2026-01-01T00:00:00Z", "domain": "traffic"})
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(principals["city"], validated, sensor, forged)
        if infrastructure.anonymous_bootstrap is not None:
            with pytest.raises(TopicAuthorizationFailedError):
                await _produce(infrastructure.anonymous_bootstrap, validated, sensor, forged)
        # The honest path: the city system's raw readings with the sensor's credential, through the gate.
        for seq in (1, 2):
            await _produce(principals["city"], settings.topic(RAW_READINGS), sensor, jsonwire.dumps(reading(seq)),
                           [("credential", key.encode())])
        seqs: list[int] = []
        for _ in range(120):
            seqs = await _stored_seqs(settings.database_url, sensor)
            if len(seqs) >= 2 or gate.poll() is not None or sink_task.done():
                break
            await asyncio.sleep(0.5)
        assert seqs == [1, 2], (tmp_path / "gate.log").read_text()[-3000:]
    finally:
        sink.stopping.set()
        await asyncio.wait_for(sink_task, 30)
        _stop(gate)
    assert 99 not in await _stored_seqs(settings.database_url, sensor)


def _fields(access: KafkaAccess) -> dict:
    return {"kafka_bootstrap": access.bootstrap, "kafka_security_protocol": access.security_protocol,
            "kafka_sasl_mechanism": access.sasl_mechanism, "kafka_username": access.username,
            "kafka_password": access.password}


def _as(settings, access: KafkaAccess):
    """`settings` (CommonSettings) with another Kafka principal."""
    return settings.model_copy(update={"kafka_security_protocol": access.security_protocol,
                                       "kafka_sasl_mechanism": access.sasl_mechanism,
                                       "kafka_username": access.username, "kafka_password": access.password})


def _citystream(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "citystream.cli", *args], cwd=REPO, env=env, capture_output=True, check=False,
                          text=True, timeout=60)


async def test_kafka_users_adds_a_city_system_that_writes_only_raw_and_removes_it(kafka: KafkaAccess, settings):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    env = os.environ | kafka.environment() | {"CITYSTREAM_TOPIC_PREFIX": settings.topic_prefix}
    added = await asyncio.to_thread(_citystream, "kafka-users", "add", name, env=env)
    assert added.returncode == 0, added.stderr
    lines = dict(line.split("=", 1) for line in added.stdout.splitlines() if "=" in line)
    city = kafka.as_user(lines["CITYSTREAM_KAFKA_USERNAME"], lines["CITYSTREAM_KAFKA_PASSWORD"])
    try:
        assert city.username == f"city-{name}"
        listed = await asyncio.to_thread(_citystream, "kafka-users", "list", env=env)
        assert f"city-{name}\t10 ACL entries" in listed.stdout.splitlines(), listed.stdout
        await _produce(city, settings.topic(RAW_READINGS), "traffic-cli", jsonwire.dumps(reading(1)))
        with pytest.raises(TopicAuthorizationFailedError):
            await _produce(city, settings.topic(REGISTER_SENSORS), "traffic-cli", jsonwire.dumps(reading(1)))
    finally:
        removed = await asyncio.to_thread(_citystream, "kafka-users", "remove", name, env=env)
    assert removed.returncode == 0, removed.stderr
    listed = await asyncio.to_thread(_citystream, "kafka-users", "list", env=env)
    assert f"city-{name}" not in listed.stdout
    with pytest.raises(KafkaConnectionError):  # its login is refused now
        await _produce(city, settings.topic(RAW_READINGS), "traffic-cli", jsonwire.dumps(reading(2)))



async def test_every_principal_writes_exactly_the_topics_the_catalogue_gives_it(principals, settings):
    """Each principal writes one record to each catalogue topic: accepted exactly where schemas/access.py grants
    Write, refused everywhere else."""
    city = principals["city"].username.removeprefix("city-")
    policy = grants(topic_prefix=settings.topic_prefix, city_systems=[city])
    in_policy = {**SERVICE_PRINCIPALS, "city": city_system_principal(city)}
    outcomes, expected = {}, {}
    for who, access in principals.items():
        for spec in CATALOGUE:
            topic = settings.topic(spec.name)
            expected[who, spec.name] = any(g.principal == in_policy[who] and g.resource == "topic"
                                           and g.name == topic and "Write" in g.operations for g in policy)
            try:
                await _produce(access, topic, "authz-probe", b"{}")
                outcomes[who, spec.name] = True
            except TopicAuthorizationFailedError:
                outcomes[who, spec.name] = False
    assert outcomes == expected
    assert sum(expected.values()) == 15  # the catalogue's writers, dead-letter writers included
