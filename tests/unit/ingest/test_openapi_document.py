"""Ingest's OpenAPI documents the batch body, the bearer scheme and every status of POST /v1/readings with its
body; the committed schemas/openapi/ingest.json is the current document (`citystream schemas generate`)."""

from __future__ import annotations

import json

from citystream.cli import INGEST_OPENAPI_PATH, ingest_openapi
from schemas.ingest_http import ReadingBatch
from schemas.rejections import HTTP_STATUS

DOCUMENT = json.loads(ingest_openapi())
OPERATION = DOCUMENT["paths"]["/v1/readings"]["post"]


def test_committed_document_is_current():
    assert INGEST_OPENAPI_PATH.read_text(encoding="utf-8") == ingest_openapi(), (
        "ingest's OpenAPI changed: run `citystream schemas generate` and commit schemas/openapi/ingest.json")


def test_the_batch_body_is_the_contract_model():
    body = OPERATION["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReadingBatch"}
    schemas = DOCUMENT["components"]["schemas"]
    assert schemas["ReadingBatch"]["properties"]["readings"]["items"] == {"$ref": "#/components/schemas/RawReading"}
    assert set(schemas["RawReading"]["required"]) == {"seq", "observed_at", "metrics"}
    assert schemas["RawReading"]["additionalProperties"] is False  # received_at etc. are the gate's, never a sender's
    generated = ReadingBatch.model_json_schema(ref_template="#/components/schemas/{model}")
    generated.pop("$defs")
    assert schemas["ReadingBatch"] == generated


def test_the_bearer_scheme_is_declared_and_required():
    scheme = DOCUMENT["components"]["securitySchemes"]["sensorCredential"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert OPERATION["security"] == [{"sensorCredential": []}]


def test_every_status_the_handler_can_answer_is_documented_with_a_body():
    documented = {int(status) for status in OPERATION["responses"]}
    assert set(HTTP_STATUS.values()) | {200, 207, 422, 503} <= documented
    for status, response in OPERATION["responses"].items():
        assert "schema" in response["content"]["application/json"], status
    reasons = DOCUMENT["components"]["schemas"]["RejectionReason"]["enum"]
    assert set(reasons) == {reason.value for reason in HTTP_STATUS}
    assert "Retry-After" in OPERATION["responses"]["429"]["headers"]
    assert "Retry-After" in OPERATION["responses"]["503"]["headers"]
