"""What the sink does with records it cannot store: Poison for bad values, storable MALFORMED rejections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from schemas.rejections import RejectedReading
from services.ingest.sink_dead_letters import dead_letter_record
from services.ingest.sink_rows import Poison, to_row
from services.ingest.sink_writer import is_data_error

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class FakeRecord:  # the attributes of aiokafka's ConsumerRecord the sink reads
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def reading_value(**changes) -> bytes:
    value = {"sensor_id": "traffic-a", "seq": 7, "observed_at": NOW.isoformat(), "received_at": NOW.isoformat(),
             "register_version": 1, "domain": "traffic", "metrics": {"intensity": 3.0}}
    return orjson.dumps(value | changes)


def test_a_valid_reading_becomes_a_row():
    row = to_row("readings", reading_value())
    assert row[1:4] == ("traffic-a", 7, "traffic")


@pytest.mark.parametrize("changes", [{"seq": 2**63}, {"seq": -1}, {"register_version": 2**31}, {"seq": "7"}])
def test_numbers_outside_the_columns_are_poison_not_a_retry_loop(changes):
    with pytest.raises(Poison):
        to_row("readings", reading_value(**changes))


@pytest.mark.parametrize("error", [asyncpg.UntranslatableCharacterError("x"), asyncpg.UniqueViolationError("x"),
                                   OverflowError("int64")])
def test_errors_caused_by_the_rows_are_data_errors(error):
    assert is_data_error(error)


@pytest.mark.parametrize("error", [ConnectionRefusedError(), asyncpg.CannotConnectNowError("x"), TimeoutError()])
def test_outages_are_not_data_errors(error):
    assert not is_data_error(error)


def test_dead_letter_is_a_storable_malformed_rejection_with_place_reason_and_payload():
    value = reading_value(metrics={"note": "a\u0000b"})
    record = FakeRecord("p.citystream.readings.traffic.v1", 2, 41, b"traffic-a", value)
    out = dead_letter_record(record, "database refused the row: unsupported Unicode escape sequence", NOW, "ingest")
    rejection = RejectedReading.model_validate_json(out.value)
    assert rejection.reason.value == "MALFORMED" and rejection.source == "sink"
    assert rejection.sensor_id == "traffic-a" and out.key == b"traffic-a"
    assert "p.citystream.readings.traffic.v1[2]@41" in rejection.detail
    assert "unsupported Unicode escape" in rejection.detail
    assert rejection.payload == value.decode()  # the original text, kept as a string so it stays storable
    again = dead_letter_record(record, "same", NOW, "ingest")
    assert RejectedReading.model_validate_json(again.value).event_id == rejection.event_id  # replay-stable id


def test_dead_letter_of_a_raw_nul_byte_drops_it():
    record = FakeRecord("t", 0, 1, None, b"\x00garbage")
    rejection = RejectedReading.model_validate_json(dead_letter_record(record, "not JSON", NOW, "ingest").value)
    assert rejection.payload == "garbage" and rejection.sensor_id is None
