"""The Faust worker: readings → detectors → `citystream.alerts.v1` + `citystream.rollups.1m.v1`; applies
operator commands from `citystream.alerts.actions.v1`. Per-sensor state lives in two changelog-backed tables,
`sensor_to_state` (hot) and `sensor_to_baseline` (seasonal, when due; see state.py), cached by sensors.py and
written once per sensor per flush; the register topic gives declared ranges and intervals. Web: /healthz, /readyz,
/metrics. Agents judge batches (`take_events`); a batch's outputs are acknowledged before the next batch, and its
readings are acked for commit only once their states are written (`flush_states`). A timer exports the consumer lag
of the readings partitions (`citystream_anomaly_consumer_lag_records`, see lag.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import faust
from faust.streams import _current_event as current_event_var
from pydantic import ValidationError

from schemas.alerts import AlertAction
from schemas.common import Domain
from schemas.readings import READING_MODEL_BY_DOMAIN
from schemas.topics import ALERT_ACTIONS, ALERTS, REGISTER_SENSORS, REJECTED_READINGS, ROLLUPS_1M, readings_topic
from services.anomaly import metrics, wire
from services.anomaly.detectors import DEFAULT_PROFILE, Obs
from services.anomaly.engine import Engine, Outcome
from services.anomaly.lag import BrokerOffsets, ConsumerProgress
from services.anomaly.lifecycle import LifecycleConfig
from services.anomaly.outbox import Outbox
from services.anomaly.recovery import SEEK_FIRST_TABLE_MANAGER
from services.anomaly.register_view import RegisterView
from services.anomaly.sensors import SensorStates
from services.anomaly.settings import AnomalySettings
from services.anomaly.table_keys import tolerant_keys
from services.common.kafka import faust_credentials
from services.common.metrics import metrics_payload
from services.common.production import refuse_development_secrets

log = logging.getLogger(__name__)
settings = AnomalySettings()
refuse_development_secrets(settings, unused={"database_url"})  # the worker has no database
settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust wants its data directory's parent to exist

app = faust.App(
    settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}", broker_credentials=faust_credentials(settings.kafka),
    store=settings.table_store(),
    datadir=str(settings.datadir.resolve()), web_port=settings.web_port, web_host=settings.web_host,
    topic_partitions=4, table_standby_replicas=0, consumer_auto_offset_reset="earliest", producer_acks=-1,
    web_in_thread=False, broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=settings.session_timeout_s / 5,
    # Throughput: the agents take batches (settings.batch_max), so fetch and produce in batches too.
    broker_max_poll_records=settings.batch_max, producer_linger=settings.producer_linger_s,
    producer_max_batch_size=512 * 1024,
    # Stream partitions resume only after the seek to their committed offsets (faust-streaming/faust#596).
    TableManager=SEEK_FIRST_TABLE_MANAGER,
)
# Values are encoded by services/anomaly/state.py (compact JSON / binary); value_type=bytes = raw serializer.
# Keys: sensor ids as JSON strings; a changelog key that does not decode must not stop recovery (table_keys.py).
sensor_to_state = tolerant_keys(app.Table("sensor_to_state", default=None, partitions=4, key_type=str,
                                          value_type=bytes))
sensor_to_baseline = tolerant_keys(app.Table("sensor_to_baseline", default=None, partitions=4, key_type=str,
                                             value_type=bytes))
register = RegisterView()
lifecycle_config = LifecycleConfig(resolve_after_s=settings.resolve_after_s)
engines = {d.value: Engine(d.value, silence_k=settings.silence_k, lifecycle_config=lifecycle_config) for d in Domain}


def bind_event(event: faust.EventT) -> None:
    """Faust tables take a write's partition (changelog and RocksDB) from the current event. A batch writes after
    iterating its events, so each sensor is written in the context of the last event that changed it."""
    current_event_var.set(weakref.ref(event))


states = SensorStates(sensor_to_state, sensor_to_baseline, lambda domain: engines[domain].new_state(), bind_event)


def _topic(name: str) -> faust.TopicT:
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")


alerts_topic, rollups_topic, rejected_topic = _topic(ALERTS), _topic(ROLLUPS_1M), _topic(REJECTED_READINGS)
actions_topic = _topic(ALERT_ACTIONS)
ticks_topic = app.topic(f"{settings.app_id}-ticks", internal=True, partitions=4, key_serializer="raw",
                        value_serializer="raw")
# Outputs go straight to the producer (services/anomaly/outbox.py): Topic.send's per-record overhead was most of
# the worker's time. These topics exist already (the catalogue's, and the ticks topic Faust declares at start).
alerts_topic_name, rollups_topic_name = alerts_topic.get_topic_name(), rollups_topic.get_topic_name()
rejected_topic_name, ticks_topic_name = rejected_topic.get_topic_name(), ticks_topic.get_topic_name()


def publish(outbox: Outbox, sensor_id: str, outcome: Outcome) -> None:
    key = sensor_id.encode()
    for event in outcome.events:
        metrics.ALERT_EVENTS.labels(event.kind.value, event.event_type.value).inc()
        outbox.add(alerts_topic_name, key, wire.dumps(event), wire.headers(ALERTS, event.event_id, settings, event))
    for rollup in outcome.rollups:
        metrics.ROLLUPS.inc()
        outbox.add(rollups_topic_name, key, wire.dumps(rollup), wire.headers(ROLLUPS_1M, None, settings))


def judge_reading(domain: str, event: faust.EventT, outbox: Outbox) -> None:
    message = event.message
    # Judged, rejected or failed alike, nothing is left to do for this offset (Faust's TP is this tuple).
    progress.judged((message.topic, message.partition), message.offset)
    try:
        reading = READING_MODEL_BY_DOMAIN[Domain(domain)].model_validate_json(message.value)
    except (ValueError, ValidationError) as problem:
        metrics.REJECTED.labels(domain).inc()
        rejection = wire.rejection(message.value, problem, domain, message.topic, message.partition, message.offset,
                                   message.timestamp)
        outbox.add(rejected_topic_name, message.key, wire.dumps(rejection),
                   wire.headers(REJECTED_READINGS, rejection.event_id, settings))
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
        states.touch(sensor_id, state, obs.t, event)
        publish(outbox, sensor_id, outcome)


def apply_action(event: faust.EventT, outbox: Outbox) -> None:
    message = event.message
    action = AlertAction.model_validate_json(message.value)
    state = states.get(action.sensor_id, message.partition)
    if state is None:
        log.info("action %s for unknown sensor %s ignored", action.action_id, action.sensor_id)
        return
    outcome = Outcome(events=engines[state["dom"]].apply_action(state, action))
    if outcome.events:
        states.touch(action.sensor_id, state, None, event)
        publish(outbox, action.sensor_id, outcome)


def tick(event: faust.EventT, outbox: Outbox) -> None:
    message = event.message
    sensor_id, now = message.key.decode(), float(message.value)
    state = states.get(sensor_id, message.partition)
    if state is None:
        return
    outcome = engines[state["dom"]].tick(state, sensor_id, now, register.profiles.get(sensor_id, DEFAULT_PROFILE))
    if outcome.events or outcome.rollups:
        states.touch(sensor_id, state, None, event)
        publish(outbox, sensor_id, outcome)


held: list[faust.EventT] = []  # judged events whose acks wait for their sensors' states to be written
last_flush = time.monotonic()


def flush_states() -> None:
    """Write every changed sensor once, then ack the events judged since the last flush.

    The acks are held until then because Faust commits only acked offsets: a committed reading always has its
    state in the changelog, so a restart after `kill -9` never skips a reading whose state was lost."""
    global last_flush
    token = current_event_var.set(None)
    try:
        states.flush()
    finally:
        current_event_var.reset(token)
    events = held[:]
    held.clear()
    for event in events:
        event.ack()
    last_flush = time.monotonic()


async def judge_batch(stage: str, events: list[faust.EventT], handle) -> None:
    """Judge a batch message by message, send the outputs and await their acks; states are written by
    `flush_states` (at most every `flush_interval_s`). One message's failure is logged and the batch carries on."""
    outbox = Outbox()
    token = current_event_var.set(None)
    try:
        for event in events:
            event.message.incref()  # the take loop's ack must not be the last one: flush_states acks
            held.append(event)
            bind_event(event)  # table reads on a cache miss look in this event's partition
            try:
                handle(event, outbox)
            except Exception:  # one sensor's failure must never stall the partition
                m = event.message
                metrics.ERRORS.labels(stage).inc()
                log.exception("%s failed on %s[%s]@%s key %r", stage, m.topic, m.partition, m.offset, m.key)
    finally:
        current_event_var.reset(token)
    await outbox.send(app.producer)
    if time.monotonic() - last_flush >= settings.flush_interval_s:
        flush_states()


async def flush_quiet_states() -> None:
    """Flushes when no batch comes: a quiet stream, or a rebalance or shutdown waiting for every held ack. A plain
    asyncio task, not a Faust timer: Faust stops its timers before the shutdown waits for the acks."""
    while True:
        await asyncio.sleep(settings.flush_interval_s / 4)
        try:
            if held and time.monotonic() - last_flush >= settings.flush_interval_s:
                flush_states()
        except Exception:
            metrics.ERRORS.labels("flush").inc()
            log.exception("flushing sensor states failed; retrying")


background_tasks: set[asyncio.Task] = set()


@app.task
async def start_flushing() -> None:
    task = asyncio.get_running_loop().create_task(flush_quiet_states())
    background_tasks.add(task)  # the loop keeps only a weak reference


def _detect(domain: str):
    def handle(event: faust.EventT, outbox: Outbox) -> None:
        judge_reading(domain, event, outbox)

    async def detect_anomalies(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
            await judge_batch("reading", events, handle)

    detect_anomalies.__name__ = f"detect_anomalies_{domain}"
    return app.agent(_topic(readings_topic(domain)), name=f"detect_anomalies_{domain}")(detect_anomalies)


detect_agents = {d.value: _detect(d.value) for d in Domain}


@app.agent(actions_topic)
async def apply_operator_actions(stream: faust.StreamT) -> None:
    async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
        await judge_batch("action", events, apply_action)


@app.agent(ticks_topic)
async def check_silence(stream: faust.StreamT) -> None:
    """Timer work runs here, on the partition that owns the sensor, so table writes land in its changelog."""
    async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
        await judge_batch("tick", events, tick)


@app.timer(settings.tick_interval_s)
async def find_due_sensors() -> None:
    """Tables cannot be written from a timer, so due sensors get a tick record keyed like their readings."""
    outbox = Outbox()
    queue_due_ticks(time.time(), outbox)
    await outbox.send(app.producer)


def queue_due_ticks(now: float, outbox: Outbox) -> None:
    for sensor_id, raw in list(sensor_to_state.items()):
        try:
            state = states.peek(sensor_id, raw)
            if not state:  # undecodable: skipped
                continue
            if engines[state["dom"]].tick_due(state, now, register.profiles.get(sensor_id, DEFAULT_PROFILE)):
                outbox.add(ticks_topic_name, sensor_id.encode(), repr(now).encode())
        except Exception:  # one sensor's state must not keep every other sensor from being found silent
            metrics.ERRORS.labels(stage="scan").inc()
            log.exception("silence scan failed on sensor %r; the others are still scanned", sensor_id)


readings_topic_names = frozenset(settings.topic(readings_topic(d.value)) for d in Domain)
progress = ConsumerProgress()
broker_offsets = BrokerOffsets(settings.kafka, settings.app_id, settings.lag_interval_s)
lag_series: set[tuple[str, str]] = set()  # (topic, partition) label values currently exported


@app.on_partitions_assigned.connect
async def forget_moved_sensors(app: faust.App, assigned: set, **kwargs) -> None:
    """Cached states of partitions now owned elsewhere are dropped; the rest are re-checked on next use."""
    states.rebalanced(tp.partition for tp in assigned if tp.topic in readings_topic_names)
    progress.assigned()


async def update_consumer_lag() -> None:
    """Lag per assigned readings partition: the broker's log-end offset minus the next offset to judge."""
    assigned = sorted((tp.topic, tp.partition) for tp in app.consumer.assignment()
                      if tp.topic in readings_topic_names)
    lags: dict = {}
    if assigned:
        await broker_offsets.start()  # connecting has its own timeouts; cancelling it midway would leak clients
        ends = await asyncio.wait_for(broker_offsets.end_offsets(assigned), settings.lag_interval_s)
        unjudged = [tp for tp in assigned if tp not in progress.next_offsets]
        resume = (await asyncio.wait_for(broker_offsets.resume_offsets(unjudged), settings.lag_interval_s)
                  if unjudged else {})
        lags = progress.lag(assigned, ends, resume)
    for (topic, partition), lag in lags.items():
        labels = (topic, str(partition))
        metrics.CONSUMER_LAG.labels(*labels).set(lag)
        lag_series.add(labels)
    ours = {(topic, str(partition)) for topic, partition in assigned}
    for labels in lag_series - ours:  # partitions no longer ours export nothing (another worker reports them)
        metrics.CONSUMER_LAG.remove(*labels)
        lag_series.discard(labels)


@app.timer(settings.lag_interval_s)
async def export_consumer_lag() -> None:
    try:
        await update_consumer_lag()
    except Exception:  # a slow broker answer must not stop the timer (nor crash the worker)
        metrics.ERRORS.labels("lag").inc()
        log.warning("consumer lag not updated", exc_info=True)


@app.on_before_shutdown.connect
async def close_offset_clients(app: faust.App, **kwargs) -> None:
    await broker_offsets.stop()


register_follower = register.follower(settings.kafka, settings.topic(REGISTER_SENSORS))


@app.task
async def follow_register() -> None:
    await register_follower.run_forever()


@app.page("/healthz")
async def healthz(web, request):
    return web.json({"status": "ok"})


@app.page("/readyz")
async def readyz(web, request):
    """The readiness contract (services/common/readiness.py): tables recovered from their changelogs, no
    rebalance in progress, the register view caught up."""
    from services.common.readiness import check, readiness

    body, status = readiness({
        "tables": check(app.tables.recovery.completed.is_set(), "recovered", "recovering"),
        "rebalance": check(not app.rebalancing, "settled", "rebalancing"),
        "register": check(register_follower.caught_up.is_set(), "caught_up", "catching_up")})
    return web.json(body, status=status)


@app.page("/metrics")
async def prometheus(web, request):
    payload, content_type = metrics_payload()
    # aiohttp wants the charset apart from the content type; Prometheus reads UTF-8 anyway.
    return web.bytes(payload, content_type=";".join(p for p in content_type.split(";") if "charset" not in p))
