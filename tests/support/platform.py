"""The platform's services as real processes, started and stopped together (citystream.bench.processes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from citystream.bench.processes import platform_services
from services.common.settings import KafkaAccess


@contextmanager
def running_services(kafka: KafkaAccess, database_url: str, topic_prefix: str, logs_dir, *, roles=None,
                     env: dict[str, dict[str, str]] | None = None) -> Iterator[dict]:
    """Starts `roles` (every platform service when None), waits until each is ready, stops them all on exit.
    They reach Kafka with the CITYSTREAM_KAFKA_* credentials of the test session (the admin's)."""
    options = {} if roles is None else {"roles": roles}
    services = platform_services(bootstrap=kafka.bootstrap, database_url=database_url, topic_prefix=topic_prefix,
                                 run_id=uuid.uuid4().hex[:6], logs_dir=logs_dir, **options)
    for name, extra in (env or {}).items():
        services[name].env.update(extra)
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready(120)
        yield services
    finally:
        for service in services.values():
            service.stop()
