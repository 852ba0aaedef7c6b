"""Owner/admin API on sensors: declare, update, lifecycle, expiring, audit, CSV import/export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from schemas.register import SensorStatus
from services.register import csvio, queries
from services.register.deps import Caller, Connection, Context
from services.register.domain import RegisterError
from services.register.http_errors import field_path
from services.register.models import SensorCreate, SensorUpdate, SensorView, StatusChange
from services.register.policy import SECURED, Access, access

router = APIRouter(prefix="/v1/sensors", tags=["sensors"], dependencies=SECURED)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SensorView, openapi_extra=access(Access.OWNER))
async def declare_sensor(body: SensorCreate, context: Context, caller: Caller) -> dict:
    """Declare a sensor (status draft). Owners may declare only for their own organisation."""
    return await context.service.declare(caller, body)


@router.get("", response_model=list[SensorView], openapi_extra=access(Access.OWNER))
async def list_sensors(context: Context, caller: Caller, conn: Connection,
                       status_in: Annotated[list[SensorStatus] | None, Query(alias="status")] = None,
                       expired: bool | None = None) -> list[dict]:
    """Sensors the caller may see; `expired=true` lists those whose active_until has passed."""
    statuses = [s.value for s in status_in] if status_in else None
    return await queries.sensor_views(conn, caller, context.clock(), statuses=statuses, expired=expired)


@router.get("/expiring", response_model=list[SensorView], openapi_extra=access(Access.OWNER))
async def expiring_sensors(context: Context, caller: Caller, conn: Connection,
                           days: Annotated[float, Query(gt=0, le=3650)] = 30) -> list[dict]:
    """Sensors whose active_until falls within the next `days` days."""
    return await queries.sensor_views(conn, caller, context.clock(), expiring_days=days)


@router.get("/export.csv", response_class=Response, openapi_extra=access(Access.OWNER))
async def export_csv(context: Context, caller: Caller, conn: Connection) -> Response:
    rows = await queries.sensor_views(conn, caller, context.clock())
    return Response(csvio.export(rows), media_type="text/csv",
                    headers={"content-disposition": 'attachment; filename="register.csv"'})


@router.post("/import", openapi_extra=access(Access.OWNER))
async def import_csv(request: Request, context: Context, caller: Caller) -> dict:
    """Body: CSV (text/csv). Each row is declared in its own transaction; the answer reports every row."""
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RegisterError(422, "MALFORMED", "body", "CSV must be UTF-8") from None
    report = []
    for line, parsed in csvio.parse(text):
        if isinstance(parsed, csvio.RowError):
            report.append({"line": line, "ok": False, "field": parsed.field, "detail": parsed.detail})
            continue
        try:
            view = await context.service.declare(caller, SensorCreate.model_validate(parsed))
            report.append({"line": line, "ok": True, "sensor_id": view["sensor_id"]})
        except ValidationError as problem:
            first = problem.errors()[0]  # named as the JSON API names it, e.g. metrics[0].unit
            report.append({"line": line, "ok": False, "field": field_path(first["loc"]), "detail": first["msg"]})
        except RegisterError as problem:
            report.append({"line": line, "ok": False, "field": problem.field, "detail": problem.detail,
                           "reason": problem.reason})
    return {"imported": sum(r["ok"] for r in report), "failed": sum(not r["ok"] for r in report), "rows": report}


@router.get("/{sensor_id}", response_model=SensorView, openapi_extra=access(Access.OWNER))
async def get_sensor(sensor_id: str, context: Context, caller: Caller, conn: Connection) -> dict:
    return await queries.sensor_view(conn, caller, sensor_id, context.clock())


@router.patch("/{sensor_id}", response_model=SensorView, openapi_extra=access(Access.OWNER))
async def update_sensor(sensor_id: str, body: SensorUpdate, context: Context, caller: Caller) -> dict:
    return await context.service.update(caller, sensor_id, body)


@router.post("/{sensor_id}/status", response_model=SensorView, openapi_extra=access(Access.OWNER))
async def change_status(sensor_id: str, body: StatusChange, context: Context, caller: Caller) -> dict:
    """draft → active ⇄ suspended → retired (final)."""
    return await context.service.change_status(caller, sensor_id, body.status)


@router.delete("/{sensor_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=access(Access.ADMIN))
async def delete_sensor(sensor_id: str, context: Context, caller: Caller) -> Response:
    """Admin only: removes the sensor and puts a tombstone on the register topic."""
    await context.service.delete(caller, sensor_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{sensor_id}/audit", openapi_extra=access(Access.OWNER))
async def sensor_audit(sensor_id: str, caller: Caller, conn: Connection,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    return await queries.audit_trail(conn, caller, sensor_id, limit)

