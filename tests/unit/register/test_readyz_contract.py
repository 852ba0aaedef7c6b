"""The register's public /readyz answers the readiness contract with reason codes, never the failure's text."""

from __future__ import annotations

from types import SimpleNamespace

import httpx

from services.register.app import create_app
from services.register.settings import RegisterSettings

SECRET_TEXT = "password authentication failed for user citystream_app at 10.1.2.3"


class BrokenPool:
    def acquire(self, timeout=None):
        raise OSError(SECRET_TEXT)


class BrokenClient:
    async def _metadata_update(self, metadata, topics):
        raise ConnectionRefusedError(SECRET_TEXT)


async def test_unready_register_names_failing_checks_by_code_only():
    app = create_app(RegisterSettings())
    # The lifespan (which connects for real) does not run under ASGITransport: the context is set by hand.
    app.state.register = SimpleNamespace(pool=BrokenPool(), producer=SimpleNamespace(client=BrokenClient()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://register") as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "not_ready", "checks": {"database": {"ok": False, "detail": "unavailable"},
                                                               "kafka": {"ok": False, "detail": "unreachable"}}}
    assert "10.1.2.3" not in answer.text and "password" not in answer.text
