"""Faust's table recovery, changed in one place: stream partitions resume only after they were sought to their
committed offsets and the flow was resumed, never before.

Why: faust-streaming 0.15.3 (`Recovery.on_recovery_completed` and `_resume_streams`) resumes the stream partitions,
then seeks them, then resumes the flow. Flow is already on by then (recovery turned it on to read the changelogs),
so records fetched during the seek reach the agents before the seek puts the read offset back (judged twice), and
resuming the flow clears the stream queues (`clear_on_resume`), dropping records already counted as read. After a
restart or a rebalance under load some readings were judged twice and some never, and a partition's commit could
stall at a gap (faust-streaming/faust#596; tests/integration/test_faust_restart_race.py's scenario lost or
double-counted records in 5 of 6 runs with the stock recovery on 2026-12-01, none in 6 with this one). With the
partitions paused until the end, the first record any agent sees is the committed one.

Readings no longer go through a Faust stream (services/anomaly/readings_loop.py fetches them itself, from the
committed offsets, once recovery is complete); the silence ticks and operator actions still do, so this stays.

The two methods below are Faust's own, step for step, except for that order. The app opts in with
`TableManager=SEEK_FIRST_TABLE_MANAGER`. tests/unit/anomaly/test_seek_first_recovery.py checks the order, and
fails if a Faust upgrade changes the methods this copies.
"""

from __future__ import annotations

import asyncio

from faust.tables import TableManager
from faust.tables.recovery import Recovery

SEEK_FIRST_TABLE_MANAGER = "services.anomaly.recovery:SeekFirstTableManager"


class SeekFirstRecovery(Recovery):
    # _reseek: the stream partitions were fetching while recovery read the changelogs (flow on). A batch the
    # consumer thread delivers after the first seek sets Faust's read offsets past the records it holds, and resuming
    # the flow clears them from the queues: those records were then skipped as already read and committed past
    # (tests/integration/test_faust_restart_race.py under load, debug log: offsets 5-23 lost, the first counted 24).
    # Seeking again once the queues are cleared, before the flow resumes, puts the read offsets back to the commit.
    async def _seek_stream_partitions(self) -> None:
        self.log.info("Seek stream partitions to committed offsets.")
        await self._wait(self.app.consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)

    def _resume_stream_partitions(self, assignment: set) -> None:
        self.log.dev("Resume stream partitions")
        self.app.consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})

    async def _resume_streams(self, generation_id: int = 0) -> None:
        app = self.app
        consumer = app.consumer
        await app.on_rebalance_complete.send()
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if assignment:
            await self._seek_stream_partitions()
        else:
            self.log.info("Resuming streams with empty assignment")
        self.completed.set()
        self.log.info("Resuming flow...")
        app.flow_control.resume()
        if assignment:
            await self._seek_stream_partitions()  # again: see _reseek
        consumer.resume_flow()
        self._resume_stream_partitions(assignment)
        await app._fetcher.maybe_start()  # make sure the fetcher is running
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        consumer = self.app.consumer
        self.log.info("Restore complete!")
        await self.app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                       self.standbys_for_table[table]))
                     for table in self.tables.values()]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if self.app.consumer_generation_id != generation_id:
            self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} "
                             f"param {generation_id}")
            return
        if assignment:
            await self._seek_stream_partitions()
        self.completed.set()
        self.app.flow_control.resume()
        if assignment:
            await self._seek_stream_partitions()  # again: see _reseek
        consumer.resume_flow()
        self._resume_stream_partitions(assignment)
        await self.app._fetcher.maybe_start()  # make sure the fetcher is running
        self.tables.on_actives_ready()
        if not self.app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        self.app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
