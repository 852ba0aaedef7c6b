"""Grafana as code: every SQL panel runs (macros substituted) against a migrated TimescaleDB holding data and
returns rows; every PromQL panel parses (promtool) and reads metrics a service exports or a rule records."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import yaml

from tests.integration.deploy.test_prometheus import exported_metric_names

ROOT = Path(__file__).resolve().parents[3]
GRAFANA = ROOT / "deploy" / "grafana"
NOW = datetime.now(UTC).replace(microsecond=0)
FROM, TO = NOW - timedelta(hours=6), NOW
INTERVAL = "5m"
METRICS = {"traffic": ("intensity", "occupancy", "averageVehicleSpeed"),
           "energy": ("activePower", "totalActiveEnergyImport", "voltage", "current", "powerFactor"),
           "waste": ("fillingLevel", "temperature", "cargoWeight", "methaneConcentration")}


def panels() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            found.append((f"{path.stem}: {panel['title']}", panel))
    return found


SQL_PANELS = [(name, panel) for name, panel in panels() if panel["datasource"]["type"].endswith("postgresql-datasource")]
PROM_PANELS = [(name, panel) for name, panel in panels() if panel["datasource"]["type"] == "prometheus"]


def substitute(sql: str) -> str:
    """Grafana's PostgreSQL macros, as Grafana expands them with the TimescaleDB option on."""
    stamp = lambda moment: f"'{moment.isoformat()}'::timestamptz"  # noqa: E731
    sql = re.sub(r"\$__timeGroupAlias\((\w+),\s*([^)]+)\)",
                 lambda m: f"time_bucket('{m.group(2).strip()}'::interval, {m.group(1)}) AS \"time\"", sql)
    sql = re.sub(r"\$__timeGroup\((\w+),\s*([^)]+)\)",
                 lambda m: f"time_bucket('{m.group(2).strip()}'::interval, {m.group(1)})", sql)
    sql = re.sub(r"\$__timeFilter\((\w+)\)", lambda m: f"{m.group(1)} BETWEEN {stamp(FROM)} AND {stamp(TO)}", sql)
    sql = sql.replace("$__timeFrom()", stamp(FROM)).replace("$__timeTo()", stamp(TO))
    sql = sql.replace("$__interval_ms", str(5 * 60 * 1000)).replace("$__interval", INTERVAL)
    assert "$" not in sql, f"unsubstituted macro or variable in: {sql}"
    return sql


async def seed(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        readings, rollups = [], []
        for domain, names in METRICS.items():
            for index in range(3):
                sensor = f"{domain}-grafana-{index}"
                for seq in range(36):
                    at = NOW - timedelta(minutes=5 * seq + 1)
                    values = {name: round(50 + 40 * math.sin(seq / 5 + index), 3) for name in names}
                    readings.append((at, sensor, seq, domain, at + timedelta(seconds=2), json.dumps(values)))
                    rollups.append((at.replace(second=0), sensor, names[0], domain, 3, 1.0, 9.0, 5.0, 7.0))
        await connection.executemany(
            "INSERT INTO readings VALUES ($1, $2, $3, $4, $5, 1, $6::jsonb)", readings)
        await connection.executemany("INSERT INTO rollups_1m VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)", rollups)
        await connection.executemany(
            "INSERT INTO rejections VALUES ($1, $2, 'traffic-grafana-0', 1, $3, 'detail', NULL, 'http', NULL)",
            [(NOW - timedelta(minutes=m), uuid.uuid4(), reason)
             for m, reason in ((3, "OUT_OF_RANGE"), (30, "BAD_CREDENTIALS"), (90, "MALFORMED"))])
        kinds = {"traffic": "congestion", "energy": "energy_outage", "waste": "overflow"}
        events = []
        for domain, kind in kinds.items():
            for number, status in enumerate(("open", "resolved")):
                alert_id = f"a-{domain}-{number}"
                events.append((NOW - timedelta(minutes=40), f"{alert_id}-o", alert_id, "opened", f"{domain}-grafana-0",
                               domain, kind, "high", "open", NOW - timedelta(minutes=40)))
                if status == "resolved":
                    events.append((NOW - timedelta(minutes=10), f"{alert_id}-r", alert_id, "resolved",
                                   f"{domain}-grafana-0", domain, kind, "high", "resolved", NOW - timedelta(minutes=40)))
        await connection.executemany(
            "INSERT INTO alert_events (occurred_at, event_id, alert_id, event_type, sensor_id, domain, kind, severity,"
            " status, opened_at, explanation) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'{}'::jsonb)", events)
    finally:
        await connection.close()


def test_dashboards_json_is_generated_from_the_source():
    import importlib.util

    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, text in module.render().items():
        assert path.read_text() == text, f"{path.name} is stale: run python deploy/grafana/generate.py"
    assert {path.stem for path in module.render()} == {"traffic", "energy", "waste", "pipeline-health"}


def test_provisioning_names_both_datasources_used_by_the_panels():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "citystream.yml").read_text())
    uids = {source["uid"]: source["type"] for source in provisioned["datasources"]}
    used = {(panel["datasource"]["uid"], panel["datasource"]["type"]) for _, panel in panels()}
    assert used == set(uids.items())
    board_provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "citystream.yml").read_text())
    assert board_provider["providers"][0]["type"] == "file"


async def test_every_sql_panel_runs_and_returns_rows(fresh_database_url):
    assert len(SQL_PANELS) >= 20
    await seed(fresh_database_url)
    # Grafana's datasource logs in as the read-only role: the panels must work with its grants.
    scheme, _, rest = fresh_database_url.partition("://")
    connection = await asyncpg.connect(f"{scheme}://citystream_reader:citystream_reader@{rest.partition('@')[2]}")
    failures = []
    try:
        for name, panel in SQL_PANELS:
            for target in panel["targets"]:
                try:
                    rows = await connection.fetch(substitute(target["rawSql"]))
                except asyncpg.PostgresError as problem:
                    failures.append(f"{name}: {problem}")
                    continue
                if not rows:
                    failures.append(f"{name}: no rows although data exists")
                elif target["format"] == "time_series" and "time" not in rows[0].keys():
                    failures.append(f"{name}: time series without a `time` column")
                elif target["format"] == "table" and panel["type"] == "stat" and not rows[0][0]:
                    failures.append(f"{name}: stat is zero although alerts exist")
    finally:
        await connection.close()
    assert failures == []


def test_every_promql_panel_parses_and_reads_known_metrics(tmp_path):
    assert PROM_PANELS
    binary = shutil.which("promtool")
    assert binary, "promtool missing: apt-get install prometheus"
    rules = {"groups": [{"name": "panels", "rules": [
        {"record": f"panel:check_{index}", "expr": target["expr"].replace("$__rate_interval", "5m")}
        for index, (_, panel) in enumerate(PROM_PANELS) for target in panel["targets"]]}]}
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run([binary, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    known = exported_metric_names() | {"up"}
    used = {name for _, panel in PROM_PANELS for target in panel["targets"]
            for name in re.findall(r"\b(citystream_[a-z0-9_]+|up)\b", target["expr"])}
    assert used <= known, f"not exported by any service: {sorted(used - known)}"


@pytest.mark.parametrize("sql", ["SELECT $__timeGroupAlias(at, $__interval) FROM t WHERE $__timeFilter(at)"])
def test_macro_substitution_leaves_no_macro(sql):
    assert "time_bucket('5m'::interval, at) AS \"time\"" in substitute(sql)
