"""Database roles of a deployment: which DSN each process connects with (least privilege)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# Created by migrations 0100 (app), 0400 (reader) and 0600 (retention); local-development passwords equal their names.
APP_ROLE = "citystream_app"
READER_ROLE = "citystream_reader"
RETENTION_ROLE = "citystream_retention"


def with_role(database_url: str, role: str, password: str | None = None) -> str:
    """`database_url` with its user and password replaced, e.g. to run the API as the read-only role."""
    parts = urlsplit(database_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{role}:{password or role}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
