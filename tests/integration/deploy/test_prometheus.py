"""Prometheus as code: promtool validates the config and rules and runs the rule unit tests; every scraped port is
a service port, and every metric the rules read is one a service exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from citystream.run import COMPONENTS  # the service catalogue `make run` starts: the one source of ports

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
SERVICE_PORTS = {component.name: component.port for component in COMPONENTS if component.port is not None}


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: apt-get install prometheus (listed in deploy/local/apt-packages.txt)"
    done = subprocess.run([binary, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_config_and_rules_are_valid():
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")
    output = promtool("check", "rules", "rules/recording.yml", "rules/alerts.yml")
    assert "10 rules found" in output and "8 rules found" in output


def test_rule_unit_tests_pass():
    assert "SUCCESS" in promtool("test", "rules", "rules/alerts.test.yml")


@pytest.mark.parametrize(("config_file", "host"), [("prometheus.yml", "127.0.0.1"), ("prometheus.compose.yml", None)])
def test_every_service_port_is_scraped(config_file, host):
    assert len(SERVICE_PORTS) >= 6 and len(set(SERVICE_PORTS.values())) == len(SERVICE_PORTS)
    if config_file != "prometheus.yml":
        assert "SUCCESS" in promtool("check", "config", config_file)
    config = yaml.safe_load((PROMETHEUS / config_file).read_text())
    targets = {job["job_name"].removeprefix("citystream-"): target.rsplit(":", 1)
               for job in config["scrape_configs"] for group in job["static_configs"] for target in group["targets"]}
    assert {job: int(port) for job, (_, port) in targets.items()} == SERVICE_PORTS
    # Locally every service is on this host; in Compose each job's host is its service name.
    assert all(target_host == (host or job) for job, (target_host, _) in targets.items())


def exported_metric_names() -> set[str]:
    names = set()
    for path in (ROOT / "services").rglob("*.py"):
        names |= set(re.findall(r"[\"'](citystream_[a-z0-9_]+)[\"']", path.read_text()))
    return names


def test_rules_read_only_metrics_that_services_export():
    exported = exported_metric_names()
    used = set()
    for rule_file in ("recording.yml", "alerts.yml"):
        for group in yaml.safe_load((PROMETHEUS / "rules" / rule_file).read_text())["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"\b(citystream_[a-z0-9_]+)", rule["expr"]))
    assert used and used <= exported, f"not exported by any service: {sorted(used - exported)}"


def test_detection_lag_is_alerted_from_the_anomaly_workers_consumer_lag_gauge():
    rules = {rule.get("alert"): rule for group in yaml.safe_load((PROMETHEUS / "rules" / "alerts.yml").read_text())
             ["groups"] for rule in group["rules"]}
    recording = {rule["record"]: rule["expr"] for group in yaml.safe_load(
        (PROMETHEUS / "rules" / "recording.yml").read_text())["groups"] for rule in group["rules"]}
    lag = rules["CityStreamDetectionLagGrowing"]["expr"]
    assert "citystream:detection_lag_records:sum" in lag
    assert "citystream_anomaly_consumer_lag_records" in recording["citystream:detection_lag_records:sum"]
    assert "by (topic)" in recording["citystream:detection_lag_records:sum"]
    # The gauge is the worker's: the name the rule reads is the one services/anomaly/metrics.py exports.
    assert '"citystream_anomaly_consumer_lag_records"' in (ROOT / "services/anomaly/metrics.py").read_text()
