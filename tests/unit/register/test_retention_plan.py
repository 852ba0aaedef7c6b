"""Retention planning (pure): per-sensor cutoffs, the bound for whole-chunk drops, and where it is scheduled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from services.register.retention_plan import Chunk, droppable_chunks, plan_retention

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[3]


def test_each_sensor_gets_its_own_cutoff_and_chunks_wait_for_the_longest_retention():
    plan = plan_retention({"b-long": 365, "a-short": 7}, NOW, unregistered_days=30)
    assert plan.sensor_ids == ("a-short", "b-long")
    assert plan.cutoffs == (NOW - timedelta(days=7), NOW - timedelta(days=365))
    assert plan.unregistered_cutoff == NOW - timedelta(days=30)
    assert plan.drop_before == NOW - timedelta(days=365)
    assert plan.delete_before == NOW - timedelta(days=7)


def test_rows_of_no_registered_sensor_bound_the_chunk_drops_too():
    plan = plan_retention({"a": 7}, NOW, unregistered_days=30)
    assert plan.drop_before == NOW - timedelta(days=30)
    empty = plan_retention({}, NOW, unregistered_days=30)
    assert empty.drop_before == empty.delete_before == NOW - timedelta(days=30)


def test_a_chunk_goes_only_when_it_ends_at_or_before_the_bound():
    day = timedelta(days=1)
    bound = NOW - 10 * day
    chunks = [Chunk(f"c{i}", bound - (i + 1) * day, bound - i * day) for i in range(3)]
    straddling = Chunk("straddling", bound - day / 2, bound + day / 2)
    assert [c.name for c in droppable_chunks([straddling, *chunks], bound)] == ["c2", "c1", "c0"]


def test_negative_or_naive_input_is_refused():
    with pytest.raises(ValueError):
        plan_retention({"a": -1}, NOW, 30)
    with pytest.raises(ValueError):
        plan_retention({}, NOW.replace(tzinfo=None), 30)


def test_compose_and_make_run_schedule_retention_as_the_retention_role():
    register = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["register"]["environment"]
    assert float(register["CITYSTREAM_REGISTER_RETENTION_INTERVAL_S"]) > 0
    assert register["CITYSTREAM_REGISTER_RETENTION_DATABASE_URL"].startswith("postgresql://citystream_retention:")
    from citystream.devenv.config import DevSettings
    from citystream.run import Platform

    env = Platform(DevSettings()).service_env()
    assert float(env["CITYSTREAM_REGISTER_RETENTION_INTERVAL_S"]) > 0
    assert "citystream_retention:" in env["CITYSTREAM_REGISTER_RETENTION_DATABASE_URL"]
