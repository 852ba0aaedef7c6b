"""Table encodings of a sensor's detector state (pure): the hot part, written to `sensor_to_state` on every
reading, and the seasonal baseline, written to `sensor_to_baseline` only when it is due.

Hot: compact JSON of the engine state without its seasonal buckets (last seq, open alerts, detector states,
global EWMAs, rollup windows). Seasonal: binary, per metric 168 + 24 bucket means and deviations as float32 and
their counts as one byte each (counts are capped at 255 by the baseline; see detectors/baseline.py).

The baseline is written when a reading falls in a new hour (so every finished hour-of-week slot is persisted) and
otherwise every `BASELINE_EVERY` readings. A `kill -9` therefore loses at most the last `BASELINE_EVERY - 1`
bucket updates, all of them within the current hour; the hot part (global baseline, alerts) loses nothing.
"""

from __future__ import annotations

import struct
from array import array

import orjson

from services.anomaly.detectors.baseline import DAY_BUCKETS, WEEK_BUCKETS

BASELINE_EVERY = 32
# Stands in for a table key that did not decode (services/anomaly/table_keys.py); `!` is never in a sensor id.
UNDECODABLE_KEY_PREFIX = "!undecodable-"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<BB")  # format version, number of metrics


def encode_hot(state: dict) -> bytes:
    # Stateless detectors keep an empty dict; the engine recreates it, so it need not travel.
    hot = {key: value for key, value in state.items() if key != "b"}
    hot["d"] = {key: value for key, value in state["d"].items() if value}
    return orjson.dumps(hot)


def decode_hot(raw: bytes) -> dict:
    return orjson.loads(raw)


def encode_seasonal(seasonal: dict[str, list]) -> bytes:
    parts = [_HEADER.pack(FORMAT_VERSION, len(seasonal))]
    for metric, (wm, wd, wn, dm, dd, dn) in seasonal.items():
        name = metric.encode()
        parts += [bytes((len(name),)), name, array("f", wm).tobytes(), array("f", wd).tobytes(), bytes(wn),
                  array("f", dm).tobytes(), array("f", dd).tobytes(), bytes(dn)]
    return b"".join(parts)


def _floats(raw: bytes, at: int, count: int) -> tuple[list[float], int]:
    end = at + 4 * count
    return array("f", raw[at:end]).tolist(), end


def decode_seasonal(raw: bytes) -> dict[str, list]:
    version, count = _HEADER.unpack_from(raw)
    if version != FORMAT_VERSION:
        raise ValueError(f"seasonal baseline format {version} unknown (expected {FORMAT_VERSION})")
    at, seasonal = _HEADER.size, {}
    for _ in range(count):
        size = raw[at]
        metric = raw[at + 1:at + 1 + size].decode()
        at += 1 + size
        wm, at = _floats(raw, at, WEEK_BUCKETS)
        wd, at = _floats(raw, at, WEEK_BUCKETS)
        wn, at = list(raw[at:at + WEEK_BUCKETS]), at + WEEK_BUCKETS
        dm, at = _floats(raw, at, DAY_BUCKETS)
        dd, at = _floats(raw, at, DAY_BUCKETS)
        dn, at = list(raw[at:at + DAY_BUCKETS]), at + DAY_BUCKETS
        seasonal[metric] = [wm, wd, wn, dm, dd, dn]
    return seasonal


def baseline_due(state: dict, t: float) -> bool:
    """Should the reading just judged at `t` write the seasonal baseline? Keeps its mark in the hot state."""
    hour = int(t // 3600)
    mark = state.get("bw")
    if mark is None or mark[0] != hour or mark[1] + 1 >= BASELINE_EVERY:
        state["bw"] = [hour, 0]
        return True
    mark[1] += 1
    return False
