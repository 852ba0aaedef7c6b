"""Production mode (CITYSTREAM_ENV=production): a service refuses to start on a development token, password or secret.

The local runtime (`make run`, compose, tests) works on well-known development values so a newcomer needs no
configuration. Those values are public, so a deployment that kept one has no secret at all: in production mode each
entrypoint calls `refuse_development_secrets` right after building its settings and exits with one line naming every
setting at fault, before it opens a socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from services.common.roles import APP_ROLE, READER_ROLE, RETENTION_ROLE

PRODUCTION = "production"
# The operations API's local tokens and the register's local admin token (services/api, services/register settings).
DEVELOPMENT_TOKENS = frozenset({"dev-viewer", "dev-operator", "dev-admin", "citystream-dev-admin-token"})
# Every other development secret is spelled with this prefix (e.g. the local Kafka principals' passwords).
DEVELOPMENT_PREFIX = "citystream-dev-"
# The local database logins: `citystream` (password `citystream`) and the roles of migrations 0100, 0400 and 0600,
# whose local passwords equal their names.
DEVELOPMENT_DATABASE_PASSWORDS = frozenset({"citystream", APP_ROLE, READER_ROLE, RETENTION_ROLE})
_TOKEN_SEPARATORS = re.compile(r"[\s,:;]+")  # token lists such as CITYSTREAM_API_TOKENS="tok:role,tok:role"


@dataclass(frozen=True, slots=True)
class Finding:
    setting: str  # the environment variable, e.g. CITYSTREAM_API_TOKENS
    problem: str  # what is wrong, naming the public development value (never a real secret)

    def __str__(self) -> str:
        return f"{self.setting} {self.problem}"


def development_secrets(settings: BaseSettings, unused: Iterable[str] = ()) -> list[Finding]:
    """Every setting of `settings` that holds a development secret, by environment variable name. `unused`: field
    names this process never reads (e.g. the database URL of a service without a database)."""
    skipped = set(unused)
    findings = []
    for name, field in type(settings).model_fields.items():
        if name in skipped:
            continue
        problem = _problem(getattr(settings, name))
        if problem is not None:
            findings.append(Finding(_env_name(settings, name, field.validation_alias), problem))
    return findings


def refuse_development_secrets(settings: BaseSettings, unused: Iterable[str] = ()) -> None:
    """In production mode, exit (status 1, one line on stderr) when any setting holds a development secret."""
    if getattr(settings, "env", None) != PRODUCTION:
        return
    findings = development_secrets(settings, unused)
    if findings:
        raise SystemExit(f"CITYSTREAM_ENV=production refuses to start on development secrets: "
                         f"{'; '.join(map(str, findings))}")


def _problem(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, dict):
        return next(filter(None, map(_problem, value.values())), None)
    if isinstance(value, (list, tuple, set, frozenset)):
        return next(filter(None, map(_problem, value)), None)
    if not isinstance(value, str) or not value:
        return None
    if "://" in value:
        return _url_problem(value)
    for piece in (value, *_TOKEN_SEPARATORS.split(value)):
        if piece in DEVELOPMENT_TOKENS:
            return f"holds the development token {piece!r}"
        if piece.startswith(DEVELOPMENT_PREFIX):
            return f"holds a development secret ({DEVELOPMENT_PREFIX}...)"
    return None


def _url_problem(url: str) -> str | None:
    """A DSN (or any URL) whose password is a development one. The password itself is never echoed."""
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:  # not a URL after all (e.g. a bad port): nothing to say about secrets
        return None
    if password is None:
        return None
    if password in DEVELOPMENT_DATABASE_PASSWORDS or password.startswith(DEVELOPMENT_PREFIX):
        return f"logs in as {user!r} with a development password"
    return None


def _env_name(settings: BaseSettings, name: str, alias: Any) -> str:
    if isinstance(alias, str):
        return alias.upper()
    prefix = settings.model_config.get("env_prefix") or ""
    return f"{prefix}{name}".upper()
