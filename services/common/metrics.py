"""Prometheus helpers: a `/metrics` response any service can mount."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


def metrics_payload(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The exposition text of `registry` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
