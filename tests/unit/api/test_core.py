"""Pure parts of the API: token settings, buckets, map status, alert filters, the live hub's resume logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.api.alert_store import AlertFilter, list_sql
from services.api.hub import AlertHub, format_vector, parse_vector
from services.api.series import choose_source, parse_bucket
from services.api.settings import parse_tokens
from services.api.status import MapStatus, sensor_status
from tests.integration.api.support import alert_event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_tokens_parse_and_bad_entries_name_their_position():
    assert parse_tokens("a:viewer, b:operator:anna ,") == {"a": ("viewer", "viewer"), "b": ("operator", "anna")}
    with pytest.raises(ValueError, match="entry 2"):
        parse_tokens("a:viewer,b:root")


@pytest.mark.parametrize(("text", "seconds"), [("1m", 60), ("5m", 300), ("2h", 7200), ("1d", 86400), ("90s", 90)])
def test_buckets(text, seconds):
    assert parse_bucket(text) == seconds


@pytest.mark.parametrize("text", ["30s", "0m", "5 minutes", "", "40d"])
def test_bad_buckets(text):
    with pytest.raises(ValueError):
        parse_bucket(text)


def test_source_rollups_only_for_long_ranges_with_wide_buckets():
    assert choose_source("auto", 300, NOW - timedelta(days=2), NOW) == "rollups"
    assert choose_source("auto", 60, NOW - timedelta(days=2), NOW) == "raw"
    assert choose_source("auto", 3600, NOW - timedelta(hours=1), NOW) == "raw"
    assert choose_source("raw", 3600, NOW - timedelta(days=9), NOW) == "raw"


def test_map_status_priority():
    fresh = NOW - timedelta(seconds=30)
    common = dict(now=NOW, reporting_interval_s=60, silence_factor=3)
    assert sensor_status(last_observed_at=fresh, open_alerts=0, recent_rejections=0, **common) == MapStatus.OK
    assert sensor_status(last_observed_at=fresh, open_alerts=1, recent_rejections=5, **common) == MapStatus.ALERTING
    assert sensor_status(last_observed_at=None, open_alerts=0, recent_rejections=2, **common) == MapStatus.REJECTED
    old = NOW - timedelta(seconds=181)
    assert sensor_status(last_observed_at=old, open_alerts=0, recent_rejections=0, **common) == MapStatus.SILENT


def test_alert_filter_sql_uses_parameters_only():
    sql, args = list_sql(AlertFilter(domains=["traffic"], severities=["critical"], statuses=["open"],
                                     sensor_ids=["x'; DROP TABLE readings; --"]))
    assert "DROP" not in sql and ["x'; DROP TABLE readings; --"] in args
    assert sql.count("$") == len(args)


def test_alert_filter_in_memory_matches_the_sql_meaning():
    event = alert_event("traffic-a1", severity="critical")
    assert AlertFilter(severities=["critical"], statuses=["open"]).matches(event)
    assert not AlertFilter(sensor_ids=[]).matches(event)
    assert not AlertFilter(domains=["waste"]).matches(event)


def test_vectors_round_trip_and_reject_garbage():
    assert parse_vector(format_vector((3, 0, 12)), 3) == (3, 0, 12)
    for text in ("1.2", "a.b.c", "1.-2.3", ""):
        with pytest.raises(ValueError):
            parse_vector(text, 3)


def test_hub_resume_replays_exactly_what_came_after_the_vector():
    hub = AlertHub(max_events=100)
    hub.begin([0, 0])
    events = [alert_event(f"traffic-s{i}") for i in range(6)]
    delivered = [hub.ingest(i % 2, i // 2, event) for i, event in enumerate(events)]
    cut = delivered[2].vector  # the client saw events 0, 1, 2
    _, origin, replay, gaps = hub.subscribe(cut)
    assert origin == cut
    assert gaps == {} and [item.event for item in replay] == events[3:]
    _, _, replay, _ = hub.subscribe((0, 0))
    assert [item.event for item in replay] == events


def test_hub_trimming_turns_old_positions_into_kafka_gaps_and_tracks_latest_state():
    hub = AlertHub(max_events=2)
    hub.begin([10])
    opened = alert_event("traffic-s1")
    hub.ingest(0, 10, opened)
    hub.ingest(0, 11, None)  # unparsable record: skipped, position still advances
    hub.ingest(0, 12, alert_event("traffic-s2"))
    acked = opened.model_copy(update={"status": "acknowledged", "occurred_at": opened.occurred_at + timedelta(1)})
    hub.ingest(0, 13, acked)
    assert hub.start == [11] and hub.vector == (14,)  # offset 10 trimmed; 11 was never buffered
    _, _, replay, gaps = hub.subscribe((5,))
    assert gaps == {0: (5, 11)} and [item.offset for item in replay] == [12, 13]
    assert hub.latest_by_alert[opened.alert_id].status == "acknowledged"


def test_a_stalled_subscriber_is_cut_off_not_blocking():
    hub = AlertHub()
    hub.begin([0])
    subscription, _, _, _ = hub.subscribe(None)
    for offset in range(subscription.queue.maxsize + 1):
        hub.ingest(0, offset, alert_event("traffic-s1"))
    assert subscription.overflowed and subscription not in hub.subscriptions


class _Everything:
    def matches(self, event) -> bool:
        return True


async def test_the_first_frame_is_the_position_at_subscribe_so_resuming_from_it_misses_nothing():
    from types import SimpleNamespace

    from services.api.routes.live import alert_stream
    from services.api.state import ApiMetrics

    hub = AlertHub()
    hub.begin([0, 0])
    stream = alert_stream(SimpleNamespace(hub=hub, metrics=ApiMetrics(), settings=None), _Everything(), None)
    # Consumed after the subscription, before the response started streaming: queued for this client.
    queued = [hub.ingest(i % 2, i // 2, alert_event(f"traffic-q{i}")) for i in range(3)]
    first_id, keepalive = await anext(stream)
    assert keepalive is None and first_id == "0.0"
    # A client that drops right after the first frame and reconnects with it gets the queued events again ...
    _, origin, replay, gaps = hub.subscribe(parse_vector(first_id, 2))
    assert origin == (0, 0) and gaps == {} and [item.event for item in replay] == [item.event for item in queued]
    # ... and the stream that stayed connected delivers them too, each id covering exactly what was sent.
    frames = [await anext(stream) for _ in range(3)]
    assert [event for _, event in frames] == [item.event for item in queued]
    assert [event_id for event_id, _ in frames] == ["1.0", "1.1", "2.1"]
    await stream.aclose()
    assert len(hub.subscriptions) == 1  # the stream's own is gone; the probe's above remains


def test_the_live_overlay_joins_the_sql_before_latest_per_alert_is_taken():
    sql, args = list_sql(AlertFilter(domains=["traffic"], statuses=["open"]), overlay=[{"alert_id": "a"}])
    union = sql.index("UNION ALL")
    assert sql.index("DISTINCT ON") < union < sql.index("status = ANY")
    assert args[:3] == [["traffic"], [{"alert_id": "a"}], ["open"]]
