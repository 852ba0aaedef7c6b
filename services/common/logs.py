"""Logging set-up for every entrypoint: one line per event, level from settings."""

from __future__ import annotations

import logging

from services.common.access_log import install_access_log_redaction

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Configure the root logger once; safe to call again (replaces handlers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiokafka logs every reconnect at WARNING; one line per second of outage is enough.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    # A token or credential in a URL's query string must never reach a log file.
    install_access_log_redaction()
