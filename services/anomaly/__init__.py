"""Anomaly detection service: detectors, alert lifecycle and rollups (pure), the Faust worker, replay and eval."""
