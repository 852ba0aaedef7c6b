"""What the routes share, built in the lifespan: settings, database pool, producer, hub, directory, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.topics import ALERT_ACTIONS
from services.api.directory import SensorDirectory
from services.api.hub import AlertHub
from services.api.settings import ApiSettings
from services.common.readiness import KafkaReachability


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
    kafka: KafkaReachability = field(init=False)  # asks about a topic the API writes (operator actions)
    tasks: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kafka = KafkaReachability(self.settings.topic(ALERT_ACTIONS))
