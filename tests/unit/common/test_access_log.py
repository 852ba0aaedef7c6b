"""Access logs never contain a token: a real uvicorn server, configured as the services configure it, logs the
request line of `GET /path?access_token=...` and of a WebSocket handshake with the query values masked."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI, WebSocket
from uvicorn.config import LOGGING_CONFIG

from services.common.access_log import UVICORN_REQUEST_LOGGERS, RedactQueryStrings, redact_query
from services.common.logs import configure_logging

SECRET = "s3cret-Token-4242"
PORTS = {"log_config=None": 8185, "uvicorn's dictConfig": 8186}  # within this checkout's port range


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = {name: (list(logging.getLogger(name).handlers), list(logging.getLogger(name).filters),
                    logging.getLogger(name).level, logging.getLogger(name).propagate)
             for name in UVICORN_REQUEST_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (named_handlers, filters, named_level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.filters[:] = named_handlers, filters
        logger.setLevel(named_level)
        logger.propagate = propagate


def tiny_app() -> FastAPI:
    app = FastAPI()

    @app.get("/echo")
    async def echo() -> dict:
        return {"ok": True}

    @app.websocket("/live")
    async def live(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hello")
        await socket.close()

    return app


@pytest.mark.parametrize("style", sorted(PORTS))
async def test_a_real_uvicorn_server_logs_request_lines_without_the_token(style, restore_logging):
    configure_logging("INFO")  # what every entrypoint does first
    port = PORTS[style]
    log_config = None if style == "log_config=None" else LOGGING_CONFIG
    config = uvicorn.Config(tiny_app(), host="127.0.0.1", port=port, log_config=log_config, log_level="info",
                            lifespan="off")
    captured = Captured()
    for name in UVICORN_REQUEST_LOGGERS:  # after Config: uvicorn's dictConfig has run
        logging.getLogger(name).addHandler(captured)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/echo?access_token={SECRET}&since=5")
            assert answer.status_code == 200
        async with websockets.connect(f"ws://127.0.0.1:{port}/live?access_token={SECRET}") as socket:
            assert await socket.recv() == "hello"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
    request_lines = [line for line in captured.lines if "/echo" in line or "/live" in line]
    assert any('"GET /echo?access_token=***&since=*** HTTP/1.1" 200' in line for line in request_lines), captured.lines
    assert any('"WebSocket /live?access_token=***"' in line for line in request_lines), captured.lines
    assert not [line for line in captured.lines if SECRET in line]


def test_redaction_keeps_names_and_masks_every_value():
    assert redact_query("/v1/live?access_token=abc&since=5") == "/v1/live?access_token=***&since=***"
    assert redact_query("/v1/alerts") == "/v1/alerts"
    assert redact_query("/x?bare-token") == "/x?***"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/v1/live?access_token={SECRET}", "1.1", 200), None)
    assert RedactQueryStrings().filter(record) and SECRET not in record.getMessage()
    preformatted = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                                     f'1.2.3.4 - "WebSocket /live?access_token={SECRET}" [accepted]', (), None)
    RedactQueryStrings().filter(preformatted)
    assert SECRET not in preformatted.getMessage() and "access_token=***" in preformatted.getMessage()
