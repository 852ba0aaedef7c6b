"""Every stage runs as two members; SIGKILL one of them under sustained load and account by (sensor_id, seq):
every reading acknowledged (a 2xx from ingest-http, or Kafka's ack of a raw record) is stored exactly once, and the
survivor takes the killed member's share (the full rate is back while the load still runs).

Requests in flight on the killed ingest-http process's connections get no answer: their readings were never
acknowledged, so they are outside the books (counted as unanswered; any of them that landed anyway shows as
stored-but-not-acknowledged, never as lost). The gate consumes only the raw topic, so its run loads that topic."""

from __future__ import annotations

from citystream.bench.failover import connections_held
from citystream.bench.load import http_load, kafka_load
from tests.integration.scaleout.harness import SEQ_SPAN, KillRun, ScaleOutPlatform, kill_under_load

RATE_PER_S = 1500.0  # well under what one member of each stage does on this machine (docs/benchmarks.md)
LOAD_S, KILL_AFTER_S = 30.0, 6.0  # a killed consumer is noticed after its session timeout (10 s)


def http_at_rate(platform: ScaleOutPlatform):
    return lambda seq: http_load(platform.http_url, platform.fleet, batch=50, connections=8, duration_s=LOAD_S,
                                 seq_base=seq, rate=RATE_PER_S)


def assert_books_and_takeover(run: KillRun, platform: ScaleOutPlatform, role: str) -> None:
    figures = run.figures()
    assert run.books.acked > 0.8 * RATE_PER_S * LOAD_S, figures  # the load ran at (nearly) the offered rate
    assert run.books.lost == 0 and run.books.duplicates == 0, figures
    survivors = [m for m in platform.members(role) if m.name != run.killed]
    assert all(m.running() for m in survivors), [m.tail() for m in survivors]
    killed = platform.services[run.killed]
    assert killed.process.returncode == -9
    # The survivor took the killed member's share: the full rate was back before the load ended.
    recovered = figures["acked_rate_recovered_s" if role == "ingest-http" else "backlog_cleared_s"]
    assert recovered is not None, figures


async def test_killing_one_of_two_ingest_http_processes_on_one_port(two_each):
    members = two_each.members("ingest-http")
    assert len({m.port for m in members}) == 1  # one port, two processes

    def busiest():  # the member holding most of the load's connections, so the kill breaks requests for real
        held = {m.name: connections_held(m.process.pid, m.port) for m in members}
        victim = max(members, key=lambda m: held[m.name])
        assert held[victim.name] > 0, held
        return victim

    run = await kill_under_load(two_each, 1 * SEQ_SPAN, RATE_PER_S, KILL_AFTER_S, http_at_rate(two_each), busiest)
    assert_books_and_takeover(run, two_each, "ingest-http")
    # Requests after the kill went to the survivor on the same port: the acknowledged readings of the time after
    # the kill are (nearly) all that was offered then.
    after = sum(n for at, n in run.load.acked_at if at > run.killed_at + 1)
    assert after > 0.8 * RATE_PER_S * (run.load.ended - run.killed_at - 1), run.figures()


async def test_killing_one_of_two_gates(two_each):
    victim = two_each.members("ingest-gate")[1]
    run = await kill_under_load(
        two_each, 2 * SEQ_SPAN, RATE_PER_S, KILL_AFTER_S,
        lambda seq: kafka_load(two_each.kafka, two_each.raw_topic, two_each.fleet, duration_s=LOAD_S, seq_base=seq,
                               rate=RATE_PER_S, chunk=100, window=500),
        lambda: victim)
    assert_books_and_takeover(run, two_each, "ingest-gate")


async def test_killing_one_of_two_sinks(two_each):
    victim = two_each.members("ingest-sink")[1]
    run = await kill_under_load(two_each, 3 * SEQ_SPAN, RATE_PER_S, KILL_AFTER_S, http_at_rate(two_each),
                                lambda: victim)
    assert_books_and_takeover(run, two_each, "ingest-sink")
