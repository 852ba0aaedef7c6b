"""`python -m services.anomaly worker`: starts the Faust worker (web on CITYSTREAM_ANOMALY_WEB_PORT, default 8085)."""

from __future__ import annotations

import sys

from services.common.logs import configure_logging

# Faust's command line knows only these spellings; logging's WARNING and CRITICAL would make it exit at start.
FAUST_LOGLEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "WARN": "warn", "INFO": "info",
                   "DEBUG": "debug"}


def faust_loglevel(level: str) -> str:
    try:
        return FAUST_LOGLEVELS[level.upper()]
    except KeyError:
        raise SystemExit(f"CITYSTREAM_LOG_LEVEL={level!r}: use one of {', '.join(FAUST_LOGLEVELS)}") from None


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "worker":
        raise SystemExit("usage: python -m services.anomaly worker")
    from services.anomaly.settings import AnomalySettings
    from services.common.event_loop import use_event_loop

    # Before the app is imported: importing it creates the loop (services/common/event_loop.py). Tests that import
    # the app keep asyncio's.
    use_event_loop(AnomalySettings().loop())
    from services.anomaly.app import app, settings

    configure_logging(settings.log_level)
    sys.argv = [sys.argv[0], "worker", "--loglevel", faust_loglevel(settings.log_level), "--web-port",
                str(settings.web_port)]
    app.main()


if __name__ == "__main__":
    main()
