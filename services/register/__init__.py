"""The sensor register: declare before you publish. Postgres tables `register_*`; writes `citystream.register.sensors.v1`."""
