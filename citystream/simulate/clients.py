"""HTTP clients of the register (declare, activate, suspend, credentials) and of ingest (`POST /v1/readings`).

The simulator and the benchmark talk to the services only through these public HTTP APIs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service answered something the simulator cannot work around (a 4xx it did not expect)."""

    def __init__(self, what: str, status: int, body: Any) -> None:
        super().__init__(f"{what}: HTTP {status}: {body}")
        self.status = status
        self.body = body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


async def wait_until_ready(client: httpx.AsyncClient, url: str, timeout_s: float) -> None:
    """Polls `url` until it answers 200, or raises TimeoutError naming it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            response = await client.get(url, timeout=2.0)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code} {response.text[:200]}"
        except httpx.HTTPError as problem:
            last = repr(problem)
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s (last answer: {last})")


class RegisterClient:
    def __init__(self, base_url: str, admin_token: str, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s,
                                      headers={"Authorization": f"Bearer {admin_token}"})

    async def close(self) -> None:
        await self.http.aclose()

    async def ensure_active(self, declaration: dict[str, Any]) -> dict[str, Any]:
        """Declare the sensor (or update the existing declaration) and make it active; returns the sensor view."""
        sensor_id = declaration["sensor_id"]
        response = await self.http.post("/v1/sensors", json=declaration)
        if response.status_code == 409:
            changes = {k: declaration[k] for k in ("metrics", "reporting_interval_s", "rate_limit_per_minute")}
            changes["active_until"] = declaration.get("active_until")
            response = await self.http.patch(f"/v1/sensors/{sensor_id}", json=changes)
        if response.status_code not in (200, 201):
            raise ServiceError(f"declare {sensor_id}", response.status_code, _json(response))
        view = response.json()
        if view["status"] != "active":
            view = await self.set_status(sensor_id, "active")
        return view

    async def set_status(self, sensor_id: str, status: str) -> dict[str, Any]:
        response = await self.http.post(f"/v1/sensors/{sensor_id}/status", json={"status": status})
        if response.status_code != 200:
            raise ServiceError(f"set {sensor_id} {status}", response.status_code, _json(response))
        return response.json()

    async def issue_credential(self, sensor_id: str) -> str:
        response = await self.http.post(f"/v1/sensors/{sensor_id}/credentials", json={"overlap_seconds": 0})
        if response.status_code != 201:
            raise ServiceError(f"credential for {sensor_id}", response.status_code, _json(response))
        return response.json()["credential"]

    async def issue_gateway(self, sensor_ids: list[str]) -> str:
        response = await self.http.post("/v1/gateway-credentials", json={"sensor_ids": sensor_ids})
        if response.status_code != 201:
            raise ServiceError("gateway credential", response.status_code, _json(response))
        return response.json()["credential"]


@dataclass(frozen=True)
class IngestAnswer:
    status: int
    body: Any
    retry_after_s: float | None


class IngestClient:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, connections: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s, limits=limits)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, readings: list[dict[str, Any]], credential: str) -> IngestAnswer:
        """One batch; orjson-encoded. Connection problems propagate (httpx.HTTPError) so callers can retry."""
        response = await self.http.post("/v1/readings", content=orjson.dumps({"readings": readings}),
                                        headers={"Authorization": f"Bearer {credential}",
                                                 "Content-Type": "application/json"})
        retry = response.headers.get("retry-after")
        return IngestAnswer(response.status_code, _json(response), float(retry) if retry else None)

