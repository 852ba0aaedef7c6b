"""CSV import/export of the register (pure): one sensor per row; metrics as `name:unit:min:max;...`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

COLUMNS = (
    "sensor_id", "owner_organisation", "owner_contact_name", "owner_contact_email", "contact_role", "domain", "metrics",
    "longitude", "latitude", "area_geojson", "location_description", "description", "purpose", "legal_ground",
    "personal_data", "privacy_statement_url", "retention_days", "reporting_interval_s", "rate_limit_per_minute",
    "active_from", "active_until",
)
EXPORT_COLUMNS = (*COLUMNS, "status", "version")
REQUIRED = frozenset(COLUMNS) - {"sensor_id", "contact_role", "area_geojson", "longitude", "latitude",
                                 "location_description", "description", "privacy_statement_url", "active_from",
                                 "active_until"}
TRUE, FALSE = {"true", "yes", "1", "y"}, {"false", "no", "0", "n"}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    detail: str


def _metrics(cell: str) -> list[dict[str, Any]]:
    metrics = []
    for index, item in enumerate(part.strip() for part in cell.split(";") if part.strip()):
        head, _, rest = item.partition(":")
        pieces = rest.rsplit(":", 2)
        if len(pieces) != 3:
            raise ValueError(f"metrics[{index}]", f"{item!r} is not name:unit:min:max")
        unit, low, high = pieces
        try:
            metrics.append({"name": head, "unit": unit, "min": float(low), "max": float(high)})
        except ValueError:
            raise ValueError(f"metrics[{index}]", f"min/max of {item!r} are not numbers") from None
    return metrics


def _location(row: dict[str, str]) -> dict[str, Any]:
    if (row.get("area_geojson") or "").strip():
        try:
            return orjson.loads(row["area_geojson"])
        except orjson.JSONDecodeError:
            raise ValueError("area_geojson", "not valid JSON") from None
    cells = {name: (row.get(name) or "").strip() for name in ("longitude", "latitude")}
    if not any(cells.values()):
        raise ValueError("location", "no location: give longitude and latitude, or area_geojson")
    position = []
    for name, cell in cells.items():
        try:
            position.append(float(cell))
        except ValueError:
            raise ValueError(name, f"{name} {cell!r} is not a number (or give area_geojson)") from None
    return {"type": "Point", "coordinates": position}


def _boolean(cell: str) -> bool:
    if cell.strip().lower() in TRUE:
        return True
    if cell.strip().lower() in FALSE:
        return False
    raise ValueError("personal_data", f"{cell!r} is not true/false")


def row_to_payload(row: dict[str, str]) -> dict[str, Any]:
    """A SensorCreate body from one CSV row. Raises ValueError(field, detail) on a cell that cannot be read."""
    missing = [name for name in sorted(REQUIRED) if not (row.get(name) or "").strip()]
    if missing:
        raise ValueError(missing[0], f"required column {missing[0]!r} is empty")
    payload: dict[str, Any] = {name: row[name].strip() for name in COLUMNS
                               if name not in ("longitude", "latitude", "area_geojson") and (row.get(name) or "").strip()}
    payload["metrics"] = _metrics(row["metrics"])
    payload["location"] = _location(row)
    payload["personal_data"] = _boolean(row["personal_data"])
    return payload


def parse(text: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, payload or RowError) for each data row. A bad header is one error on line 1."""
    reader = csv.DictReader(io.StringIO(text))
    unknown = [name for name in reader.fieldnames or () if name not in EXPORT_COLUMNS]
    absent = [name for name in sorted(REQUIRED) if name not in (reader.fieldnames or ())]
    if absent or unknown:
        yield 1, RowError(1, (absent or unknown)[0], f"header: missing {absent}, unknown {unknown}")
        return
    for row in reader:
        line = reader.line_num
        if None in row or any(value is None for value in row.values()):
            yield line, RowError(line, "row", f"expected {len(reader.fieldnames)} columns")
            continue
        try:
            yield line, row_to_payload(row)
        except ValueError as problem:
            field, detail = problem.args if len(problem.args) == 2 else ("row", str(problem))
            yield line, RowError(line, field, detail)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).lower() if isinstance(value, bool) else str(value)


def export(rows: Iterable[dict[str, Any]]) -> str:
    """The register as CSV, importable again (status/version are informational on import)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {name: _cell(row.get(name)) for name in EXPORT_COLUMNS}
        cells["metrics"] = ";".join(f"{m['name']}:{m['unit']}:{m['min']!r}:{m['max']!r}" for m in row["metrics"])
        location = row.get("location")
        # A row without a location is still exported (empty cells); importing it again reports that row.
        if location and location.get("type") == "Point":
            cells["longitude"], cells["latitude"] = (repr(c) for c in location["coordinates"])
        elif location:
            cells["area_geojson"] = orjson.dumps(location).decode()
        writer.writerow(cells)
    return out.getvalue()
