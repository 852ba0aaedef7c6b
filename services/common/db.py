"""asyncpg pool factory: JSON columns decoded with orjson, a short connect timeout so outages surface fast."""

from __future__ import annotations

import asyncpg
import orjson


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, **kwargs) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, timeout=5, command_timeout=60, **kwargs
    )
