"""The worker's per-sensor state: decoded once into a local cache, persisted through the two changelog-backed
tables `sensor_to_state` (hot part, every reading) and `sensor_to_baseline` (seasonal part, when due).

Tables are only read on a cache miss or to re-validate an entry after a rebalance, so neither store decodes a
sensor's state per reading. Any mapping works as a table (Faust tables in the worker, dicts in unit tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping

from services.anomaly import state as codec


class SensorStates:
    def __init__(self, hot_table: MutableMapping, baseline_table: MutableMapping,
                 new_state: Callable[[str], dict]) -> None:
        self.hot_table, self.baseline_table, self.new_state = hot_table, baseline_table, new_state
        self.cache: dict[str, list] = {}  # sensor → [partition, state, rebalance generation it was checked in]
        self.generation = 0

    def get(self, sensor_id: str, partition: int, domain: str | None = None) -> dict | None:
        """The sensor's state (created for `domain` if unknown and a domain is given; else None)."""
        entry = self.cache.get(sensor_id)
        if entry is not None and entry[2] == self.generation and entry[0] == partition:
            return entry[1]
        if entry is not None:
            # After a rebalance another worker may have owned the partition meanwhile: keep the cached state
            # (with its not yet persisted baseline updates) only if the table shows nobody moved it on.
            raw = self.hot_table.get(sensor_id)
            if entry[0] == partition and (raw is None or codec.decode_hot(raw)["seq"] == entry[1]["seq"]):
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
        state = codec.decode_hot(raw)
        seasonal = self.baseline_table.get(sensor_id)
        state["b"] = codec.decode_seasonal(seasonal) if seasonal is not None else {}
        state.setdefault("d", {})
        return state

    def save(self, sensor_id: str, state: dict, t: float | None) -> None:
        """Persist the hot part; the seasonal part too if a reading at `t` makes it due (never for ticks/actions)."""
        due = t is not None and codec.baseline_due(state, t)  # first: the due mark travels in the hot part
        self.hot_table[sensor_id] = codec.encode_hot(state)
        if due:
            self.baseline_table[sensor_id] = codec.encode_seasonal(state["b"])

    def peek(self, sensor_id: str, raw: bytes) -> dict:
        """Read-only view for the timer scan: the cached state if current, else the table's hot part."""
        entry = self.cache.get(sensor_id)
        if entry is not None and entry[2] == self.generation:
            return entry[1]
        return codec.decode_hot(raw)

    def rebalanced(self, partitions: Iterable[int]) -> None:
        """New assignment: drop sensors of partitions no longer ours, re-check the others on their next use."""
        keep = set(partitions)
        self.generation += 1
        self.cache = {sensor: entry for sensor, entry in self.cache.items() if entry[0] in keep}
