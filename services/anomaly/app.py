"""The Faust worker: readings → detectors → `citystream.alerts.v1` + `citystream.rollups.1m.v1`; applies
operator commands from `citystream.alerts.actions.v1`. Per-sensor state lives in two changelog-backed tables,
`sensor_to_state` (hot, every reading) and `sensor_to_baseline` (seasonal, when due; see state.py), cached by
sensors.py; the register topic gives declared ranges and intervals. Web: /healthz, /readyz, /metrics.
"""

from __future__ import annotations

import logging
import time

import faust
from pydantic import ValidationError

from schemas.alerts import AlertAction
from schemas.common import Domain
from schemas.readings import READING_MODEL_BY_DOMAIN
from schemas.topics import ALERT_ACTIONS, ALERTS, REGISTER_SENSORS, REJECTED_READINGS, ROLLUPS_1M, readings_topic
from services.anomaly import metrics, wire
from services.anomaly.detectors import DEFAULT_PROFILE, Obs
from services.anomaly.engine import Engine, Outcome
from services.anomaly.lifecycle import LifecycleConfig
from services.anomaly.register_view import RegisterView
from services.anomaly.sensors import SensorStates
from services.anomaly.settings import AnomalySettings
from services.common.metrics import metrics_payload

log = logging.getLogger(__name__)
settings = AnomalySettings()
settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust wants its data directory's parent to exist

app = faust.App(
    settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}", store=settings.table_store(),
    datadir=str(settings.datadir.resolve()), web_port=settings.web_port, web_host=settings.web_host,
    topic_partitions=4, table_standby_replicas=0, consumer_auto_offset_reset="earliest", producer_acks=-1,
    web_in_thread=False, broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=settings.session_timeout_s / 5,
)
# Values are encoded by services/anomaly/state.py (compact JSON / binary); value_type=bytes = raw serializer.
sensor_to_state = app.Table("sensor_to_state", default=None, partitions=4, key_type=str, value_type=bytes)
sensor_to_baseline = app.Table("sensor_to_baseline", default=None, partitions=4, key_type=str, value_type=bytes)
register = RegisterView()
lifecycle_config = LifecycleConfig(resolve_after_s=settings.resolve_after_s)
engines = {d.value: Engine(d.value, silence_k=settings.silence_k, lifecycle_config=lifecycle_config) for d in Domain}
states = SensorStates(sensor_to_state, sensor_to_baseline, lambda domain: engines[domain].new_state())


def _topic(name: str) -> faust.TopicT:
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")


alerts_topic, rollups_topic, rejected_topic = _topic(ALERTS), _topic(ROLLUPS_1M), _topic(REJECTED_READINGS)
actions_topic = _topic(ALERT_ACTIONS)
ticks_topic = app.topic(f"{settings.app_id}-ticks", internal=True, partitions=4, key_serializer="raw",
                        value_serializer="raw")


async def publish(sensor_id: str, outcome: Outcome) -> None:
    key = sensor_id.encode()
    for event in outcome.events:
        metrics.ALERT_EVENTS.labels(event.kind.value, event.event_type.value).inc()
        await alerts_topic.send(key=key, value=wire.dumps(event), headers=wire.headers(ALERTS, event.event_id,
                                                                                        settings, event))
    for rollup in outcome.rollups:
        metrics.ROLLUPS.inc()
        await rollups_topic.send(key=key, value=wire.dumps(rollup), headers=wire.headers(ROLLUPS_1M, None, settings))


async def judge_reading(domain: str, event: faust.EventT) -> None:
    message = event.message
    try:
        reading = READING_MODEL_BY_DOMAIN[Domain(domain)].model_validate_json(message.value)
    except (ValueError, ValidationError) as problem:
        metrics.REJECTED.labels(domain).inc()
        rejection = wire.rejection(message.value, problem, domain)
        await rejected_topic.send(key=message.key, value=wire.dumps(rejection),
                                  headers=wire.headers(REJECTED_READINGS, rejection.event_id, settings))
        log.warning("rejected %s[%s]@%s: %s", message.topic, message.partition, message.offset, rejection.detail)
        return
    sensor_id = reading.sensor_id
    engine = engines[domain]
    state = states.get(sensor_id, message.partition, domain)
    values = {name: value for name, value in reading.metrics.model_dump().items() if value is not None}
    obs = Obs(sensor_id, reading.seq, reading.observed_at.timestamp(), values)
    outcome = engine.observe(state, obs, register.profiles.get(sensor_id, DEFAULT_PROFILE), arrival=time.time())
    metrics.READINGS.labels(domain).inc()
    if not outcome.duplicate:
        states.save(sensor_id, state, obs.t)
        await publish(sensor_id, outcome)


def _detect(domain: str):
    async def detect_anomalies(stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                await judge_reading(domain, event)
            except Exception:  # one sensor's failure must never stall the partition
                metrics.ERRORS.labels("reading").inc()
                m = event.message
                log.exception("detector failed on %s[%s]@%s sensor %r", m.topic, m.partition, m.offset, m.key)

    detect_anomalies.__name__ = f"detect_anomalies_{domain}"
    return app.agent(_topic(readings_topic(domain)), name=f"detect_anomalies_{domain}")(detect_anomalies)


detect_agents = {d.value: _detect(d.value) for d in Domain}


@app.agent(actions_topic)
async def apply_operator_actions(stream: faust.StreamT) -> None:
    async for event in stream.events():
        m = event.message
        try:
            action = AlertAction.model_validate_json(m.value)
            state = states.get(action.sensor_id, m.partition)
            if state is None:
                log.info("action %s for unknown sensor %s ignored", action.action_id, action.sensor_id)
                continue
            outcome = Outcome(events=engines[state["dom"]].apply_action(state, action))
            if outcome.events:
                states.save(action.sensor_id, state, None)
                await publish(action.sensor_id, outcome)
        except Exception:
            metrics.ERRORS.labels("action").inc()
            log.exception("action failed on %s[%s]@%s key %r", m.topic, m.partition, m.offset, m.key)


@app.agent(ticks_topic)
async def check_silence(stream: faust.StreamT) -> None:
    """Timer work runs here, on the partition that owns the sensor, so table writes land in its changelog."""
    async for event in stream.events():
        m = event.message
        try:
            sensor_id, now = m.key.decode(), float(m.value)
            state = states.get(sensor_id, m.partition)
            if state is None:
                continue
            outcome = engines[state["dom"]].tick(state, sensor_id, now, register.profiles.get(sensor_id,
                                                                                              DEFAULT_PROFILE))
            if outcome.events or outcome.rollups:
                states.save(sensor_id, state, None)
                await publish(sensor_id, outcome)
        except Exception:
            metrics.ERRORS.labels("tick").inc()
            log.exception("tick failed on %s[%s]@%s key %r", m.topic, m.partition, m.offset, m.key)


@app.timer(settings.tick_interval_s)
async def find_due_sensors() -> None:
    """Tables cannot be written from a timer, so due sensors get a tick record keyed like their readings."""
    now = time.time()
    for sensor_id, raw in list(sensor_to_state.items()):
        state = states.peek(sensor_id, raw)
        if state and engines[state["dom"]].tick_due(state, now, register.profiles.get(sensor_id, DEFAULT_PROFILE)):
            await ticks_topic.send(key=sensor_id.encode(), value=repr(now).encode())


@app.on_partitions_assigned.connect
async def forget_moved_sensors(app: faust.App, assigned: set, **kwargs) -> None:
    """Cached states of partitions now owned elsewhere are dropped; the rest are re-checked on next use."""
    readings = {settings.topic(readings_topic(d.value)) for d in Domain}
    states.rebalanced(tp.partition for tp in assigned if tp.topic in readings)


register_follower = register.follower(settings.kafka_bootstrap, settings.topic(REGISTER_SENSORS))


@app.task
async def follow_register() -> None:
    await register_follower.run_forever()


@app.page("/healthz")
async def healthz(web, request):
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web, request):
    checks = {"tables_recovered": app.tables.recovery.completed.is_set(), "rebalancing": bool(app.rebalancing),
              "register_caught_up": register_follower.caught_up.is_set()}
    ready = checks["tables_recovered"] and not checks["rebalancing"] and checks["register_caught_up"]
    return web.json({"ready": ready, **checks}, status=200 if ready else 503)


@app.page("/metrics")
async def prometheus(web, request):
    payload, content_type = metrics_payload()
    # aiohttp wants the charset apart from the content type; Prometheus reads UTF-8 anyway.
    return web.bytes(payload, content_type=";".join(p for p in content_type.split(";") if "charset" not in p))
