"""Writes row batches to TimescaleDB (readings, rejections, alert_events, rollups_1m), every row once, all in one
transaction.

Each table's rows are first COPied straight into the table, inside a savepoint: the usual case, no row stored
before, costs one pass. A row already there (a batch read again after a restart, a reading a client sent twice)
makes that COPY fail as a whole on the table's unique key; the savepoint is rolled back and the rows take the
absorbing path instead: COPY into a TEMP staging table, then INSERT … SELECT … ON CONFLICT DO NOTHING.
The direct COPY saves PostgreSQL the staging table's creation, its write and the second pass over every row.
"""

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
            if rows:
                inserted[table] = await _copy_or_absorb(connection, table, rows)
    return inserted


async def _copy_or_absorb(connection: asyncpg.Connection, table: str, rows: Sequence[tuple]) -> int:
    spec = TABLES[table]
    columns = [name for name, _ in spec.columns]
    try:
        async with connection.transaction():  # a savepoint: a refused COPY leaves the outer transaction usable
            status = await connection.copy_records_to_table(table, records=rows, columns=columns)
        return int(status.rsplit(" ", 1)[-1])
    except asyncpg.UniqueViolationError:
        pass  # some row is stored already: absorb the duplicates instead
    stage = f"stage_{table}"
    await connection.execute(spec.staging_ddl(stage))
    await connection.copy_records_to_table(stage, records=rows, columns=columns)
    status = await connection.execute(spec.insert_sql(table, stage))
    return int(status.rsplit(" ", 1)[-1])


def is_data_error(error: BaseException) -> bool:
    """True when the rows themselves are at fault: retrying the same rows cannot help.

    Server side that is SQLSTATE class 22 or 23; client side, asyncpg refusing to encode a value (its own
    DataError, or OverflowError for an integer beyond the column's range)."""
    return isinstance(error, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ClientDataError,
                              OverflowError))
