"""Ingest's OpenAPI declarations: the batch body, the sensor-credential bearer scheme, and every status of
`POST /v1/readings` with its body (models in schemas/ingest_http.py), so clients can be generated from it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from schemas.ingest_http import (
    BatchResult,
    CredentialRefused,
    IngestUnavailable,
    ReadingBatch,
    RequestRefused,
    SourceLimited,
)
from schemas.rejections import HTTP_STATUS
from services.common.readiness import Readiness

SECURITY_SCHEME = "sensorCredential"
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}
_PREFERENCE_APPLIED = {"Preference-Applied": {
    "description": "`return=minimal` when the request asked for it: `outcomes` lists only the rejected readings.",
    "schema": {"type": "string", "enum": ["return=minimal"]}}}


def _reasons(status: int) -> str:
    return ", ".join(f"`{reason.value}`" for reason, code in HTTP_STATUS.items() if code == status)


READINGS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": BatchResult, "headers": _PREFERENCE_APPLIED,
          "description": "Every reading admitted (acknowledged by Kafka)."},
    207: {"model": BatchResult, "headers": _PREFERENCE_APPLIED,
          "description": "Some readings admitted, some rejected: see `outcomes`."},
    400: {"model": RequestRefused | BatchResult,
          "description": "`MALFORMED`: the body is not JSON or not `{\"readings\": [...]}` (RequestRefused), or "
                         "every reading was malformed (BatchResult)."},
    401: {"model": CredentialRefused | BatchResult,
          "description": f"{_reasons(401)}: the credential is valid for no sensor, so no reading was looked at "
                         "(CredentialRefused); or every reading claims a sensor the credential is not for "
                         "(BatchResult)."},
    403: {"model": BatchResult, "description": f"Every reading rejected for one of {_reasons(403)}."},
    404: {"model": BatchResult, "description": f"Every reading rejected: {_reasons(404)}."},
    413: {"model": RequestRefused, "description": f"{_reasons(413)}: body or batch over the limit."},
    422: {"model": BatchResult, "description": f"Every reading rejected, for several reasons or one of "
                                              f"{_reasons(422)}."},
    429: {"model": BatchResult | SourceLimited, "headers": _RETRY_AFTER,
          "description": f"Every reading rejected: {_reasons(429)} (BatchResult); or this address sent too many "
                         "requests with a failing credential (SourceLimited). Retry after `Retry-After` seconds."},
    503: {"model": IngestUnavailable, "headers": _RETRY_AFTER,
          "description": "Kafka did not acknowledge in time, the register view is not caught up, or (several "
                         "processes sharing each sensor's quota) no rate-limit lease could be had from PostgreSQL."},
}

# The handler reads the raw body itself (size limit, lenient parsing), so the body is declared, not parsed.
READINGS_OPENAPI_EXTRA: dict[str, Any] = {
    "summary": "Publish a batch of readings",
    "description": "Each reading passes the register gate on its own (sensor declared and active, credential, "
                   "declared metrics in range, timestamp, rate) and is answered in `outcomes`, in batch order; "
                   "rejected readings also go to `citystream.readings.rejected.v1` with the same reason code. "
                   "A 2xx comes only after Kafka acknowledged every admitted reading.",
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{ReadingBatch.__name__}"}}}},
    "security": [{SECURITY_SCHEME: []}],
    "parameters": [{
        "name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
        "example": "return=minimal",
        "description": "RFC 7240. `return=minimal`: the answer's `outcomes` list only the rejected readings (each "
                       "with its `index`); status and counts are unchanged. Without it, one outcome per reading."}],
}


READYZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Readiness, "description": "Ready (services/common/readiness.py)."},
    503: {"model": Readiness, "description": "Not ready: see which check is not ok."},
}
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text exposition format.",
          "content": {"text/plain": {"schema": {"type": "string"}}}},
}


def install_openapi(app: FastAPI) -> None:
    """FastAPI's document plus what it cannot derive from a raw-body handler: the batch model and the scheme."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            batch = ReadingBatch.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(batch.pop("$defs", {}))
            schemas[ReadingBatch.__name__] = batch
            spec["components"]["securitySchemes"] = {SECURITY_SCHEME: {
                "type": "http", "scheme": "bearer", "bearerFormat": "<key_id>.<secret>",
                "description": "The sensor's (or gateway's) credential from the register, `<key_id>.<secret>`. "
                               "Missing or wrong: each reading is rejected `BAD_CREDENTIALS` (401)."}}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = document

