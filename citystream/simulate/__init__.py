"""The city simulator: a deterministic city (pure model), anomaly and bad-traffic injection, labels, HTTP clients."""
