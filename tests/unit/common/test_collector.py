"""The collector is tuned only once the process is ready: frozen long-lived objects, spaced-out passes."""

from __future__ import annotations

import asyncio
import gc

from services.common.collector import OLDER_PASS_EVERY, YOUNG_PASS_ALLOCATIONS, settle_when_ready


async def test_the_collector_is_settled_only_after_ready():
    saved = gc.get_threshold()
    gc.unfreeze()  # whatever an earlier test in this process froze: this one starts from a collector not yet settled
    ready = asyncio.Event()
    settling = asyncio.create_task(settle_when_ready(ready))
    try:
        await asyncio.sleep(0.01)
        assert gc.get_threshold() == saved and gc.get_freeze_count() == 0 and not settling.done()
        ready.set()
        await asyncio.wait_for(settling, 5)
        assert gc.get_threshold() == (YOUNG_PASS_ALLOCATIONS, OLDER_PASS_EVERY, OLDER_PASS_EVERY)
        assert gc.get_freeze_count() > 0
    finally:  # the test process keeps its own collector settings
        settling.cancel()
        gc.unfreeze()
        gc.set_threshold(*saved)
