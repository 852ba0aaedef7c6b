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
