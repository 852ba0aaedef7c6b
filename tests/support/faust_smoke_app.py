"""A minimal Faust app for the smoke test: counts records per key in a changelog-backed table.

Configured by env (the test runs it as a subprocess worker):
SMOKE_BOOTSTRAP (credentials: CITYSTREAM_KAFKA_*), SMOKE_APP_ID, SMOKE_PREFIX, SMOKE_DATADIR; SMOKE_TABLE_MANAGER (default: the anomaly worker's
seek-first one; `faust.tables:TableManager` runs Faust's stock recovery, to compare).
"""

from __future__ import annotations

import os

import faust

from services.anomaly.recovery import SEEK_FIRST_TABLE_MANAGER
from services.common.kafka import faust_credentials
from services.common.settings import CommonSettings

app = faust.App(
    os.environ.get("SMOKE_APP_ID", "citystream-smoke"),
    broker=f"kafka://{os.environ.get('SMOKE_BOOTSTRAP', '127.0.0.1:19092')}",
    broker_credentials=faust_credentials(CommonSettings().kafka),
    store="memory://",
    topic_partitions=2,
    datadir=os.environ.get("SMOKE_DATADIR", "/tmp/citystream-smoke"),
    web_enabled=False,
    producer_acks=-1,
    # A killed worker's partitions wait for its session to expire before the restarted one gets them.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    TableManager=os.environ.get("SMOKE_TABLE_MANAGER", SEEK_FIRST_TABLE_MANAGER),
)
prefix = os.environ.get("SMOKE_PREFIX", "")
source_topic = app.topic(f"{prefix}smoke.in", key_serializer="raw", value_serializer="raw", partitions=2)
counts_topic = app.topic(f"{prefix}smoke.counts", key_serializer="raw", value_serializer="raw")
key_to_count = app.Table("key_to_count", default=int, partitions=2)


@app.agent(source_topic)
async def count_records(stream):
    async for key, _value in stream.items():
        name = key.decode()
        # Reading and writing the table in the agent keeps it co-partitioned with the source topic.
        key_to_count[name] += 1
        await counts_topic.send(key=key, value=str(key_to_count[name]).encode())
