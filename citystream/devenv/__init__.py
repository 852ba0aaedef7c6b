"""Local runtime: Kafka (KRaft, from Maven Central jars) and PostgreSQL + TimescaleDB, on loopback, no Docker."""
