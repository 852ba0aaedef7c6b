"""Settings of the operations API (`python -m services.api`), read once from CITYSTREAM_* env at start-up."""

from __future__ import annotations

from pydantic import Field, field_validator

from services.common.settings import CommonSettings

# Local development defaults only; a deployment sets CITYSTREAM_API_TOKENS to its own secrets.
LOCAL_DEV_TOKENS = "dev-viewer:viewer,dev-operator:operator,dev-admin:admin"
ROLES = ("viewer", "operator", "admin")


class ApiSettings(CommonSettings):
    """`api_tokens` is "token:role[:name],..."; the name (default: the role) becomes the actor of commands."""

    api_host: str = Field(default="127.0.0.1", description="Interface the HTTP server binds.")
    api_port: int = Field(default=8080, ge=1, le=65535)
    api_tokens: str = Field(default=LOCAL_DEV_TOKENS, description="Bearer tokens and their roles.")
    api_database_url: str = Field(
        default="",
        description="DSN of the read-mostly role (citystream_reader); empty means CITYSTREAM_DATABASE_URL.",
    )
    api_max_body_bytes: int = Field(default=16 * 1024, ge=256, description="Largest request body accepted.")
    api_live_window_s: float = Field(
        default=24 * 3600, gt=0, description="How far back the live stream's in-memory buffer starts at start-up."
    )
    api_live_buffer_events: int = Field(default=50_000, ge=100, description="Alert events kept for resume.")
    api_silence_factor: float = Field(
        default=3.0, gt=1, description="A sensor is silent after this many missed reporting intervals."
    )
    api_live_ticket_ttl_s: float = Field(
        default=60.0, gt=0, le=600, description="Lifetime of a single-use live-stream ticket (POST /v1/live/tickets)."
    )
    api_map_tile_url: str = Field(
        default="",
        description="Basemap tile URL template for the ops page, e.g. `https://tiles.example.org/{z}/{x}/{y}.png`; "
        "empty draws no basemap (the page then loads nothing but the API itself).",
    )
    api_map_tile_attribution: str = Field(default="", description="Attribution the tile provider requires (HTML).")
    api_register_url: str = Field(
        default="", description="Public base URL of the sensor register; the ops page links a sensor's record there."
    )

    @field_validator("api_tokens")
    @classmethod
    def _tokens_parse(cls, value: str) -> str:
        parse_tokens(value)
        return value

    @property
    def reader_database_url(self) -> str:
        return self.api_database_url or self.database_url


def parse_tokens(spec: str) -> dict[str, tuple[str, str]]:
    """`"tok:role[:name],..."` → {token: (role, name)}. Raises ValueError naming the bad entry."""
    tokens: dict[str, tuple[str, str]] = {}
    for index, entry in enumerate(part.strip() for part in spec.split(",")):
        if not entry:
            continue
        pieces = entry.split(":")
        if len(pieces) not in (2, 3) or not pieces[0] or pieces[1] not in ROLES:
            raise ValueError(f"CITYSTREAM_API_TOKENS entry {index + 1} must be token:role[:name] with role in {ROLES}")
        name = pieces[2] if len(pieces) == 3 and pieces[2] else pieces[1]
        tokens[pieces[0]] = (pieces[1], name)
    return tokens
