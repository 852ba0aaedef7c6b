"""FastAPI dependencies: the service context, a pooled connection, the authenticated principal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Depends, Header, Request

from services.register.auth import Principal, authenticate, bearer
from services.register.credential_service import CredentialService
from services.register.relay import OutboxRelay
from services.register.service import RegisterService
from services.register.settings import RegisterSettings


@dataclass
class RegisterContext:
    settings: RegisterSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay
    service: RegisterService
    credentials: CredentialService
    clock: Callable[[], datetime]


def get_context(request: Request) -> RegisterContext:
    return request.app.state.register


Context = Annotated[RegisterContext, Depends(get_context)]


async def get_connection(context: Context) -> AsyncIterator[asyncpg.Connection]:
    async with context.pool.acquire() as conn:
        yield conn


Connection = Annotated[asyncpg.Connection, Depends(get_connection)]


async def get_principal(context: Context,
                        authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> Principal:
    token = bearer(authorization)
    async with context.pool.acquire() as conn:
        return await authenticate(conn, token, context.settings.register_admin_token.get_secret_value())


Caller = Annotated[Principal, Depends(get_principal)]
