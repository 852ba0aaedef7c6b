"""The event loop of a Faust process (the anomaly worker, the Kafka-native gate): uvloop when it imports.

uvicorn picks uvloop by itself for ingest-http and the sink. A Faust process creates its loop as soon as its app
declares agents and services, so the policy has to be set in the entrypoint *before* the app module is imported or
built; set any later, it changes nothing (the anomaly worker ran on asyncio's loop that way until 2026-12-05, at
~10 % more CPU per reading: `python -m services.anomaly.loadprobe`, CITYSTREAM_ANOMALY_EVENT_LOOP=asyncio vs uvloop).
"""

from __future__ import annotations

import asyncio
import importlib


def imports(module: str) -> bool:
    """Whether an optional speed-up (uvloop, rocksdict) is installed and imports."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def default_event_loop() -> str:
    """`uvloop` when it imports, else `asyncio` (what uvicorn's "auto" picks)."""
    return "uvloop" if imports("uvloop") else "asyncio"


def use_event_loop(name: str) -> None:
    """`uvloop` or `asyncio`: the loop every loop created from now on in this process is of."""
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    elif name != "asyncio":
        raise ValueError(f"unknown event loop {name!r}: uvloop or asyncio")
