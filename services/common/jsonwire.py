"""JSON on the wire: orjson both ways, pydantic models dumped in JSON mode."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel


def dumps(value: Any) -> bytes:
    """Serialise a pydantic model, dict or list to compact UTF-8 JSON."""
    if isinstance(value, BaseModel):
        return value.__pydantic_serializer__.to_json(value, exclude_none=True)
    return orjson.dumps(value)


def loads(data: bytes | str) -> Any:
    """Parse JSON. Raises `orjson.JSONDecodeError` (a ValueError) on bad input."""
    return orjson.loads(data)
