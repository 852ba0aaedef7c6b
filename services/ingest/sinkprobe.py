"""`python -m services.ingest.sinkprobe`: CPU µs per reading of one `python -m services.ingest sink` process, and of
the PostgreSQL backends serving its database (the server must run on this machine: their CPU is read from /proc).

Creates a topic prefix and a fresh migrated database per sink, starts the sink (and, with `--baseline DIR`, the
sink of another checkout, in its own consumer group and database), then per round produces admitted readings to
the traffic readings topic and waits until every sink has stored them all, reading each sink's utime+stime from
/proc before and after. Raw ceiling in the same round: this process consuming the same records with a plain
aiokafka consumer and decoding them with orjson (its own CPU time). Prints one JSON line; drops what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson

from schemas.common import Domain
from schemas.topics import readings_topic
from services.common.db import create_database, drop_database
from services.common.kafka import create_topics, delete_topics_with_prefixes, make_consumer, make_producer
from services.common.migrate import migrate
from services.ingest.cpuprobe import cpu_s, start, wait_ready
from services.ingest.gate import Admitted
from services.ingest.publisher import Publisher
from services.ingest.records import admitted_record
from services.ingest.settings import IngestSettings


async def new_database(admin_url: str) -> str:
    url = await create_database(admin_url, "cs_sinkprobe_")
    await migrate(url)
    return url


async def stored(url: str, expected: int, timeout_s: float = 180) -> int:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            count = await connection.fetchval("SELECT count(*) FROM readings")
            if count >= expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


async def backends_cpu_s(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database `url` names, by pid (this probe's
    own query connection excluded)."""
    connection = await asyncpg.connect(url, timeout=10)
    try:
        pids = await connection.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND pid <> pg_backend_pid()")
    finally:
        await connection.close()
    found = {}
    for row in pids:
        try:
            found[row["pid"]] = cpu_s(row["pid"])
        except OSError:  # gone meanwhile, or the server is on another machine
            continue
    return found


def records(first_seq: int, count: int, sensors: int, produced_by: str) -> list:
    now = datetime.now(UTC)
    observed = now - timedelta(seconds=2)
    return [admitted_record(Admitted(f"traffic-probe-{seq % sensors:05d}", seq, observed, now, Domain.TRAFFIC, 1,
                                     {"intensity": float(seq % 900), "averageVehicleSpeed": 42.5},
                                     observed.isoformat(), now.isoformat()), produced_by)
            for seq in range(first_seq, first_seq + count)]


async def ceiling_cpu_s(settings: IngestSettings, count: int) -> float:
    """This process's CPU to consume and decode `count` records of the readings topic from the start."""
    consumer = make_consumer(settings.kafka, None, settings.topic(readings_topic(Domain.TRAFFIC)),
                             auto_offset_reset="earliest", max_poll_records=10_000,
                             max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    try:
        started, seen = time.process_time(), 0
        while seen < count:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                for record in batch:
                    orjson.loads(record.value)
                seen += len(batch)
        return time.process_time() - started
    finally:
        await consumer.stop()


async def main(args: argparse.Namespace) -> dict:
    prefix = f"sinkprobe-{uuid.uuid4().hex[:8]}."
    settings = IngestSettings(topic_prefix=prefix)
    admin_url = settings.database_url
    await create_topics(settings.kafka, prefix=prefix)
    sources = {"sink": None} | ({"baseline": args.baseline} if args.baseline else {})
    databases = {name: await new_database(admin_url) for name in sources}
    sinks = {}
    for index, (name, source) in enumerate(sources.items()):
        env = os.environ | {"CITYSTREAM_TOPIC_PREFIX": prefix, "CITYSTREAM_DATABASE_URL": databases[name],
                            "CITYSTREAM_INGEST_SINK_PORT": str(args.port + index),
                            "CITYSTREAM_INGEST_SINK_GROUP_ID": f"sinkprobe-{name}"}
        sinks[name] = (start(["-m", "services.ingest", "sink"], env, source), args.port + index)
    producer = make_producer(settings.kafka, "sinkprobe")
    results: dict = {"readings_per_round": args.readings, "rounds": []}
    try:
        for _, port in sinks.values():
            await wait_ready(f"http://127.0.0.1:{port}", "/readyz")
        await producer.start()
        publisher = Publisher(producer, settings.topic, 30.0, "probe")
        total = 0
        for _ in range(args.rounds):
            made = records(1 + total, args.readings, args.sensors, "sinkprobe")
            before = {name: cpu_s(process.pid) for name, (process, _) in sinks.items()}
            backends_before = {name: await backends_cpu_s(databases[name]) for name in sinks}
            for start_index in range(0, len(made), 5_000):
                await publisher.publish(made[start_index:start_index + 5_000])
            total += args.readings
            figures = {}
            for name, (process, _) in sinks.items():
                count = await stored(databases[name], total)
                backends = await backends_cpu_s(databases[name])
                # A backend that appeared during the round counts whole; one that ended is missed (the sink's pool
                # keeps its connections, so neither happens in a steady round).
                database_s = sum(now - backends_before[name].get(pid, 0.0) for pid, now in backends.items())
                figures[name] = {"cpu_us_per_reading": round((cpu_s(process.pid) - before[name]) / args.readings
                                                             * 1e6, 2),
                                 "postgresql_cpu_us_per_reading": round(database_s / args.readings * 1e6, 2),
                                 "stored": count}
            figures["ceiling"] = {"cpu_us_per_reading": round(await ceiling_cpu_s(settings, total) / total * 1e6, 2)}
            results["rounds"].append(figures)
    finally:
        await producer.stop()
        for process, _ in sinks.values():
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        for url in databases.values():
            await drop_database(admin_url, url)
        await delete_topics_with_prefixes(settings.kafka, [prefix])
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8265, help="sink port; the baseline sink uses port + 1")
    parser.add_argument("--sensors", type=int, default=300)
    parser.add_argument("--readings", type=int, default=100_000, help="per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline", help="another checkout: its sink runs too (own group and database)")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))


if __name__ == "__main__":
    cli()
