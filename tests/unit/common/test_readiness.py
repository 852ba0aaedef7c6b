"""The readiness contract and the shared Kafka reachability probe, in memory (a fake client stands for aiokafka's)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.readiness import CheckResult, KafkaReachability, Readiness, check, database_check, readiness


class FakeClient:
    """Answers `_metadata_update` like aiokafka's client: True, False (no broker), an exception, or a hang."""

    def __init__(self, answer="yes") -> None:
        self.answer, self.calls = answer, 0

    async def _metadata_update(self, metadata, topics):
        self.calls += 1
        if self.answer == "hang":
            await asyncio.sleep(10)
        if self.answer == "raise":
            raise ConnectionRefusedError("secret internals: 10.0.0.7:9092")
        return self.answer == "yes"


def test_body_and_status_of_the_contract():
    body, status = readiness({"kafka": CheckResult(ok=True, detail="answering"), "register": check(True)})
    assert (body, status) == ({"status": "ready", "checks": {"kafka": {"ok": True, "detail": "answering"},
                                                            "register": {"ok": True, "detail": "ok"}}}, 200)
    body, status = readiness({"kafka": CheckResult(ok=True, detail="answering"),
                              "database": check(False, "answering", "unavailable")})
    assert status == 503 and body["status"] == "not_ready"
    assert body["checks"]["database"] == {"ok": False, "detail": "unavailable"}
    assert Readiness.model_validate(body).http_status == 503


async def test_one_metadata_request_per_ttl_shared_by_concurrent_callers():
    client, probe = FakeClient(), KafkaReachability("t", ttl_s=0.3, timeout_s=0.5)
    answers = await asyncio.gather(*(probe.check(client) for _ in range(20)))
    assert {a.detail for a in answers} == {"answering"} and client.calls == 1
    await asyncio.sleep(0.35)
    assert (await probe.check(client)).ok and client.calls == 2


@pytest.mark.parametrize(("answer", "detail"), [("no", "unreachable"), ("raise", "unreachable"), ("hang", "timeout")])
async def test_failures_are_reason_codes_never_exception_text(answer, detail):
    probe = KafkaReachability("t", ttl_s=1.0, timeout_s=0.2)
    started = asyncio.get_running_loop().time()
    result = await probe.check(FakeClient(answer))
    assert result == CheckResult(ok=False, detail=detail)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert probe.last == result


async def eventually(condition, within_s: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def test_no_client_yet_is_not_connected_and_watch_follows_the_broker():
    probe = KafkaReachability("t", ttl_s=0.05, timeout_s=0.2)
    assert await probe.check(None) == CheckResult(ok=False, detail="not_connected")
    client = FakeClient("yes")
    watcher = asyncio.create_task(probe.watch(lambda: client))
    try:
        # Polled, not slept: a busy machine may run the watcher late, never wrongly.
        assert await eventually(lambda: probe.last.ok)
        client.answer = "no"
        assert await eventually(lambda: probe.last == CheckResult(ok=False, detail="unreachable"))
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


class FakePool:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail

    def acquire(self):
        pool = self

        class Connection:
            async def __aenter__(self):
                if pool.fail:
                    raise pool.fail
                return self

            async def __aexit__(self, *exc):
                return False

            async def fetchval(self, sql):
                return 1

        return Connection()


async def test_database_check_codes():
    assert await database_check(FakePool()) == CheckResult(ok=True, detail="answering")
    assert await database_check(FakePool(OSError("password for citystream_app"))) == \
        CheckResult(ok=False, detail="unavailable")
    assert await database_check(None) == CheckResult(ok=False, detail="not_connected")
