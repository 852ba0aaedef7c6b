"""The load generator and benchmark: services as subprocesses, HTTP and Kafka-native load, the raw ceiling."""
