"""HTTP side of errors: one JSON shape for every refusal ({reason, field, detail}) and a request-body size limit."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.register.domain import RegisterError
from services.register.metrics import REQUESTS_REFUSED


def refusal(status_code: int, reason: str, field: str | None, detail: str, **extra) -> JSONResponse:
    REQUESTS_REFUSED.labels(reason=reason).inc()
    return JSONResponse({"reason": reason, "field": field, "detail": detail, **extra}, status_code=status_code)


def field_path(location: tuple | list) -> str:
    """A pydantic error location as the body reads: ("body", "metrics", 0, "name") -> "metrics[0].name"."""
    parts = [str(part) for part in location if part not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


def _problem(error: dict) -> dict[str, str]:
    if error["type"] == "json_invalid":
        # pydantic's location is ("body", <character offset>): the field at fault is the body itself.
        offset = next((part for part in error["loc"][1:] if isinstance(part, int)), None)
        cause = (error.get("ctx") or {}).get("error", "invalid JSON")
        where = f" at character {offset}" if offset is not None else ""
        return {"field": "body", "detail": f"not valid JSON ({cause}{where})", "reason": "MALFORMED"}
    return {"field": field_path(tuple(error["loc"])), "detail": error["msg"], "reason": "INVALID_FIELD"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegisterError)
    async def _register_error(_: Request, error: RegisterError) -> JSONResponse:
        response = refusal(error.status_code, error.reason, error.field, error.detail)
        if error.retry_after_s is not None:
            response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in error.errors()]
        first = problems[0] if problems else {"field": "body", "detail": "invalid request", "reason": "INVALID_FIELD"}
        return refusal(422, first["reason"], first["field"], f"{first['field']}: {first['detail']}",
                       errors=[{"field": p["field"], "detail": p["detail"]} for p in problems])


def payload_too_large(limit: int) -> JSONResponse:
    return refusal(413, "PAYLOAD_TOO_LARGE", "body", f"request body exceeds {limit} bytes")
