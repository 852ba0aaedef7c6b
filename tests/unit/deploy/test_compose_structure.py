"""docker-compose.yml cannot run here (no Docker engine), so its structure is checked to keep it from rotting."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
EXPECTED_PORTS = {
    "kafka": "19092", "timescaledb": "15432", "register": "8081", "ingest-http": "8082", "ingest-gate": "8083",
    "ingest-sink": "8084", "anomaly": "8085", "api": "8080", "prometheus": "9090", "grafana": "3000",
}
LONG_RUNNING = [name for name in SERVICES if name != "init"]


def test_every_component_is_present():
    assert set(EXPECTED_PORTS) | {"init"} == set(SERVICES)


def port_mapping(mapping: str) -> tuple[str, str, str]:
    """"ADDRESS:PUBLISHED:TARGET" → (address, published, target); the address may be a ${VAR:-default}."""
    address, published, target = mapping.rsplit(":", 2)
    return address, published, target


def bind_address(address: str) -> str:
    """The address compose binds when no variable is set: `${CITYSTREAM_BIND_ADDRESS:-127.0.0.1}` → 127.0.0.1."""
    match = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", address)
    return match.group(2) if match else address


@pytest.mark.parametrize("name", sorted(EXPECTED_PORTS))
def test_published_port_matches_the_local_runtime(name):
    published = {port_mapping(mapping)[1] for mapping in SERVICES[name]["ports"]}
    assert EXPECTED_PORTS[name] in published


@pytest.mark.parametrize("name", sorted(n for n in SERVICES if SERVICES[n].get("ports")))
def test_every_published_port_binds_to_loopback_unless_told_otherwise(name):
    """Development secrets (tokens, the citystream/citystream login, Grafana's admin password) must not answer on
    every interface of the host: each port binds ${CITYSTREAM_BIND_ADDRESS:-127.0.0.1}."""
    for mapping in SERVICES[name]["ports"]:
        assert isinstance(mapping, str), f"{name}: use the short ADDRESS:PUBLISHED:TARGET syntax"
        address, _, _ = port_mapping(mapping)
        assert address == "${CITYSTREAM_BIND_ADDRESS:-127.0.0.1}", (name, mapping)
        assert bind_address(address) == "127.0.0.1"


def test_a_mapping_without_an_address_would_be_caught():
    """The check above is not vacuous: compose's short "8080:8080" binds every interface and does not parse here."""
    with pytest.raises(ValueError):
        port_mapping("8080:8080")
    assert bind_address("${CITYSTREAM_BIND_ADDRESS:-0.0.0.0}") == "0.0.0.0"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_a_healthcheck(name):
    check = SERVICES[name]["healthcheck"]
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert check["retries"] >= 3


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    image = SERVICES[name]["image"]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), image
    assert not image.endswith(":latest")


def test_official_kafka_and_timescaledb_images():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["timescaledb"]["image"].startswith("timescale/timescaledb:")


@pytest.mark.parametrize("name", [n for n in SERVICES if SERVICES[n].get("image", "").startswith("citystream:")])
def test_citystream_services_wait_for_healthy_infrastructure_and_init(name):
    depends = SERVICES[name]["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["timescaledb"]["condition"] == "service_healthy"
    if name != "init":
        assert depends["init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", [n for n in SERVICES if "python" in SERVICES[n].get("command", [])])
def test_service_commands_point_at_modules_that_exist(name):
    command = SERVICES[name]["command"]
    module = command[command.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"


def test_the_image_builds_from_a_dockerfile_in_the_repo():
    build = SERVICES["register"]["build"]
    assert (REPO / build["context"] / build["dockerfile"]).is_file()


def test_grafana_and_prometheus_mount_the_config_shipped_as_code():
    mounts = [volume.split(":")[0] for volume in SERVICES["grafana"]["volumes"] + SERVICES["prometheus"]["volumes"]]
    for mount in mounts:
        assert (REPO / mount).exists(), mount


def test_kafka_and_timescaledb_keep_their_data_on_the_named_volumes():
    """Each image writes its data where the volume is mounted, so `docker compose down` (without -v) keeps it."""
    kafka, timescaledb = COMPOSE["services"]["kafka"], COMPOSE["services"]["timescaledb"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert f"kafka-data:{log_dirs}" in kafka["volumes"]
    data_dir = timescaledb.get("environment", {}).get("PGDATA", "/var/lib/postgresql/data")
    assert f"timescaledb-data:{data_dir}" in timescaledb["volumes"]
