"""Writes row batches to TimescaleDB: COPY into TEMP staging tables, then INSERT … SELECT … ON CONFLICT DO NOTHING
into readings, rejections, alert_events and rollups_1m — all in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError  # not exported at top level


@dataclass(frozen=True)
class TableSpec:
    columns: tuple[tuple[str, str], ...]  # (name, staging type); jsonb travels as text and is cast on insert
    json_columns: frozenset[str] = frozenset()

    def staging_ddl(self, stage: str) -> str:
        columns = ", ".join(f"{name} {kind}" for name, kind in self.columns)
        return f"CREATE TEMP TABLE {stage} ({columns}) ON COMMIT DROP"

    def insert_sql(self, table: str, stage: str) -> str:
        names = [name for name, _ in self.columns]
        selected = ", ".join(f"{name}::jsonb" if name in self.json_columns else name for name in names)
        return f"INSERT INTO {table} ({', '.join(names)}) SELECT {selected} FROM {stage} ON CONFLICT DO NOTHING"


TABLES: dict[str, TableSpec] = {
    "readings": TableSpec((("observed_at", "timestamptz"), ("sensor_id", "text"), ("seq", "bigint"),
                           ("domain", "text"), ("received_at", "timestamptz"), ("register_version", "integer"),
                           ("metrics", "text")), frozenset({"metrics"})),
    "rejections": TableSpec((("received_at", "timestamptz"), ("event_id", "uuid"), ("sensor_id", "text"),
                             ("seq", "bigint"), ("reason", "text"), ("detail", "text"), ("field", "text"),
                             ("source", "text"), ("payload", "text")), frozenset({"payload"})),
    "alert_events": TableSpec((("occurred_at", "timestamptz"), ("event_id", "text"), ("alert_id", "text"),
                               ("event_type", "text"), ("sensor_id", "text"), ("domain", "text"), ("kind", "text"),
                               ("severity", "text"), ("status", "text"), ("opened_at", "timestamptz"),
                               ("explanation", "text"), ("actor", "text"), ("assignee", "text"),
                               ("comment", "text"), ("resolved_at", "timestamptz")), frozenset({"explanation"})),
    "rollups_1m": TableSpec((("window_start", "timestamptz"), ("sensor_id", "text"), ("metric", "text"),
                             ("domain", "text"), ("count", "integer"), ("min", "double precision"),
                             ("max", "double precision"), ("mean", "double precision"),
                             ("last", "double precision"))),
}


async def write_rows(connection: asyncpg.Connection, rows_by_table: Mapping[str, Sequence[tuple]]) -> dict[str, int]:
    """Store every row once; returns rows newly inserted per table (duplicates are silently absorbed)."""
    inserted: dict[str, int] = {}
    async with connection.transaction():
        for table, rows in rows_by_table.items():
            if not rows:
                continue
            spec, stage = TABLES[table], f"stage_{table}"
            await connection.execute(spec.staging_ddl(stage))
            await connection.copy_records_to_table(stage, records=rows, columns=[name for name, _ in spec.columns])
            status = await connection.execute(spec.insert_sql(table, stage))
            inserted[table] = int(status.rsplit(" ", 1)[-1])
    return inserted


def is_data_error(error: BaseException) -> bool:
    """True when the rows themselves are at fault: retrying the same rows cannot help.

    Server side that is SQLSTATE class 22 or 23; client side, asyncpg refusing to encode a value (its own
    DataError, or OverflowError for an integer beyond the column's range)."""
    return isinstance(error, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ClientDataError,
                              OverflowError))
