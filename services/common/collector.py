"""The cyclic garbage collector tuned for a long-running hot-path process: ingest-http (~2 µs of CPU per reading
less), the sink and the anomaly worker (~3 µs of its ~32 µs per reading, `python -m services.anomaly.loadprobe`).

Every batch allocates several objects per reading (parsed dicts, outcomes, records), which starts the collector's
young passes over and over, and every so often a full pass over everything the process holds: the imported
modules, the app, the register view, the worker's sensor states. Those live as long as the process, so once the
process is ready they are frozen (never scanned again; anything unreachable among them at that moment is kept, once), and
young passes run every 20,000 allocations instead of 700. Requests' own objects are acyclic and freed by
reference counting; the collector still runs, only less often.
"""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger(__name__)

YOUNG_PASS_ALLOCATIONS = 20_000
OLDER_PASS_EVERY = 20  # passes of the generation below


async def settle_when_ready(ready: asyncio.Event | None) -> None:
    """Freeze what the process holds once `ready` is set (at once without one), and space out the passes."""
    if ready is not None:
        await ready.wait()
    settle()
    log.info("garbage collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())


def settle() -> None:
    """Collect once, freeze what is left, space out the passes (what `settle_when_ready` does once ready)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_PASS_ALLOCATIONS, OLDER_PASS_EVERY, OLDER_PASS_EVERY)
