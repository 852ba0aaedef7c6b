"""The OpenAPI document carries an example for every request body and every main (2xx JSON) response, so
integrators see a real payload next to each schema."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from services.api.settings import ApiSettings


@pytest.fixture(scope="module")
def document() -> dict:
    return create_app(ApiSettings()).openapi()


def has_example(media: dict, document: dict) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    elif schema.get("type") == "array" and "$ref" in schema.get("items", {}):
        return False  # a bare list of models: the example must be on the response itself
    return bool(schema.get("examples") or schema.get("example") is not None)


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_request_body_has_an_example(document):
    bodies = {name: operation["requestBody"]["content"] for name, operation in operations(document)
              if "requestBody" in operation}
    assert bodies, "no request bodies documented at all"
    missing = [name for name, content in bodies.items()
               if not all(has_example(media, document) for media in content.values())]
    assert missing == []


def test_every_main_response_has_an_example(document):
    missing, checked = [], 0
    for name, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith("2"):
                continue
            for media_type, media in response.get("content", {}).items():
                if media_type != "application/json":
                    continue
                checked += 1
                if not has_example(media, document):
                    missing.append(f"{name} {status}")
    assert checked >= 10 and missing == []


def test_the_example_checker_notices_a_missing_example(document):
    assert not has_example({"schema": {"type": "object"}}, document)
    assert has_example({"example": {"a": 1}}, document)
