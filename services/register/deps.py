"""FastAPI dependencies: the service context, a pooled connection, the principal the policy check authenticated."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request

from services.register.auth import Principal
from services.register.credential_service import CredentialService
from services.register.policy import current_principal
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


Caller = Annotated[Principal, Depends(current_principal)]
