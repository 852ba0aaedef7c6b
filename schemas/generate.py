"""Generates the committed JSON Schema files (one per topic) and the AsyncAPI 3.0 document from the models."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from schemas import headers
from schemas.topics import CATALOGUE, TopicSpec

SCHEMAS_DIR = Path(__file__).resolve().parent
JSON_DIR = SCHEMAS_DIR / "json"
ASYNCAPI_PATH = SCHEMAS_DIR / "asyncapi.yaml"


def json_schema(spec: TopicSpec) -> dict:
    schema = spec.model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://citystream.example/schemas/{spec.name}.schema.json"
    return schema


def _header_schema() -> dict:
    return {
        "type": "object",
        "properties": {
            headers.CONTENT_TYPE: {"type": "string", "const": "application/json"},
            headers.SCHEMA: {"type": "string", "description": "Topic name of the payload's schema."},
            headers.PRODUCED_BY: {"type": "string", "description": "Service (and instance) that wrote it."},
            headers.EVENT_ID: {"type": "string", "description": "Unique id of the record (UUID or deterministic). "
                               "On readings topics `<sensor_id>:<seq>`: one per reading, the same when a client "
                               "retries it."},
        },
        "required": [headers.CONTENT_TYPE, headers.SCHEMA],
    }


def asyncapi() -> dict:
    channels: dict = {}
    operations: dict = {}
    messages: dict = {}
    for spec in CATALOGUE:
        channel_id = spec.name.replace(".", "_")
        message_name = spec.model.__name__
        messages[message_name] = {
            "name": message_name,
            "title": message_name,
            "summary": (spec.model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _header_schema(),
            "payload": {"$ref": f"./json/{spec.name}.schema.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "Sensor id (UTF-8)."}}},
        }
        channels[channel_id] = {
            "address": spec.name,
            "description": spec.description,
            "messages": {message_name: {"$ref": f"#/components/messages/{message_name}"}},
            "bindings": {
                "kafka": {
                    "partitions": spec.partitions,
                    # On a cluster of three or more brokers; fewer brokers hold one copy each (fit_replication).
                    "replicas": spec.replicas,
                    "topicConfiguration": {"cleanup.policy": [spec.cleanup_policy]}
                    | ({"retention.ms": spec.retention_ms} if spec.cleanup_policy == "delete" else {}),
                }
            },
        }
        operations[f"{channel_id}_write"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"Written by {spec.writer} (the only writer)."
            + "".join(f" {name} dead-letters records it cannot process here." for name in spec.dead_letter_writers),
        }
        operations[f"{channel_id}_read"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": "Read by " + (", ".join(spec.readers) or "anyone") + ".",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CityStream topics",
            "version": "1.0.0",
            "description": "Every CityStream Kafka topic. Key = sensor id (UTF-8), value = JSON, metadata in headers.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def rendered() -> dict[Path, str]:
    """Every generated file and its exact content."""
    files = {
        JSON_DIR / f"{spec.name}.schema.json": json.dumps(json_schema(spec), indent=2, sort_keys=True) + "\n"
        for spec in CATALOGUE
    }
    files[ASYNCAPI_PATH] = yaml.safe_dump(asyncapi(), sort_keys=False, allow_unicode=True, width=110)
    return files


def write() -> list[Path]:
    JSON_DIR.mkdir(exist_ok=True)
    written = []
    for path, text in rendered().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def drifted() -> list[Path]:
    """Generated files whose committed content differs from what the models produce now."""
    return [path for path, text in rendered().items() if not path.exists() or path.read_text() != text]


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path.relative_to(SCHEMAS_DIR.parent)}")
