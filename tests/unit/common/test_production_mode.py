"""Production mode: every service's settings refuse each development secret, accept real ones, and the entrypoints
exit at start-up with one line naming the setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.anomaly.settings import AnomalySettings
from services.api.settings import ApiSettings
from services.common.production import development_secrets, refuse_development_secrets
from services.common.settings import CommonSettings
from services.ingest.settings import IngestSettings
from services.register.settings import RegisterSettings

REPO = Path(__file__).resolve().parents[3]
REAL_DSN = "postgresql://citystream_app:Vq8k3Lw0pZt2@db.internal:5432/citystream"
REAL_READER_DSN = "postgresql://citystream_reader:Hh5n7Rw2xQe9@db.internal:5432/citystream"
REAL = {
    "database_url": REAL_DSN,
    "api_tokens": "8Gf3kq1ZpW0r:viewer,Tt7yLm2Nc9Qx:operator:desk-1,Zr4vB6hS1dKe:admin",
    "api_database_url": REAL_READER_DSN,
    "register_admin_token": SecretStr("0bW2nQ7vXe5kLr8tYc3m"),
    "register_retention_database_url": "postgresql://citystream_retention:Lm4pQ8sV2wXz@db.internal:5432/citystream",
}
# (service settings class, the secret fields it has) — every service of the platform.
SERVICES = {
    "register": (RegisterSettings, ("database_url", "register_admin_token", "register_retention_database_url")),
    "ingest": (IngestSettings, ("database_url",)),
    "anomaly": (AnomalySettings, ("database_url",)),
    "api": (ApiSettings, ("database_url", "api_tokens", "api_database_url")),
}
DEV_DSNS = [
    "postgresql://citystream:citystream@127.0.0.1:15432/citystream",
    "postgresql://citystream_app:citystream_app@timescaledb:5432/citystream",
    "postgresql://citystream_reader:citystream_reader@timescaledb:5432/citystream",
    "postgresql://citystream_retention:citystream_retention@timescaledb:5432/citystream",
    "postgresql://svc:citystream-dev-db@db:5432/citystream",
]
# field → (development value, the environment variable the refusal must name)
DEV_SECRETS = [
    *[("database_url", dsn, "CITYSTREAM_DATABASE_URL") for dsn in DEV_DSNS],
    *[("api_database_url", dsn, "CITYSTREAM_API_DATABASE_URL") for dsn in DEV_DSNS],
    *[("register_retention_database_url", dsn, "CITYSTREAM_REGISTER_RETENTION_DATABASE_URL") for dsn in DEV_DSNS],
    ("api_tokens", "dev-viewer:viewer", "CITYSTREAM_API_TOKENS"),
    ("api_tokens", "Tt7yLm2Nc9Qx:operator,dev-operator:operator", "CITYSTREAM_API_TOKENS"),
    ("api_tokens", "8Gf3kq1ZpW0r:viewer,dev-admin:admin:root", "CITYSTREAM_API_TOKENS"),
    ("api_tokens", "dev-viewer:viewer,dev-operator:operator,dev-admin:admin", "CITYSTREAM_API_TOKENS"),
    ("api_tokens", "citystream-dev-ops:operator", "CITYSTREAM_API_TOKENS"),
    ("register_admin_token", SecretStr("citystream-dev-admin-token"), "CITYSTREAM_REGISTER_ADMIN_TOKEN"),
    ("register_admin_token", SecretStr("citystream-dev-anything-else"), "CITYSTREAM_REGISTER_ADMIN_TOKEN"),
]


@pytest.fixture(autouse=True)
def no_citystream_env(monkeypatch):
    """The settings below must come from the test alone, not from a developer's exported CITYSTREAM_* variables."""
    for name in [name for name in os.environ if name.startswith("CITYSTREAM_")]:
        monkeypatch.delenv(name)


def build(service: str, mode: str, **overrides):
    settings_class, fields = SERVICES[service]
    return settings_class(env=mode, **({field: REAL[field] for field in fields} | overrides))


def cases() -> list[tuple[str, str, object, str]]:
    return [(service, field, value, env_name) for service, (_, fields) in SERVICES.items()
            for field, value, env_name in DEV_SECRETS if field in fields]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_real_secrets_start_in_production(service):
    settings = build(service, "production")
    assert development_secrets(settings) == []
    refuse_development_secrets(settings)  # returns: nothing to refuse


@pytest.mark.parametrize(("service", "field", "value", "env_name"), cases(),
                         ids=[f"{c[0]}-{c[1]}-{n}" for n, c in enumerate(cases())])
def test_each_development_secret_is_refused_in_production_naming_its_setting(service, field, value, env_name):
    settings = build(service, "production", **{field: value})
    with pytest.raises(SystemExit) as refused:
        refuse_development_secrets(settings)
    message = str(refused.value.code)
    assert "\n" not in message and message.startswith("CITYSTREAM_ENV=production refuses")
    assert [finding.setting for finding in development_secrets(settings)] == [env_name], message
    assert env_name in message
    # a real database password is never echoed; the public development one is not either
    assert "Vq8k3Lw0pZt2" not in message and "citystream_app@" not in message


@pytest.mark.parametrize(("service", "field", "value", "env_name"), cases()[:3] + cases()[-3:])
def test_development_mode_keeps_working_on_the_development_defaults(service, field, value, env_name):
    refuse_development_secrets(build(service, "development", **{field: value}))
    refuse_development_secrets(SERVICES[service][0]())  # all defaults, development mode


def test_the_defaults_are_refused_in_production_every_one_named():
    findings = {service: sorted(f.setting for f in development_secrets(settings_class(env="production")))
                for service, (settings_class, _) in SERVICES.items()}
    assert findings == {
        "register": ["CITYSTREAM_DATABASE_URL", "CITYSTREAM_REGISTER_ADMIN_TOKEN"],
        "ingest": ["CITYSTREAM_DATABASE_URL"],
        "anomaly": ["CITYSTREAM_DATABASE_URL"],
        "api": ["CITYSTREAM_API_TOKENS", "CITYSTREAM_DATABASE_URL"],
    }


def test_a_setting_the_process_never_reads_can_be_left_out():
    settings = build("ingest", "production", database_url=DEV_DSNS[0])
    refuse_development_secrets(settings, unused={"database_url"})
    with pytest.raises(SystemExit):
        refuse_development_secrets(settings)


def test_the_mode_is_read_from_citystream_env(monkeypatch):
    assert CommonSettings().env == "development"
    monkeypatch.setenv("CITYSTREAM_ENV", "production")
    assert CommonSettings().env == "production"
    monkeypatch.setenv("CITYSTREAM_ENV", "prod")  # a typo must not silently mean development
    with pytest.raises(ValueError, match="development"):
        CommonSettings()


def test_values_that_only_look_alike_are_not_refused():
    settings = build("api", "production", api_tokens="dev-viewer-2f9Kq0:viewer,xdev-admin:admin",
                     database_url="postgresql://citystream:S3cure-citystream@db/citystream")
    assert development_secrets(settings) == []


@pytest.mark.parametrize(("module", "env", "names"), [
    (["services.register"], {}, ["CITYSTREAM_DATABASE_URL", "CITYSTREAM_REGISTER_ADMIN_TOKEN"]),
    (["services.api"], {"CITYSTREAM_API_DATABASE_URL": REAL_READER_DSN}, ["CITYSTREAM_API_TOKENS"]),
    (["services.ingest", "sink"], {}, ["CITYSTREAM_DATABASE_URL"]),
    # ingest-http reads the database only to share rate limits between processes, and then checks its URL too.
    (["services.ingest", "http"],
     {"CITYSTREAM_INGEST_HTTP_SHARED_QUOTA": "true", "CITYSTREAM_INGEST_HTTP_PORT": "8195"},
     ["CITYSTREAM_DATABASE_URL"]),
    # The Faust workers read no database, so a `citystream-dev-` value elsewhere shows their entrypoints check too
    # (the local runtime spells its Kafka passwords so).
    (["services.ingest", "gate"], {"CITYSTREAM_INGEST_GATE_APP_ID": "citystream-dev-gate"},
     ["CITYSTREAM_INGEST_GATE_APP_ID"]),
    (["services.anomaly", "worker"], {"CITYSTREAM_ANOMALY_APP_ID": "citystream-dev-anomaly"},
     ["CITYSTREAM_ANOMALY_APP_ID"]),
], ids=["register", "api", "ingest-sink", "ingest-http-shared-quota", "ingest-gate", "anomaly"])
def test_a_service_started_in_production_on_development_secrets_exits_with_one_line(module, env, names, tmp_path):
    """The real entrypoint, as a deployment starts it: it must fail before opening a socket or a connection
    (Kafka points at a closed port: a process that got further would hang until the timeout fails the test)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CITYSTREAM_")}
    environment |= {"CITYSTREAM_ENV": "production", "CITYSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:9",
                    "CITYSTREAM_REGISTER_PORT": "8190", "CITYSTREAM_API_PORT": "8191",
                    "CITYSTREAM_INGEST_SINK_PORT": "8192", "CITYSTREAM_INGEST_GATE_PORT": "8193",
                    "CITYSTREAM_ANOMALY_WEB_PORT": "8194", "CITYSTREAM_INGEST_GATE_DATA_DIR": str(tmp_path / "gate"),
                    "CITYSTREAM_ANOMALY_DATA_DIR": str(tmp_path / "anomaly")} | env
    done = subprocess.run([sys.executable, "-m", *module], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=60, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("CITYSTREAM_ENV=production refuses to start on development secrets: ")
    for name in names:
        assert name in lines[0]
    assert "Uvicorn running" not in done.stdout + done.stderr
