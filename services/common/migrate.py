"""Applies the plain-SQL migrations in `migrations/` in order, once each, recorded in `schema_migrations`."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant works; it only has to be the same for every process that migrates this database.
ADVISORY_LOCK_ID = 7_346_201


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(path.stem, path) for path in sorted(directory.glob("*.sql"))]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the versions applied. Safe to run concurrently and repeatedly."""
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_ID)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row["version"]: row["checksum"] for row in await connection.fetch("SELECT * FROM schema_migrations")}
        done = []
        for migration in discover(directory):
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    log.warning("migration %s changed after it was applied; write a new migration instead",
                                migration.version)
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version, migration.checksum,
                )
            log.info("applied migration %s", migration.version)
            done.append(migration.version)
        return done
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_ID)
        await connection.close()
