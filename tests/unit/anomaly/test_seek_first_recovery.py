"""The anomaly worker's Faust recovery resumes stream partitions last: after the seek to their committed offsets
and after the flow (whose resumption clears the stream queues).

Faust 0.15.3 resumed them first, so records fetched during the seek were processed and then read again, or
cleared from the queues and never processed: faust-streaming/faust#596. The real-broker test is
tests/integration/test_faust_restart_race.py.
"""

from __future__ import annotations

import hashlib
import inspect
from types import SimpleNamespace

import faust
import pytest
from faust.tables.recovery import Recovery
from faust.types import TP

from services.anomaly.recovery import SEEK_FIRST_TABLE_MANAGER, SeekFirstRecovery

STREAM, CHANGELOG = TP("citystream.readings.traffic.v1", 0), TP("unit-sensor_to_state-changelog", 0)
# sha256 of Faust's own methods that services/anomaly/recovery.py copies with the order changed.
COPIED_FROM_FAUST = {
    "on_recovery_completed": "6ef567acf072e46da3fccbccc6d662371f634f622c3d510972d5df81f70ae3ac",
    "_resume_streams": "d986a6710c1aca98f08c4c723fb3eadc5bf24576ad4eb9da3dd3eecedda2f24e",
}


class RecordingConsumer:
    def __init__(self, calls: list) -> None:
        self.calls = calls

    def assignment(self) -> set:
        return {STREAM, CHANGELOG}

    async def perform_seek(self) -> None:
        self.calls.append("seek")

    def resume_partitions(self, partitions) -> None:
        self.calls.append(("resume", frozenset(partitions)))

    def resume_flow(self) -> None:
        self.calls.append("flow")


async def _noop(*_args, **_kwargs) -> None:
    return None


@pytest.fixture
def recovery_and_calls():
    app = faust.App("unit", broker="kafka://127.0.0.1:1", store="memory://", TableManager=SEEK_FIRST_TABLE_MANAGER)
    app.Table("sensor_to_state", default=None, partitions=1)
    calls: list = []
    app.consumer = RecordingConsumer(calls)
    app.__dict__["_fetcher"] = SimpleNamespace(maybe_start=_noop)
    app.__dict__["flow_control"] = SimpleNamespace(resume=lambda: calls.append("flow_control"))
    recovery = app.tables.recovery
    recovery.tables.changelog_topics.add(CHANGELOG.topic)

    async def wait_directly(coro, timeout=None):  # the service is not started here, so Faust's _wait says stopped
        await coro
    recovery._wait = wait_directly
    return app, recovery, calls


def test_the_app_gets_the_seek_first_recovery(recovery_and_calls):
    _, recovery, _ = recovery_and_calls
    assert isinstance(recovery, SeekFirstRecovery)


@pytest.mark.parametrize("path", ["on_recovery_completed", "_resume_streams"])
async def test_stream_partitions_are_sought_before_they_resume(recovery_and_calls, path):
    app, recovery, calls = recovery_and_calls
    await getattr(recovery, path)(generation_id=app.consumer_generation_id)
    resumed = calls.index(("resume", frozenset({STREAM})))  # the changelogs stay paused
    # Seek first, then the flow (resuming it clears the stream queues), and only then the partitions' records.
    assert calls.index("seek") < calls.index("flow_control") < resumed
    assert calls.index("flow") < resumed
    assert recovery.completed.is_set()


@pytest.mark.parametrize("name", sorted(COPIED_FROM_FAUST))
def test_the_faust_methods_the_fix_copies_are_unchanged(name):
    source = inspect.getsource(getattr(Recovery, name))
    assert hashlib.sha256(source.encode()).hexdigest() == COPIED_FROM_FAUST[name], (
        f"faust's Recovery.{name} changed: re-check services/anomaly/recovery.py against it, then update the hash")
