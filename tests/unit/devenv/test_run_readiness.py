"""`citystream run` waits on every service's /readyz (the one readiness contract) and says what is still missing."""

from __future__ import annotations

import httpx

from citystream import run


class Answer:
    def __init__(self, body: dict) -> None:
        self.body = body

    def json(self) -> dict:
        return self.body


def ready() -> dict:
    return {"status": "ready", "checks": {"kafka": {"ok": True, "detail": "answering"}}}


def kafka_timeout() -> dict:
    return {"status": "not_ready", "checks": {"kafka": {"ok": False, "detail": "timeout"},
                                              "database": {"ok": True, "detail": "answering"}}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waits_until_every_service_is_ready_then_stops_polling():
    polls = {"register": 0, "api": 0}

    def get(url, timeout):
        name = url.split("//")[1]
        polls[name] += 1
        if name == "api" and polls[name] < 3:
            raise httpx.ConnectError("not listening yet")
        return Answer(ready() if name == "register" or polls[name] >= 4 else kafka_timeout())

    clock = FakeClock()
    answers = run.wait_until_ready({"register": "http://register", "api": "http://api"}, 60, get=get,
                                   clock=clock, sleep=clock.sleep)
    assert {name: a.status for name, a in answers.items()} == {"register": "ready", "api": "ready"}
    assert polls == {"register": 1, "api": 4}  # a ready service is not asked again
    assert clock.now == 1.5


def test_after_the_timeout_the_lines_name_what_is_missing():
    def get(url, timeout):
        if "gate" in url:
            raise httpx.ConnectError("refused")
        return Answer(kafka_timeout() if "api" in url else {"not": "the contract"})

    clock = FakeClock()
    answers = run.wait_until_ready({"api": "http://api", "ingest-gate": "http://gate", "odd": "http://odd"}, 5,
                                   get=get, clock=clock, sleep=clock.sleep)
    assert clock.now >= 5 and answers["ingest-gate"] is None and answers["odd"] is None
    assert run.readiness_lines(answers) == ["  api          not ready: kafka=timeout",
                                            "  ingest-gate  not answering /readyz yet",
                                            "  odd          not answering /readyz yet"]
