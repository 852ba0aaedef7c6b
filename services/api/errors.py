"""One error body everywhere: {"error": {"code", "message", "field"}}; handlers for FastAPI's own errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail

    model_config = {"json_schema_extra": {"examples": [
        {"error": {"code": "INVALID_PARAMETER", "message": "bucket must be at least 1 minute", "field": "bucket"}}
    ]}}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def payload_too_large(limit: int) -> JSONResponse:
    return error_response(413, "PAYLOAD_TOO_LARGE", f"request body exceeds {limit} bytes", field="body")


ERROR_RESPONSES = {
    status: {"model": ErrorBody, "description": text}
    for status, text in ((400, "Bad request"), (401, "No or unknown token"), (403, "Role too low"),
                         (404, "Not found"), (413, "Body too large"), (422, "Invalid parameter or body"))
}

_CODE_BY_STATUS = {400: "BAD_REQUEST", 401: "AUTHENTICATION_REQUIRED", 403: "FORBIDDEN", 404: "NOT_FOUND",
                   405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE", 503: "UNAVAILABLE"}


def _field_of(location: tuple) -> str | None:
    # ("query", "bucket") → "bucket"; ("body", "comment") → "comment"
    parts = [str(part) for part in location if part not in ("query", "body", "path", "header")]
    return ".".join(parts) or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError):
        return error_response(error.status, error.code, error.message, error.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
        return error_response(422, "INVALID_PARAMETER", str(first.get("msg")), _field_of(tuple(first.get("loc", ()))))

    @app.exception_handler(WebSocketRequestValidationError)
    async def _ws_validation(websocket, error):
        await websocket.close(code=1008, reason="invalid parameter")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException):
        code = _CODE_BY_STATUS.get(error.status_code, "HTTP_ERROR")
        return error_response(error.status_code, code, str(error.detail), headers=getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "INTERNAL", "internal error; the incident was logged")
