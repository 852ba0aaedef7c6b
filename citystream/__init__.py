"""The `citystream` command line and the local runtime that runs Kafka and TimescaleDB without Docker."""
