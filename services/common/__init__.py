"""The shared kernel: settings, logging, Kafka and database clients, metrics and the error taxonomy."""
