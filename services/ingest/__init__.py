"""Ingest: the gate into the readings topics (HTTP and Kafka-native) and the sink that stores them in TimescaleDB."""
