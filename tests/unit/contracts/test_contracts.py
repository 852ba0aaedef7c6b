"""Contracts: generated files match the models; golden examples keep parsing, against both model and JSON Schema."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from schemas import MetricDeclaration, RawReading, TrafficReading
from schemas.generate import ASYNCAPI_PATH, JSON_DIR, asyncapi, drifted
from schemas.topics import CATALOGUE, BY_NAME

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "schemas" / "examples"


def test_committed_generated_files_match_the_models():
    stale = drifted()
    assert stale == [], f"regenerate with `citystream schemas generate`: {[p.name for p in stale]}"


def test_every_topic_has_golden_examples():
    assert {path.stem for path in EXAMPLES_DIR.glob("*.json")} == {spec.name for spec in CATALOGUE}


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.name)
def test_golden_examples_parse_with_model_and_json_schema(spec):
    examples = json.loads((EXAMPLES_DIR / f"{spec.name}.json").read_text())
    schema = json.loads((JSON_DIR / f"{spec.name}.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert examples, "at least one golden example per topic"
    for example in examples:
        spec.model.model_validate(example)
        validator.validate(example)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.name)
def test_every_field_of_every_message_is_described(spec):
    """Integrators read the JSON Schema, not our code: a field without a description is a contract gap."""
    schema = json.loads((JSON_DIR / f"{spec.name}.schema.json").read_text())
    undescribed = [
        f"{model}.{name}"
        for model, node in [(schema.get("title", "root"), schema), *schema.get("$defs", {}).items()]
        for name, prop in node.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []


def test_asyncapi_documents_every_topic_with_key_and_headers():
    document = asyncapi()
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == set(BY_NAME)
    assert document["asyncapi"] == "3.0.0"
    for message in document["components"]["messages"].values():
        assert {"content-type", "schema"} <= set(message["headers"]["required"])
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    assert ASYNCAPI_PATH.exists()


def test_raw_reading_refuses_gate_owned_fields_and_naive_timestamps():
    with pytest.raises(ValidationError, match="received_at"):
        RawReading.model_validate(
            {"seq": 1, "observed_at": "2026-11-23T08:00:00Z", "metrics": {"intensity": 1}, "received_at": "x"}
        )
    with pytest.raises(ValidationError, match="timezone"):
        RawReading.model_validate({"seq": 1, "observed_at": "2026-11-23T08:00:00", "metrics": {"intensity": 1}})


def test_admitted_reading_ignores_unknown_optional_fields_from_newer_producers():
    example = json.loads((EXAMPLES_DIR / "citystream.readings.traffic.v1.json").read_text())[0]
    reading = TrafficReading.model_validate(example | {"added_in_v1_5": "ignored"})
    assert reading.metrics.averageVehicleSpeed == 41.5
    assert isinstance(reading.observed_at, datetime)


def test_metric_declaration_refuses_min_above_max():
    with pytest.raises(ValidationError, match="min 5.0 is above max 1.0"):
        MetricDeclaration(name="occupancy", unit="fraction", min=5, max=1)
