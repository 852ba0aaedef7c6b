"""Settings of the register service (CITYSTREAM_REGISTER_* env), frozen and built once in the entrypoint."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import CommonSettings

# Local development only: deployments set CITYSTREAM_REGISTER_ADMIN_TOKEN (see services/register/README.md).
DEV_ADMIN_TOKEN = "citystream-dev-admin-token"


class RegisterSettings(CommonSettings):
    register_admin_token: SecretStr = Field(
        default=SecretStr(DEV_ADMIN_TOKEN), min_length=16, description="Bearer token of the bootstrap admin."
    )
    register_host: str = Field(default="127.0.0.1")
    register_port: int = Field(default=8081, ge=1, le=65535)
    register_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body accepted.")
    register_rotation_overlap_s: int = Field(
        default=24 * 3600, ge=0, description="How long an old credential keeps working after a rotation."
    )
    register_relay_poll_s: float = Field(default=0.5, gt=0, description="Outbox poll interval when idle.")
    register_relay_enabled: bool = Field(default=True, description="Run the outbox relay in this process.")
    register_retention_interval_s: float = Field(
        default=0, ge=0, description="Seconds between retention runs in this process; 0 (the default) leaves it to a "
        "scheduled `citystream retention run`. `make run` and docker-compose.yml set 3600.")
    register_retention_initial_delay_s: float = Field(default=60, ge=0, description="First run this long after start.")
    register_retention_database_url: str | None = Field(
        default=None, description="DSN of the retention role (citystream_retention: may delete time-series rows); "
        "unset = database_url.")
    retention_unregistered_days: int = Field(
        default=30, ge=0, description="Retention of rows whose sensor is not in the register (unknown-sensor "
        "rejections, readings of a deleted sensor), which declare none.")
    register_removals_burst: int = Field(
        default=5, ge=1, description="Public removal requests a client address may send at once (then 429).")
    register_removals_per_minute: int = Field(
        default=1, ge=1, description="Public removal requests per minute a client address may send after its burst.")
    register_map_tile_url: str = Field(
        default="", description="Basemap tile URL template (`{z}/{x}/{y}`) of the public map; empty draws none."
    )
    register_map_tile_attribution: str = Field(default="", description="Attribution the tile provider requires.")
