"""The worker's per-sensor state: decoded once into a local cache, persisted through the two changelog-backed
tables `sensor_to_state` (hot part, at each flush that finds it changed) and `sensor_to_baseline` (seasonal part, when due).

Tables are only read on a cache miss or to re-validate an entry after a rebalance, so neither store decodes a
sensor's state per reading. The worker marks a sensor changed per reading (`touch`) and writes each changed sensor
once per flush (`flush`, about every second): the last write wins, so one changelog record per sensor, not per
reading.
Any mapping works as a table (Faust tables in the worker, dicts in unit tests).

A stored state that does not decode (a corrupt or foreign changelog record) is logged and counted once, and
treated as absent: that sensor starts afresh (its next flush overwrites the record), and the timer scan skips it,
as it skips a key that did not decode. Before, one such record failed every reading of its sensor, and every scan
of the timer, so no sensor was found silent.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from services.anomaly import state as codec
from services.anomaly.metrics import UNDECODABLE_STATES

log = logging.getLogger(__name__)
# What decoding a damaged record raises: orjson's and UnicodeDecodeError are ValueErrors; short binary, struct.error
# or IndexError; a JSON value of the wrong shape, TypeError or KeyError.
UNDECODABLE = (ValueError, struct.error, IndexError, TypeError, KeyError)
REPORTED_AT_MOST = 10_000  # distinct damaged records logged and counted; beyond that, still skipped


class SensorStates:
    def __init__(self, hot_table: MutableMapping, baseline_table: MutableMapping,
                 new_state: Callable[[str], dict], bind: Callable[[Any], object] = lambda source: None) -> None:
        """`bind(source)` runs before a sensor's writes with what `touch` was given as `source` (the worker binds
        the Faust event, whose partition the tables write to)."""
        self.hot_table, self.baseline_table, self.new_state = hot_table, baseline_table, new_state
        self.bind = bind
        self.cache: dict[str, list] = {}  # sensor → [partition, state, rebalance generation it was checked in]
        self.generation = 0
        self.dirty: dict[str, list] = {}  # sensor → [state, seasonal part due, source] awaiting `flush`
        self.reported: set[tuple[str, str, int]] = set()  # damaged records already logged: once each, not per scan

    def get(self, sensor_id: str, partition: int, domain: str | None = None) -> dict | None:
        """The sensor's state (created for `domain` if unknown and a domain is given; else None)."""
        entry = self.cache.get(sensor_id)
        if entry is not None and entry[2] == self.generation and entry[0] == partition:
            return entry[1]
        if entry is not None:
            # After a rebalance another worker may have owned the partition meanwhile: keep the cached state
            # (with its not yet persisted baseline updates) only if the table shows nobody moved it on.
            raw = self.hot_table.get(sensor_id)
            stored = None if raw is None or sensor_id in self.dirty else self._decode_hot(sensor_id, raw)
            # A state changed since the last flush is newer than the table's, by construction; so is the cached one
            # when the table's does not decode.
            if entry[0] == partition and (not stored or stored["seq"] == entry[1]["seq"]):
                entry[2] = self.generation
                return entry[1]
        state = self.load(sensor_id)
        if state is None:
            if domain is None:
                return None
            state = {**self.new_state(domain), "dom": domain}
        self.cache[sensor_id] = [partition, state, self.generation]
        return state

    def load(self, sensor_id: str) -> dict | None:
        """Decode the sensor's state from the tables (None if it has no hot state)."""
        raw = self.hot_table.get(sensor_id)
        if raw is None:
            return None
        state = self._decode_hot(sensor_id, raw)
        if not state:
            return None
        seasonal = self.baseline_table.get(sensor_id)
        state["b"] = {}
        if seasonal is not None:
            try:
                state["b"] = codec.decode_seasonal(seasonal)
            except UNDECODABLE as problem:  # the hot part still holds; only the seasonal shape is relearnt
                self._undecodable(sensor_id, "seasonal", seasonal, problem)
        state.setdefault("d", {})
        return state

    def _decode_hot(self, sensor_id: str, raw: bytes) -> dict:
        """The hot part, or {} when it does not decode (or is not a state at all, or its key did not decode)."""
        try:
            if sensor_id.startswith(codec.UNDECODABLE_KEY_PREFIX):
                raise ValueError("the table key did not decode")
            state = codec.decode_hot(raw)
            if isinstance(state, dict) and "dom" in state and "seq" in state:
                return state
            raise ValueError("not a sensor state (no 'dom' and 'seq')")
        except UNDECODABLE as problem:
            self._undecodable(sensor_id, "hot", raw, problem)
            return {}

    def _undecodable(self, sensor_id: str, part: str, raw: bytes, problem: Exception) -> None:
        seen = (sensor_id, part, hash(raw))
        if seen in self.reported or len(self.reported) >= REPORTED_AT_MOST:
            return
        self.reported.add(seen)
        UNDECODABLE_STATES.labels(part=part).inc()
        log.warning("stored %s state of sensor %r does not decode (%r); treating it as absent", part, sensor_id,
                    problem)

    def touch(self, sensor_id: str, state: dict, t: float | None, source: Any = None) -> None:
        """Mark the state changed by a reading at `t` (None: a tick or an action); `flush` writes it.

        The seasonal part's due mark is advanced per reading, exactly as if every reading were written, and the
        seasonal part is written at the flush if any reading of the batch made it due."""
        due = t is not None and codec.baseline_due(state, t)  # first: the due mark travels in the hot part
        entry = self.dirty.get(sensor_id)
        if entry is None or entry[0] is not state:
            self.dirty[sensor_id] = [state, due, source]
        else:
            entry[1], entry[2] = entry[1] or due, source

    def drain(self) -> list[tuple[str, bytes, bytes | None, Any]]:
        """Encode every touched sensor once and clear the marks: (sensor, hot part, seasonal part when due, source).

        Encoded at once, so what is written is the state as of this call, whatever is judged while it is sent."""
        dirty, self.dirty = self.dirty, {}
        return [(sensor_id, codec.encode_hot(state), codec.encode_seasonal(state["b"]) if due else None, source)
                for sensor_id, (state, due, source) in dirty.items()]

    def flush(self) -> int:
        """Write every touched sensor to the tables once (hot part; seasonal part when due). Returns how many."""
        drained = self.drain()
        for sensor_id, hot, seasonal, source in drained:
            self.bind(source)
            self.hot_table[sensor_id] = hot
            if seasonal is not None:
                self.baseline_table[sensor_id] = seasonal
        return len(drained)

    def save(self, sensor_id: str, state: dict, t: float | None) -> None:
        """Persist at once: the hot part; the seasonal part too if a reading at `t` makes it due."""
        self.touch(sensor_id, state, t)
        self.flush()

    def peek(self, sensor_id: str, raw: bytes) -> dict:
        """Read-only view for the timer scan: the cached state if current, else the table's hot part."""
        entry = self.cache.get(sensor_id)
        if entry is not None and entry[2] == self.generation:
            return entry[1]
        return self._decode_hot(sensor_id, raw)

    def rebalanced(self, partitions: Iterable[int]) -> None:
        """New assignment: drop sensors of partitions no longer ours, re-check the others on their next use."""
        keep = set(partitions)
        self.generation += 1
        self.cache = {sensor: entry for sensor, entry in self.cache.items() if entry[0] in keep}
