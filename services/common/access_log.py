"""Access logs never carry a token: uvicorn's request lines (HTTP on `uvicorn.access`, WebSocket handshakes on
`uvicorn.error`) have the values of their query strings masked before any handler formats them."""

from __future__ import annotations

import logging
import re

# Loggers on which uvicorn writes `<client> - "<METHOD> <path?query> ..."` lines.
UVICORN_REQUEST_LOGGERS = ("uvicorn.access", "uvicorn.error")
MASK = "***"
_QUERY_VALUE = re.compile(r"=[^&#\s]*")


def redact_query(target: str) -> str:
    """`/v1/live?access_token=abc&since=5` → `/v1/live?access_token=***&since=***`; a bare `?token` is masked whole.
    Parameter names stay (they say what was asked); every value goes, since any may be a credential."""
    path, question, query = target.partition("?")
    if not question:
        return target
    parts = [_QUERY_VALUE.sub("=" + MASK, part) if "=" in part else MASK for part in query.split("&") if part]
    return f"{path}?{'&'.join(parts)}"


class RedactQueryStrings(logging.Filter):
    """Masks query-string values in the arguments of a request log line (and in a message logged pre-formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = re.sub(r"/\S*\?\S*", lambda found: redact_query(found.group(0)), record.msg)
        return True


def _redact_arg(arg: object) -> object:
    if isinstance(arg, str) and "?" in arg and (arg.startswith("/") or "://" in arg):
        return redact_query(arg)
    return arg


def install_access_log_redaction() -> None:
    """Attach the filter to uvicorn's request loggers once; uvicorn's own dictConfig keeps logger filters."""
    for name in UVICORN_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactQueryStrings) for existing in logger.filters):
            logger.addFilter(RedactQueryStrings())
