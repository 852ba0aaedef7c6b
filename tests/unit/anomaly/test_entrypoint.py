"""The worker entrypoint accepts every logging level name CityStream's settings allow."""

from __future__ import annotations

import pytest

from services.anomaly.__main__ import faust_loglevel


@pytest.mark.parametrize(("level", "expected"), [("WARNING", "warn"), ("info", "info"), ("CRITICAL", "crit"),
                                                 ("DEBUG", "debug"), ("ERROR", "error")])
def test_logging_levels_map_to_faust_spellings(level, expected):
    assert faust_loglevel(level) == expected


def test_an_unknown_level_stops_with_a_clear_message():
    with pytest.raises(SystemExit, match="CITYSTREAM_LOG_LEVEL='loud'"):
        faust_loglevel("loud")


def test_the_event_loop_is_uvloop_when_it_imports_unless_asyncio_is_asked_for(monkeypatch):
    import sys

    from pydantic import ValidationError

    from services.anomaly.settings import AnomalySettings

    assert AnomalySettings(event_loop="asyncio").loop() == "asyncio"
    assert AnomalySettings(event_loop="uvloop").loop() == "uvloop"
    assert AnomalySettings(event_loop="").loop() == "uvloop"  # installed with the project (requirements.lock)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed: plain asyncio
    assert AnomalySettings(event_loop="").loop() == "asyncio"
    with pytest.raises(ValidationError):
        AnomalySettings(event_loop="trio")


def test_tables_are_kept_in_rocksdb_when_rocksdict_imports_unless_a_store_is_asked_for(monkeypatch):
    import sys

    from services.anomaly.settings import AnomalySettings

    assert AnomalySettings(store="").table_store() == "rocksdb://"  # installed with the project (requirements.lock)
    assert AnomalySettings(store="memory://").table_store() == "memory://"
    monkeypatch.setitem(sys.modules, "rocksdict", None)  # as if it were not installed: tables in memory
    assert AnomalySettings(store="").table_store() == "memory://"
