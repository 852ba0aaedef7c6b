"""Contracts refuse NaN and ±Infinity in every float field: they are not JSON, and other languages cannot read them."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import RawReading, SensorRegistration
from schemas.topics import CATALOGUE

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "schemas" / "examples"
NON_FINITE = (math.nan, math.inf, -math.inf)
# RejectedReading.payload is the offending input as received (Any): a NaN there is evidence, not a contract value.
AS_RECEIVED = {"payload"}


def float_paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every float leaf of a decoded JSON document (ints and booleans are not floats)."""
    if isinstance(node, float):
        return [path]
    if isinstance(node, dict):
        return [found for key, value in node.items() if key not in AS_RECEIVED
                for found in float_paths(value, (*path, key))]
    if isinstance(node, list):
        return [found for index, value in enumerate(node) for found in float_paths(value, (*path, index))]
    return []


def replaced(document: Any, path: tuple, value: float) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def examples() -> list[tuple[str, Any, dict, tuple]]:
    cases = []
    for spec in CATALOGUE:
        for number, example in enumerate(json.loads((EXAMPLES_DIR / f"{spec.name}.json").read_text())):
            cases += [(f"{spec.name}[{number}]:{'.'.join(map(str, path))}", spec.model, example, path)
                      for path in float_paths(example)]
    return cases


CASES = examples()


def test_the_golden_examples_hold_floats_of_every_kind_of_message():
    """Guards the parametrised test below against passing on nothing (the register's example has integers only:
    its floats are tested on their own below)."""
    covered = {case_id.split("[")[0] for case_id, *_ in CASES}
    assert {"citystream.readings.raw.v1", "citystream.readings.traffic.v1", "citystream.readings.energy.v1",
            "citystream.readings.waste.v1", "citystream.rollups.1m.v1", "citystream.alerts.v1"} <= covered


@pytest.mark.parametrize(("case_id", "model", "example", "path"), CASES, ids=[case[0] for case in CASES])
@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_every_float_field_refuses_nan_and_infinity(case_id, model, example, path, value):
    model.model_validate(example)  # the finite original parses
    with pytest.raises(ValidationError) as refused:
        model.model_validate(replaced(example, path, value))
    assert [error["type"] for error in refused.value.errors()] == ["finite_number"], case_id
    # Python's json writes NaN/Infinity literals; the JSON parser of the models must refuse them too.
    with pytest.raises(ValidationError):
        model.model_validate_json(json.dumps(replaced(example, path, value)))


@pytest.mark.parametrize("value", NON_FINITE, ids=["nan", "inf", "-inf"])
def test_register_record_floats_refuse_nan_and_infinity(value):
    example = json.loads((EXAMPLES_DIR / "citystream.register.sensors.v1.json").read_text())[0]
    paths = [("metrics", 0, "min"), ("metrics", 0, "max"), ("reporting_interval_s",)]
    paths = [path for path in paths if _holds(example, path)]
    assert len(paths) == 3, "the register example changed shape: update the paths"
    for path in paths:
        with pytest.raises(ValidationError) as refused:
            SensorRegistration.model_validate(replaced(example, path, value))
        assert "finite_number" in {error["type"] for error in refused.value.errors()}, path


def _holds(document: Any, path: tuple) -> bool:
    for step in path:
        try:
            document = document[step]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(document, (int, float))


def test_raw_reading_refuses_non_finite_metrics_as_the_lenient_parser_reads_them():
    body = '{"seq": 1, "observed_at": "2026-11-23T08:00:00Z", "metrics": {"intensity": %s}}'
    for literal in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValidationError, match="finite number"):
            RawReading.model_validate(json.loads(body % literal))
    assert RawReading.model_validate(json.loads(body % "1e308")).metrics == {"intensity": 1e308}
