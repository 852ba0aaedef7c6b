"""Produced records validate against the contracts and carry a deterministic event-id; batching partitions keys
exactly like aiokafka's DefaultPartitioner; the per-batch credential check answers as the per-reading one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.partitioner import DefaultPartitioner

from schemas import headers
from schemas.readings import READING_MODEL_BY_DOMAIN
from schemas.register import CredentialKind
from schemas.rejections import RejectedReading
from services.common import jsonwire
from services.common.kafka_batches import partition_of
from services.ingest.batch import gate_batch
from services.ingest.credentials import CredentialCheck, matches, parse_credential
from services.ingest.gate import Admitted, GateLimits, Rejected
from services.ingest.ratelimit import RateLimiter
from services.ingest.records import admitted_record, rejected_record
from services.ingest.register_state import RegisterState
from tests.support.ingest_factories import new_credential, reading, registration

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_every_produced_record_validates_and_admitted_event_ids_are_sensor_and_seq():
    state = RegisterState()
    gateway_key, gateway_hash = new_credential(CredentialKind.GATEWAY)
    for name in ("traffic-rec-001", "traffic-rec-002"):
        state.put(registration(name, gateway_hash))
    readings = [reading(seq, NOW - timedelta(seconds=seq), sensor_id=f"traffic-rec-00{1 + seq % 2}",
                        intensity=float(seq)) for seq in range(1, 7)]
    readings.append(reading(9, NOW, sensor_id="traffic-rec-001", voltage=1.0))  # undeclared: a rejection
    outcomes = gate_batch(readings, parse_credential(gateway_key), state, NOW, GateLimits(), RateLimiter())
    assert [type(outcome) for outcome in outcomes] == [Admitted] * 6 + [Rejected]
    event_ids = []
    for outcome, raw in zip(outcomes, readings):
        if isinstance(outcome, Admitted):
            record = admitted_record(outcome, "ingest")
            wire = READING_MODEL_BY_DOMAIN[outcome.domain].model_validate(jsonwire.loads(record.value))
            assert (wire.sensor_id, wire.seq, wire.received_at) == (outcome.sensor_id, outcome.seq, NOW)
            assert wire.observed_at == outcome.observed_at and record.key == outcome.sensor_id.encode()
        else:
            record = rejected_record(outcome, raw, "http", NOW, "ingest")
            assert RejectedReading.model_validate_json(record.value).reason.value == "UNDECLARED_METRIC"
        names = [name for name, _ in record.headers]
        assert names == [headers.CONTENT_TYPE, headers.SCHEMA, headers.PRODUCED_BY, headers.EVENT_ID]
        assert headers.header_value(record.headers, headers.SCHEMA) == record.topic
        event_ids.append(headers.header_value(record.headers, headers.EVENT_ID))
    assert event_ids[:6] == [f"traffic-rec-00{1 + seq % 2}:{seq}" for seq in range(1, 7)]
    assert len(set(event_ids)) == len(event_ids)


def test_partition_of_agrees_with_aiokafkas_default_partitioner():
    partitions = [0, 1, 2, 3, 4, 5]
    for index in range(300):
        key = f"traffic-part-{index:04d}".encode()
        assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)
    assert partition_of(None, partitions) in partitions


def test_the_batch_credential_check_answers_as_matches_for_every_stored_hash():
    presented_text, right = new_credential(CredentialKind.GATEWAY)
    presented = parse_credential(presented_text)
    _, other_secret = new_credential()
    expired = right.model_copy(update={"not_after": NOW})
    still_valid = right.model_copy(update={"not_after": NOW + timedelta(seconds=1)})
    wrong_hash = right.model_copy(update={"secret_sha256": other_secret.secret_sha256})
    other_key = other_secret
    check = CredentialCheck(presented, NOW)
    for stored in (right, expired, still_valid, wrong_hash, other_key, right, wrong_hash, expired):
        assert check.accepts(stored) is matches(presented, stored, NOW)
    assert [check.accepts(s) for s in (right, expired, wrong_hash)] == [True, False, False]


def test_admitted_records_write_each_instant_in_its_own_offset_whatever_rfc_3339_form_it_came_in():
    state = RegisterState()
    key, key_hash = new_credential()
    state.put(registration("traffic-rec-iso", key_hash))
    sent = ["2026-03-10T13:00:00.5+02:00", "2026-03-10t11:00:00Z", "2026-03-10 11:00:00.25z", "2026-03-10T11:00:00Z"]
    readings = [reading(seq, intensity=1.0) | {"observed_at": text} for seq, text in enumerate(sent, 1)]
    now = datetime(2026, 3, 10, 11, 0, 1, 125000, tzinfo=UTC)
    outcomes = gate_batch(readings, parse_credential(key), state, now, GateLimits(), RateLimiter())
    written = [jsonwire.loads(admitted_record(outcome, "ingest").value) for outcome in outcomes]
    assert [w["observed_at"] for w in written] == [
        "2026-03-10T13:00:00.500000+02:00", "2026-03-10T11:00:00+00:00", "2026-03-10T11:00:00.250000+00:00",
        "2026-03-10T11:00:00+00:00"]
    assert {w["received_at"] for w in written} == {"2026-03-10T11:00:01.125000+00:00"}
