"""Writes the CityStream Grafana dashboards (dashboards/*.json) from the panel definitions below.

Run `python deploy/grafana/generate.py` after editing; tests/integration/deploy checks the JSON is current and
runs every panel's SQL against a TimescaleDB holding data.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SQL_DS = {"type": "grafana-postgresql-datasource", "uid": "citystream-timescaledb"}
PROM_DS = {"type": "prometheus", "uid": "citystream-prometheus"}


def metric(domain: str, name: str, label: str, agg: str = "avg") -> str:
    return (f"SELECT $__timeGroupAlias(observed_at, $__interval), {agg}((metrics->>'{name}')::float8) AS \"{label}\"\n"
            f"FROM readings\nWHERE domain = '{domain}' AND $__timeFilter(observed_at) AND metrics ? '{name}'\n"
            "GROUP BY 1 ORDER BY 1")


def open_alerts(domain: str) -> str:
    return ("SELECT count(*) AS \"open alerts\" FROM (\n"
            "  SELECT DISTINCT ON (alert_id) status FROM alert_events\n"
            f"  WHERE domain = '{domain}' AND $__timeFilter(occurred_at) ORDER BY alert_id, occurred_at DESC\n"
            ") AS latest WHERE status <> 'resolved'")


def alerts_by_kind(domain: str) -> str:
    return ("SELECT $__timeGroupAlias(occurred_at, $__interval), kind AS metric, count(*) AS value\n"
            f"FROM alert_events WHERE domain = '{domain}' AND event_type = 'opened' AND $__timeFilter(occurred_at)\n"
            "GROUP BY 1, 2 ORDER BY 1")


def latest_table(domain: str, name: str, order: str, label: str) -> str:
    return ("SELECT sensor_id AS \"sensor\", observed_at AS \"last reading\", "
            f"(metrics->>'{name}')::float8 AS \"{label}\" FROM (\n"
            "  SELECT DISTINCT ON (sensor_id) sensor_id, observed_at, metrics FROM readings\n"
            f"  WHERE domain = '{domain}' AND $__timeFilter(observed_at) AND metrics ? '{name}'\n"
            "  ORDER BY sensor_id, observed_at DESC\n"
            f") AS latest ORDER BY 3 {order} LIMIT 10")


def sql_panel(title: str, sql: str, kind: str = "timeseries", fmt: str = "time_series", unit: str = "") -> dict:
    return {"title": title, "type": kind, "datasource": SQL_DS,
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "targets": [{"refId": "A", "datasource": SQL_DS, "editorMode": "code", "format": fmt, "rawQuery": True,
                         "rawSql": sql}]}


def prom_panel(title: str, expr: str, legend: str, unit: str = "") -> dict:
    return {"title": title, "type": "timeseries", "datasource": PROM_DS,
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "targets": [{"refId": "A", "datasource": PROM_DS, "expr": expr, "legendFormat": legend}]}


DASHBOARDS = {
    "traffic": ("CityStream · Traffic", [
        sql_panel("Traffic intensity (vehicles/h, mean of sensors)", metric("traffic", "intensity", "intensity")),
        sql_panel("Average vehicle speed (km/h)", metric("traffic", "averageVehicleSpeed", "speed"), unit="velocitykmh"),
        sql_panel("Occupancy (fraction)", metric("traffic", "occupancy", "occupancy"), unit="percentunit"),
        sql_panel("Open traffic alerts", open_alerts("traffic"), kind="stat", fmt="table"),
        sql_panel("Slowest sensors now", latest_table("traffic", "averageVehicleSpeed", "ASC", "km/h"), kind="table",
                  fmt="table"),
        sql_panel("Traffic alerts opened, by kind", alerts_by_kind("traffic")),
    ]),
    "energy": ("CityStream · Energy", [
        sql_panel("Active power (kW, sum over sensors)",
                  "SELECT time, sum(power) AS \"active power\" FROM (\n"
                  "  SELECT $__timeGroupAlias(observed_at, $__interval), sensor_id,"
                  " avg((metrics->>'activePower')::float8) AS power\n"
                  "  FROM readings WHERE domain = 'energy' AND $__timeFilter(observed_at) AND metrics ? 'activePower'\n"
                  "  GROUP BY 1, 2\n) AS per_sensor GROUP BY 1 ORDER BY 1", unit="kwatt"),
        sql_panel("Voltage, lowest reading (V)", metric("energy", "voltage", "min voltage", "min"), unit="volt"),
        sql_panel("Power factor (mean)", metric("energy", "powerFactor", "power factor")),
        sql_panel("Open energy alerts", open_alerts("energy"), kind="stat", fmt="table"),
        sql_panel("Highest load now", latest_table("energy", "activePower", "DESC", "kW"), kind="table", fmt="table"),
        sql_panel("Energy alerts opened, by kind", alerts_by_kind("energy")),
    ]),
    "waste": ("CityStream · Waste", [
        sql_panel("Fill level (mean of bins)", metric("waste", "fillingLevel", "fill level"), unit="percentunit"),
        sql_panel("Container temperature, highest (°C)", metric("waste", "temperature", "max temperature", "max"),
                  unit="celsius"),
        sql_panel("Methane, highest (ppm)", metric("waste", "methaneConcentration", "max methane", "max"), unit="ppm"),
        sql_panel("Fullest bins now", latest_table("waste", "fillingLevel", "DESC", "fill level"), kind="table",
                  fmt="table"),
        sql_panel("Open waste alerts", open_alerts("waste"), kind="stat", fmt="table"),
        sql_panel("Waste alerts opened, by kind", alerts_by_kind("waste")),
    ]),
    "pipeline-health": ("CityStream · Pipeline health", [
        prom_panel("Ingest rate (readings/s)", "sum by (outcome) (rate(citystream_ingest_readings_total[$__rate_interval]))",
                   "{{outcome}}", unit="reqps"),
        prom_panel("Rejections by reason (readings/s)",
                   "sum by (reason) (rate(citystream_ingest_readings_total{outcome=\"rejected\"}[$__rate_interval]))",
                   "{{reason}}", unit="reqps"),
        prom_panel("Sink consumer lag (records)", "sum by (topic) (citystream_ingest_sink_lag_records)", "{{topic}}"),
        prom_panel("Alert events (events/s)",
                   "sum by (event_type) (rate(citystream_anomaly_alert_events_total[$__rate_interval]))",
                   "{{event_type}}"),
        prom_panel("Sink rows/s", "sum by (table) (rate(citystream_ingest_sink_rows_total[$__rate_interval]))",
                   "{{table}}", unit="rowsps"),
        prom_panel("Services up", "up{job=~\"citystream-.*\"}", "{{job}}"),
        sql_panel("Readings stored per interval (database)",
                  "SELECT $__timeGroupAlias(received_at, $__interval), domain AS metric, count(*) AS value\n"
                  "FROM readings WHERE $__timeFilter(received_at) GROUP BY 1, 2 ORDER BY 1"),
        sql_panel("Rejections by reason (database)",
                  "SELECT $__timeGroupAlias(received_at, $__interval), reason AS metric, count(*) AS value\n"
                  "FROM rejections WHERE $__timeFilter(received_at) GROUP BY 1, 2 ORDER BY 1"),
        sql_panel("Alert events by severity (database)",
                  "SELECT $__timeGroupAlias(occurred_at, $__interval), severity AS metric, count(*) AS value\n"
                  "FROM alert_events WHERE $__timeFilter(occurred_at) GROUP BY 1, 2 ORDER BY 1"),
        sql_panel("Transit delay, p95 of observed → received (s)",
                  "SELECT $__timeGroupAlias(observed_at, $__interval),"
                  " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - observed_at))"
                  " AS \"p95 transit s\"\nFROM readings WHERE $__timeFilter(observed_at) GROUP BY 1 ORDER BY 1",
                  unit="s"),
    ]),
}


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    laid_out = []
    for index, panel in enumerate(panels):
        width = 12
        laid_out.append({"id": index + 1, "gridPos": {"h": 8, "w": width, "x": (index % 2) * width, "y": (index // 2) * 8},
                         **panel})
    return {"uid": f"citystream-{uid}", "title": title, "tags": ["citystream"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "editable": False, "refresh": "30s",
            "time": {"from": "now-6h", "to": "now"}, "templating": {"list": []}, "annotations": {"list": []},
            "panels": laid_out}


def render() -> dict[Path, str]:
    return {HERE / "dashboards" / f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
            for uid, (title, panels) in DASHBOARDS.items()}


if __name__ == "__main__":
    for path, text in render().items():
        path.write_text(text)
