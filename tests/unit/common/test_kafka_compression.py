"""Which codec CityStream's Kafka producers compress with, and what they fall back to."""

import aiokafka.codec
import pytest

from services.common.kafka import compression_type


def test_prefers_zstd_when_aiokafka_can_compress_it():
    # cramjam is a declared dependency (pyproject), so zstd is what every producer uses in a normal install.
    assert aiokafka.codec.has_zstd()
    assert compression_type() == "zstd"


def test_falls_back_to_lz4_without_zstd(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(aiokafka.codec, "has_zstd", lambda: False)
    monkeypatch.setattr(aiokafka.codec, "has_lz4", lambda: True)
    assert compression_type() == "lz4"


def test_falls_back_to_gzip_which_needs_no_extra_package(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(aiokafka.codec, "has_zstd", lambda: False)
    monkeypatch.setattr(aiokafka.codec, "has_lz4", lambda: False)
    assert compression_type() == "gzip"


def test_the_chosen_codec_round_trips_a_gate_record():
    # A reading's value as the gate writes it; the round trip goes through aiokafka's own codec functions.
    value = b'{"sensor_id":"traffic-0001","metric":"vehicle_count","value":17.0,' \
            b'"observed_at":"2026-12-05T10:00:00Z"}' * 8
    encode = getattr(aiokafka.codec, f"{compression_type()}_encode")
    decode = getattr(aiokafka.codec, f"{compression_type()}_decode")
    compressed = encode(value)
    assert len(compressed) < len(value)
    assert decode(compressed) == value
