"""`citystream ingest send`: JSON and CSV files become one batch; the per-reading outcomes are printed."""

from __future__ import annotations

import httpx
import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from services.ingest import cli

CSV = "seq,observed_at,intensity,averageVehicleSpeed\n1,2026-03-01T12:00:00+00:00,12,48.5\n2,2026-03-01T12:01:00+00:00,,50\n"


def test_csv_rows_become_readings_with_their_metrics():
    readings = cli.load_readings(CSV, ".csv")
    assert readings == [
        {"seq": 1, "observed_at": "2026-03-01T12:00:00+00:00", "metrics": {"intensity": 12.0,
                                                                            "averageVehicleSpeed": 48.5}},
        {"seq": 2, "observed_at": "2026-03-01T12:01:00+00:00", "metrics": {"averageVehicleSpeed": 50.0}},
    ]


@pytest.mark.parametrize("text", ['{"readings": [{"seq": 1}]}', '[{"seq": 1}]'])
def test_json_batch_or_list(text):
    assert cli.load_readings(text, ".json") == [{"seq": 1}]


@pytest.mark.parametrize(("text", "suffix"), [("seq,observed_at,x\nnope,2026-03-01T12:00:00+00:00,1\n", ".csv"),
                                              ("{broken", ".json"), ('{"readings": 3}', ".json")])
def test_bad_files_are_refused_with_a_message(text, suffix):
    with pytest.raises(cli.BadFile):
        cli.load_readings(text, suffix)


def test_send_prints_every_outcome_and_fails_when_one_was_rejected(tmp_path, monkeypatch):
    seen = []

    def ingest(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["authorization"], orjson.loads(request.content)))
        return httpx.Response(207, json={"accepted": 1, "rejected": 1, "outcomes": [
            {"index": 0, "status": "accepted", "sensor_id": "traffic-1", "seq": 1},
            {"index": 1, "status": "rejected", "reason": "OUT_OF_RANGE", "field": "metrics.intensity",
             "detail": "above 10000", "sensor_id": "traffic-1", "seq": 2}]})

    monkeypatch.setattr(cli, "_client", lambda url, credential: httpx.Client(
        base_url=url, headers={"authorization": f"Bearer {credential}"}, transport=httpx.MockTransport(ingest)))
    monkeypatch.setattr(cli, "console", Console(width=200))  # one table row per line
    batch = tmp_path / "batch.csv"
    batch.write_text(CSV)
    result = CliRunner().invoke(cli.app, ["send", str(batch), "--credential", "k1.secret"])
    assert result.exit_code == 1
    assert seen == [("Bearer k1.secret", {"readings": cli.load_readings(CSV, ".csv")})]
    assert "OUT_OF_RANGE" in result.output and "metrics.intensity" in result.output
    assert "accepted 1, rejected 1" in result.output


def test_send_retries_after_503_then_succeeds(tmp_path, monkeypatch):
    answers = [httpx.Response(503, headers={"Retry-After": "0"}, json={"reason": "UNAVAILABLE", "detail": "x"}),
               httpx.Response(200, json={"accepted": 1, "rejected": 0, "outcomes": [
                   {"index": 0, "status": "accepted", "sensor_id": "traffic-1", "seq": 1}]})]
    monkeypatch.setattr(cli, "_client", lambda url, credential: httpx.Client(
        base_url=url, transport=httpx.MockTransport(lambda request: answers.pop(0))))
    batch = tmp_path / "batch.json"
    batch.write_text('[{"seq": 1, "observed_at": "2026-03-01T12:00:00+00:00", "metrics": {"intensity": 1}}]')
    result = CliRunner().invoke(cli.app, ["send", str(batch), "--credential", "k1.secret"])
    assert result.exit_code == 0, result.output
    assert answers == [] and "accepted 1, rejected 0" in result.output
