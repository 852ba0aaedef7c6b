"""Settings of the simulator and the benchmark (CITYSTREAM_* env), built once in the command's entrypoint."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from services.common.settings import CommonSettings

# The register's documented local-development admin token (services/register/README.md); deployments set
# CITYSTREAM_REGISTER_ADMIN_TOKEN for both the register and the simulator.
LOCAL_ADMIN_TOKEN = "citystream-dev-admin-token"


class SimulateSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="CITYSTREAM_", frozen=True, extra="ignore", populate_by_name=True)

    register_url: str = Field(default="http://127.0.0.1:8081", validation_alias="CITYSTREAM_REGISTER_URL")
    ingest_url: str = Field(default="http://127.0.0.1:8082", validation_alias="CITYSTREAM_INGEST_URL")
    admin_token: SecretStr = Field(default=SecretStr(LOCAL_ADMIN_TOKEN),
                                   validation_alias="CITYSTREAM_REGISTER_ADMIN_TOKEN")
    ready_timeout_s: float = Field(default=120.0, gt=0, validation_alias="CITYSTREAM_SIMULATE_READY_TIMEOUT_S")
