"""The worker's own readiness flag beside Faust's: set for good when an output record was refused (not retriable),
after which nothing is committed (the readings behind it are judged again after a restart) and /readyz says 503."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Health:
    def __init__(self) -> None:
        self.refused: str | None = None  # why the worker stopped committing; None while it commits

    def refuse(self, why: str) -> None:
        if self.refused is None:
            log.error("not committing any more, not ready: %s", why)
            self.refused = why
