"""One-minute rollups: closed by a later reading's time or by the timer flush; count/min/max/mean/last exact."""

from __future__ import annotations

from services.anomaly import rollups


def test_window_closes_when_a_reading_of_the_next_minute_arrives():
    roll = {}
    base = 1_767_571_200.0
    assert rollups.add(roll, "s-001", "energy", base + 5, {"activePower": 4.0}) == []
    assert rollups.add(roll, "s-001", "energy", base + 50, {"activePower": 2.0}) == []
    assert rollups.add(roll, "s-001", "energy", base + 30, {"activePower": 9.0}) == []
    closed = rollups.add(roll, "s-001", "energy", base + 61, {"activePower": 1.0})
    assert len(closed) == 1
    r = closed[0]
    assert (r.count, r.min, r.max, r.mean, r.last) == (3, 2.0, 9.0, 5.0, 2.0)
    assert r.window_start.timestamp() == base and r.window_end.timestamp() == base + 60


def test_timer_flush_closes_a_quiet_window_and_late_readings_are_not_double_counted():
    roll = {}
    base = 1_767_571_200.0
    rollups.add(roll, "s-002", "waste", base + 1, {"fillingLevel": 0.3, "temperature": 11.0})
    assert rollups.flush(roll, "s-002", "waste", base + 65) == []
    flushed = rollups.flush(roll, "s-002", "waste", base + 75)
    assert sorted(r.metric for r in flushed) == ["fillingLevel", "temperature"] and roll == {}
    rollups.add(roll, "s-002", "waste", base + 130, {"fillingLevel": 0.4})
    assert rollups.add(roll, "s-002", "waste", base + 2, {"fillingLevel": 0.9}) == []
    assert roll["fillingLevel"][1] == 1
