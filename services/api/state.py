"""What the routes share, built in the lifespan: settings, database pool, producer, hub, directory, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.api.directory import SensorDirectory
from services.api.hub import AlertHub
from services.api.readiness import KafkaProbe
from services.api.settings import ApiSettings


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("citystream_api_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("citystream_api_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)
        self.live_clients = Gauge("citystream_api_live_clients", "Open SSE/WebSocket alert streams",
                                  registry=self.registry)
        self.alert_events = Counter("citystream_api_alert_events_consumed_total",
                                    "Alert events read from the alerts topic", registry=self.registry)
        self.actions = Counter("citystream_api_alert_actions_total", "Operator commands sent", ["action"],
                               registry=self.registry)


@dataclass
class ApiState:
    settings: ApiSettings
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    hub: AlertHub | None = None
    directory: SensorDirectory = field(default_factory=SensorDirectory)
    pool: object | None = None
    producer: object | None = None  # set once it has connected (see services.api.app.lifespan)
    kafka_probe: KafkaProbe = field(default_factory=KafkaProbe)
    tasks: list = field(default_factory=list)
