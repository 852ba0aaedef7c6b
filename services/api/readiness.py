"""The API's /readyz checks, in the readiness contract of services/common/readiness.py: the database answers, Kafka
answers a metadata request (the shared cached probe), the alert stream and the sensor register are caught up."""

from __future__ import annotations

from services.common.readiness import Readiness, check, database_check


async def api_readiness(state) -> Readiness:
    """`state` is the ApiState the lifespan builds; before Kafka connected its producer is None (not ready)."""
    producer = state.producer
    return Readiness.of({
        "database": await database_check(state.pool),
        "kafka": await state.kafka.check(producer.client if producer is not None else None),
        "alert_stream": check(bool(state.hub and state.hub.caught_up), "caught_up", "catching_up"),
        "register": check(bool(state.directory.caught_up), "caught_up", "catching_up"),
    })
