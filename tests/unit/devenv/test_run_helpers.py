"""`citystream run`'s generated configs: Prometheus scrapes the ports the services got, Grafana's datasources
point at this runtime, and a missing Prometheus or Grafana is one clear line, not a failure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from citystream import run
from citystream.devenv.config import DevSettings

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(tmp_path) -> DevSettings:
    return DevSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", prometheus_port=19990,
                       grafana_port=19991, postgres_port=15999)


def test_prometheus_config_targets_the_ports_the_services_got(settings):
    ports = {component.name: 40000 + index for index, component in enumerate(run.COMPONENTS)}
    path = run.write_prometheus_config(settings, ports)
    assert path.parent == settings.state_dir / "prometheus"
    config = yaml.safe_load(path.read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {f"citystream-{name}": [f"127.0.0.1:{port}"] for name, port in ports.items()}
    assert config["rule_files"] and all(Path(rule).is_absolute() and Path(rule).exists()
                                        for rule in config["rule_files"])
    if shutil.which("promtool"):
        checked = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_every_member_of_a_scaled_stage(settings):
    config = yaml.safe_load(run.write_prometheus_config(settings, {"ingest-sink": [8084, 8184],
                                                                   "ingest-http": [8082, 8082]}).read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["citystream-ingest-sink"] == ["127.0.0.1:8084", "127.0.0.1:8184"]
    assert targets["citystream-ingest-http"] == ["127.0.0.1:8082"]  # one port shared: one target


def test_grafana_is_provisioned_against_this_runtime(settings, tmp_path):
    binary = tmp_path / "grafana"
    binary.write_text("#!/bin/sh\n")
    command, env = run.grafana_command(settings, str(binary))
    assert command[:2] == [str(binary), "server"]
    assert "cfg:default.server.http_port=19991" in command
    provisioning = settings.state_dir / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "citystream.yml").read_text())["datasources"]
    urls = {source["type"]: source["url"] for source in sources}
    assert urls["prometheus"] == "http://127.0.0.1:19990"
    assert urls["grafana-postgresql-datasource"] == "127.0.0.1:15999"
    boards = yaml.safe_load((provisioning / "dashboards" / "citystream.yml").read_text())
    assert boards["providers"][0]["options"]["path"] == str(REPO / "deploy" / "grafana" / "dashboards")


def test_missing_prometheus_and_grafana_are_one_line_each_with_the_way_out(settings, monkeypatch, capsys):
    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    platform = run.Platform(settings)
    platform.start_prometheus({})
    platform.start_grafana()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and not platform.processes
    assert "prometheus" in lines[0] and "apt-get install prometheus" in lines[0]
    assert "grafana" in lines[1] and "docker compose" in lines[1]


def test_system_packages_include_prometheus():
    listed = (REPO / "deploy" / "local" / "apt-packages.txt").read_text().split()
    script = (REPO / "deploy" / "local" / "install-system-packages.sh").read_text()
    assert "prometheus" in listed and "apt-packages.txt" in script
