"""asyncpg pool factory: JSON columns decoded with orjson, a short connect timeout so outages surface fast; and a
shutdown that cannot hang."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import orjson

log = logging.getLogger(__name__)
POOL_CLOSE_TIMEOUT_S = 10.0


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 8, **kwargs) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, timeout=5, command_timeout=60, **kwargs
    )


async def connect(dsn: str, **kwargs) -> asyncpg.Connection:
    """One connection with the pool's JSON codecs, for jobs that run a few long statements (no pool needed)."""
    connection = await asyncpg.connect(dsn, timeout=5, **kwargs)
    await _init_connection(connection)
    return connection


async def close_pool(pool: asyncpg.Pool, timeout_s: float = POOL_CLOSE_TIMEOUT_S) -> bool:
    """Close gracefully within `timeout_s`, else terminate (drop every socket); True when it was graceful.

    Why bounded: `Pool.close()` waits for every connection to be released, and asyncpg waits without a bound for
    the server's acknowledgement of a cancelled query (MagicStack/asyncpg#1356). A task cancelled mid-query at
    shutdown could hang the process for ever; terminating instead only drops what was never committed."""
    try:
        await asyncio.wait_for(pool.close(), timeout_s)  # cancelled on timeout, Pool.close() then terminates
        return True
    except TimeoutError:
        log.warning("database pool did not close within %.1f s; its connections were terminated", timeout_s)
        return False


async def create_database(admin_url: str, name_prefix: str) -> str:
    """A fresh, empty database named `<name_prefix><random>` on the server of `admin_url`; returns its URL (the caller
    migrates it). For test sessions, benchmark runs and probes, which each drop theirs with `drop_database`."""
    name = f"{name_prefix}{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{admin_url.rpartition('/')[0]}/{name}"


async def drop_database(admin_url: str, url: str) -> None:
    """Drop the database `url` names, closing its sessions (FORCE); nothing if it is gone already."""
    connection = await asyncpg.connect(admin_url, timeout=10)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')
    finally:
        await connection.close()
