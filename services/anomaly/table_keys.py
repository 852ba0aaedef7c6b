"""The anomaly tables' key codec: JSON strings, byte for byte as Faust's `json` codec writes sensor ids, except that
a key which does not decode becomes a marker instead of an exception.

Why: Faust decodes every changelog key while it recovers a table, and one that raises (not UTF-8, not JSON, not a
string) ends its recovery task: the worker logged "Error in recovery" and stayed not ready for ever (memory store),
or every silence scan raised (RocksDB, which decodes keys as it reads them). The marker cannot be a sensor id (`!`
is outside SENSOR_ID_PATTERN), so no reading ever meets that entry, and the silence scan skips it
(services/anomaly/sensors.py).
"""

from __future__ import annotations

import faust
import orjson
from faust.serializers import codecs

from services.anomaly.state import UNDECODABLE_KEY_PREFIX

SENSOR_ID_KEYS = "citystream_sensor_id"


class SensorIdKeys(codecs.Codec):
    def _dumps(self, key: str) -> bytes:
        return orjson.dumps(key)

    def _loads(self, raw: bytes) -> str:
        try:
            key = orjson.loads(raw)
        except orjson.JSONDecodeError:
            key = None
        return key if isinstance(key, str) else UNDECODABLE_KEY_PREFIX + raw.hex()


codecs.register(SENSOR_ID_KEYS, SensorIdKeys())


def tolerant_keys(table: faust.Table) -> faust.Table:
    """Give `table` this key codec, for its store (RocksDB decodes keys as it reads them) and for its changelog
    topic (the memory store gets its keys decoded from the changelog during recovery). Faust takes a table's key
    codec from its key type only, so set both right after the table is declared, before the worker starts."""
    table.key_serializer = SENSOR_ID_KEYS
    table.changelog_topic.key_serializer = SENSOR_ID_KEYS
    return table
