"""The Faust worker: readings → detectors → `citystream.alerts.v1` + `citystream.rollups.1m.v1`; applies
operator commands from `citystream.alerts.actions.v1`. Per-sensor state lives in two changelog-backed tables,
`sensor_to_state` (hot) and `sensor_to_baseline` (seasonal, when due; see state.py), cached by sensors.py and
written once per sensor per flush; the register topic gives declared ranges and intervals. Web: /healthz, /readyz,
/metrics.

The readings topics are judged in batches by `readings_loop` (a plain aiokafka fetch inside this app; Faust's
per-message stream cost ~45 % of the worker's CPU): they stay in Faust's consumer group, so assignment and table
recovery are Faust's, but Faust's fetcher leaves them to that loop (`ReadingsAsideConsumer`). Silence ticks and
operator actions stay Faust agents. Every output goes through the worker's idempotent producer; a state reaches the
changelog before the offsets of the readings (and the acks of the ticks and actions) that changed it
(readings_loop.Checkpoint). A timer exports the consumer lag of the readings partitions
(`citystream_anomaly_consumer_lag_records`, see lag.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref

import faust
from faust.serializers import codecs
from faust.streams import _current_event as current_event_var
from faust.transport.drivers.aiokafka import Consumer as FaustKafkaConsumer
from faust.types import TP

from schemas.alerts import AlertAction
from schemas.common import Domain
from schemas.topics import ALERT_ACTIONS, ALERTS, REGISTER_SENSORS, REJECTED_READINGS, ROLLUPS_1M, readings_topic
from services.anomaly import metrics
from services.anomaly.detectors import DEFAULT_PROFILE
from services.anomaly.engine import Engine, Outcome
from services.anomaly.health import Health
from services.anomaly.judge import BatchJudge, Outputs, Tally
from services.anomaly.lag import BrokerOffsets, ConsumerProgress
from services.anomaly.lifecycle import LifecycleConfig
from services.anomaly.outbox import Outbox, SendFailed
from services.anomaly.readings_loop import Checkpoint, ReadingsLoop, readings_partitions
from services.anomaly.recovery import SEEK_FIRST_TABLE_MANAGER
from services.anomaly.register_view import RegisterView
from services.anomaly.sensors import SensorStates
from services.anomaly.settings import AnomalySettings
from services.anomaly.table_keys import SENSOR_ID_KEYS, tolerant_keys
from services.common.collector import settle_when_ready
from services.common.kafka import faust_credentials, make_consumer, make_producer
from services.common.metrics import metrics_payload
from services.common.production import refuse_development_secrets
from services.common.readiness import check, readiness

log = logging.getLogger(__name__)
settings = AnomalySettings()
refuse_development_secrets(settings, unused={"database_url"})  # the worker has no database
settings.datadir.mkdir(parents=True, exist_ok=True)  # Faust wants its data directory's parent to exist
readings_topic_names = frozenset(settings.topic(readings_topic(d.value)) for d in Domain)


class ReadingsAsideConsumer(FaustKafkaConsumer):
    """Faust's Kafka consumer, except that its fetcher never asks for the readings partitions: they stay assigned
    to this member (so tables and recovery follow them) and `readings_loop` fetches them in batches."""

    async def _getmany(self, active_partitions, timeout: float):
        if active_partitions is not None:
            active_partitions = {tp for tp in active_partitions if tp.topic not in readings_topic_names}
            if not active_partitions:  # an empty set would fetch every partition
                await asyncio.sleep(timeout)
                return {}
        return await super()._getmany(active_partitions, timeout)


class WorkerApp(faust.App):
    def _new_consumer(self):
        self.transport.Consumer = ReadingsAsideConsumer
        return super()._new_consumer()


app = WorkerApp(
    settings.app_id, broker=f"kafka://{settings.kafka_bootstrap}", broker_credentials=faust_credentials(settings.kafka),
    store=settings.table_store(),
    datadir=str(settings.datadir.resolve()), web_port=settings.web_port, web_host=settings.web_host,
    topic_partitions=4, table_standby_replicas=settings.standby_replicas, consumer_auto_offset_reset="earliest", producer_acks=-1,
    web_in_thread=False, broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=settings.session_timeout_s / 5,
    broker_max_poll_records=settings.batch_max,
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
health = Health()


def bind_event(event) -> None:
    """Faust tables take a write's partition (RocksDB) and a cache miss's partition from the current event: a
    Faust event of the ticks or actions topic, or a `PartitionSource` of a readings partition (None: unbound)."""
    current_event_var.set(None if event is None else weakref.ref(event))


class PartitionSource:
    """Stands in for a Faust event of a readings partition: what the tables read of it is `message.partition`."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _PartitionMessage(topic, partition)


class _PartitionMessage:
    __slots__ = ("partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition


_sources: dict[tuple[str, int], PartitionSource] = {}


def source_for(topic: str, partition: int) -> PartitionSource:
    found = _sources.get((topic, partition))
    if found is None:
        found = _sources[topic, partition] = PartitionSource(topic, partition)
    return found


states = SensorStates(sensor_to_state, sensor_to_baseline, lambda domain: engines[domain].new_state(), bind_event)


def _topic(name: str) -> faust.TopicT:
    return app.topic(settings.topic(name), key_serializer="raw", value_serializer="raw")


alerts_topic, rollups_topic, rejected_topic = _topic(ALERTS), _topic(ROLLUPS_1M), _topic(REJECTED_READINGS)
actions_topic = _topic(ALERT_ACTIONS)
ticks_topic = app.topic(f"{settings.app_id}-ticks", internal=True, partitions=4, key_serializer="raw",
                        value_serializer="raw")
# The readings topics are subscribed by the group (so Faust assigns them with the tables) but no agent reads them.
for _domain in Domain:
    app.topics.add(_topic(readings_topic(_domain.value)))
# Outputs go straight to the worker's producer (services/anomaly/outbox.py). These topics exist already (the
# catalogue's, and the ticks topic Faust declares at start).
alerts_topic_name, rollups_topic_name = alerts_topic.get_topic_name(), rollups_topic.get_topic_name()
rejected_topic_name, ticks_topic_name = rejected_topic.get_topic_name(), ticks_topic.get_topic_name()
outputs = Outputs(alerts=alerts_topic_name, rollups=rollups_topic_name, rejected=rejected_topic_name,
                  settings=settings)
judge = BatchJudge(engines, states, register.profiles, outputs, source_for)


class WorkerProducer:
    """The worker's idempotent producer (acks=all), started on first use: aiokafka wants the running loop."""

    def __init__(self) -> None:
        self.producer = None
        self.lock = asyncio.Lock()

    async def __call__(self):
        if self.producer is None:
            async with self.lock:
                if self.producer is None:
                    producer = make_producer(settings.kafka, f"{settings.app_id}-worker",
                                             linger_ms=int(settings.producer_linger_s * 1000))
                    await producer.start()
                    self.producer = producer
        return self.producer

    async def stop(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await producer.stop()


producer = WorkerProducer()


class ChangelogTables:
    """Sensor states straight to the tables' changelog topics through the worker's producer (partition = the
    readings partition of the sensor), and into the local table stores once acknowledged; a local RocksDB record
    is never newer than the changelog.

    Each store then records the last changelog offset it holds (what Faust does for the writes it makes itself),
    so a restarted worker's recovery reads the changelog from there, not from where its previous recovery ended:
    without it a worker that ran a day replayed a day of state writes before judging again."""

    def records(self, drained, outbox: Outbox) -> None:
        hot_topic = sensor_to_state.changelog_topic.get_topic_name()
        seasonal_topic = sensor_to_baseline.changelog_topic.get_topic_name()
        for sensor_id, hot, seasonal, source in drained:
            key, partition = _changelog_key(sensor_id), source.message.partition
            outbox.add(hot_topic, key, hot, partition=partition)
            if seasonal is not None:
                outbox.add(seasonal_topic, key, seasonal, partition=partition)

    def apply(self, drained, acked: dict[tuple[str, int], int]) -> None:
        hot_store, seasonal_store = sensor_to_state.data, sensor_to_baseline.data
        try:
            for sensor_id, hot, seasonal, source in drained:
                bind_event(source)  # RocksDB stores a key in its partition's database
                hot_store[sensor_id] = hot
                if seasonal is not None:
                    seasonal_store[sensor_id] = seasonal
        finally:
            bind_event(None)
        stores = {sensor_to_state.changelog_topic.get_topic_name(): hot_store,
                  sensor_to_baseline.changelog_topic.get_topic_name(): seasonal_store}
        for (topic, partition), offset in acked.items():
            store = stores.get(topic)
            if store is not None:  # after the values: a crash in between only replays them
                store.set_persisted_offset(TP(topic, partition), offset)


def _changelog_key(sensor_id: str) -> bytes:
    return codecs.dumps(SENSOR_ID_KEYS, sensor_id)  # as the tables' changelogs key it (table_keys.py)


class FaustGroup:
    """The loop's view of Faust's consumer group."""

    def ready_assignment(self):
        if not app.tables.recovery.completed.is_set() or app.rebalancing:
            return None
        return readings_partitions(app.consumer.assignment(), readings_topic_names)

    async def commit(self, offsets) -> None:
        # Through the group's member: the broker refuses a commit of a generation that is over.
        if not await app.consumer._commit({TP(topic, partition): offset
                                           for (topic, partition), offset in offsets.items()}):
            log.warning("readings offsets not committed (rebalanced meanwhile); their next owner judges them "
                        "against the states written before: %s", offsets)

    async def resume_offsets(self, partitions):
        return await broker_offsets.resume_offsets(partitions)


progress = ConsumerProgress()
broker_offsets = BrokerOffsets(settings.kafka, settings.app_id, settings.lag_interval_s)
checkpoint = Checkpoint(states, ChangelogTables(), FaustGroup(), health, producer, settings.flush_interval_s)
TAKE_WAIT_MS = max(1, int(settings.batch_within_s * 1000))


def apply_action(event: faust.EventT, outbox: Outbox, tally: Tally) -> None:
    message = event.message
    action = AlertAction.model_validate_json(message.value)
    state = states.get(action.sensor_id, message.partition)
    if state is None:
        log.info("action %s for unknown sensor %s ignored", action.action_id, action.sensor_id)
        return
    outcome = Outcome(events=engines[state["dom"]].apply_action(state, action))
    if outcome.events:
        states.touch(action.sensor_id, state, None, event)
        judge.publish(outbox, action.sensor_id, outcome, tally)


def tick(event: faust.EventT, outbox: Outbox, tally: Tally) -> None:
    message = event.message
    sensor_id, now = message.key.decode(), float(message.value)
    state = states.get(sensor_id, message.partition)
    if state is None:
        return
    outcome = engines[state["dom"]].tick(state, sensor_id, now, register.profiles.get(sensor_id, DEFAULT_PROFILE))
    if outcome.events or outcome.rollups:
        states.touch(sensor_id, state, None, event)
        judge.publish(outbox, sensor_id, outcome, tally)


async def judge_events(stage: str, events: list[faust.EventT], handle) -> None:
    """Judge a batch of ticks or actions and await its outputs' acks; the events are acked by the next flush
    (after their states are written). One message's failure is logged and the batch carries on."""
    outbox, tally = Outbox(), Tally()
    async with checkpoint.lock:
        if health.refused:
            return  # never acked: not committed, read again after a restart
        the_producer = await producer()
        try:
            for event in events:
                event.message.incref()  # the take loop's ack must not be the last one: the flush acks
                bind_event(event)  # table reads on a cache miss look in this event's partition
                try:
                    handle(event, outbox, tally)
                except Exception:  # one sensor's failure must never stall the partition
                    m = event.message
                    tally.errors[stage] += 1
                    log.exception("%s failed on %s[%s]@%s key %r", stage, m.topic, m.partition, m.offset, m.key)
        finally:
            bind_event(None)
        try:
            await outbox.send(the_producer)
        except SendFailed as problem:
            health.refuse(f"{stage} outputs refused: {problem}")
            return
        finally:
            tally.export()
        checkpoint.held.extend(events)


@app.agent(actions_topic)
async def apply_operator_actions(stream: faust.StreamT) -> None:
    async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
        await judge_events("action", events, apply_action)


@app.agent(ticks_topic)
async def check_silence(stream: faust.StreamT) -> None:
    """Timer work runs here, on the partition that owns the sensor, so table writes land in its changelog."""
    async for events in stream.take_events(settings.batch_max, within=settings.batch_within_s):
        await judge_events("tick", events, tick)


@app.timer(settings.tick_interval_s)
async def find_due_sensors() -> None:
    """Tables cannot be written from a timer, so due sensors get a tick record keyed like their readings."""
    outbox = Outbox()
    queue_due_ticks(time.time(), outbox)
    try:
        await outbox.send(await producer())
    except SendFailed as problem:  # a lost tick is found due again by the next scan: nothing to stop for
        log.warning("silence ticks not sent: %s", problem)


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


background_tasks: set[asyncio.Task] = set()
loop_holder: dict[str, ReadingsLoop] = {}


@app.task
async def judge_readings() -> None:
    """The readings hot path (readings_loop), with the flusher that writes states when no batch comes (a plain
    asyncio task, not a Faust timer: Faust stops its timers before a shutdown waits for the held acks)."""
    log.info("judging readings on event loop %s", type(asyncio.get_running_loop()).__module__)
    flusher = asyncio.get_running_loop().create_task(checkpoint.flush_when_quiet())
    background_tasks.add(flusher)  # the loop keeps only a weak reference
    settling = asyncio.get_running_loop().create_task(settle_when_ready(None), name="gc-settle")
    background_tasks.add(settling)
    reader = make_consumer(settings.kafka, None, client_id=f"{settings.app_id}-readings",
                           max_poll_records=settings.batch_max)
    await reader.start()
    loop = loop_holder["loop"] = ReadingsLoop(
        reader, FaustGroup(), judge, checkpoint, health, producer, progress,
        {settings.topic(readings_topic(d.value)): d.value for d in Domain},
        take_max=settings.batch_max, take_wait_ms=TAKE_WAIT_MS)
    try:
        await loop.run()
    finally:
        await reader.stop()


@app.on_partitions_revoked.connect
async def finish_revoked_readings(app: faust.App, revoked: set, **kwargs) -> None:
    loop = loop_holder.get("loop")
    if loop is not None:
        await loop.revoked()


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
    try:  # what is judged is written and committed: a restart reads less again
        async with checkpoint.lock:
            await checkpoint.flush()
    except Exception:
        log.warning("last flush at shutdown failed; the uncommitted readings are judged again after a restart",
                    exc_info=True)
    await producer.stop()
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
    rebalance in progress, the register view caught up, and no output refused by the broker (a refused output stops
    the commits: services/anomaly/health.py)."""
    body, status = readiness({
        "tables": check(app.tables.recovery.completed.is_set(), "recovered", "recovering"),
        "rebalance": check(not app.rebalancing, "settled", "rebalancing"),
        "register": check(register_follower.caught_up.is_set(), "caught_up", "catching_up"),
        "committing": check(health.refused is None, "committing", "output_refused")})
    return web.json(body, status=status)


@app.page("/metrics")
async def prometheus(web, request):
    payload, content_type = metrics_payload()
    # aiohttp wants the charset apart from the content type; Prometheus reads UTF-8 anyway.
    return web.bytes(payload, content_type=";".join(p for p in content_type.split(";") if "charset" not in p))
