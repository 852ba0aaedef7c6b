"""The local Kafka cluster's configuration, without starting anything: each node's ports and server.properties, the
controller quorum, the replication of internal and catalogue topics, the remembered size of a runtime."""

from __future__ import annotations

import json

import pytest

from citystream.devenv import cluster, kafka
from citystream.devenv.config import CLUSTER_RECORD, DevSettings
from citystream.devenv.process import RuntimeProblem
from schemas.topics import CATALOGUE, fit_replication
from services.common import kafka as common_kafka


def settings(tmp_path, **overrides) -> DevSettings:
    return DevSettings(cache_dir=tmp_path / "cache", state_dir=tmp_path / "state", kafka_port=31092,
                       kafka_controller_port=31093, kafka_anonymous_port=31094, **overrides)


def properties(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_three_nodes_each_get_their_own_ports_and_one_quorum_of_all_three(tmp_path):
    three = settings(tmp_path, kafka_brokers=3)
    assert [three.node_ports(n) for n in three.kafka_nodes] == [(31092, 31093, 31094), (31102, 31103, 31104),
                                                                (31112, 31113, 31114)]
    assert three.kafka_bootstrap == "127.0.0.1:31092,127.0.0.1:31102,127.0.0.1:31112"
    assert three.kafka_anonymous_bootstrap == "127.0.0.1:31094,127.0.0.1:31104,127.0.0.1:31114"
    assert cluster.quorum_voters(three) == "1@127.0.0.1:31093,2@127.0.0.1:31103,3@127.0.0.1:31113"


def test_node_two_listens_on_its_ports_with_sasl_and_the_authorizer(tmp_path):
    three = settings(tmp_path, kafka_brokers=3)
    paths = kafka.KafkaPaths.of(three, 2)
    lines = cluster.server_properties(three, 2, paths.data, kafka._listener_properties(three, 2))
    found = properties(lines)
    assert found["node.id"] == "2"
    assert found["controller.quorum.voters"] == cluster.quorum_voters(three)
    assert found["listeners"] == ("SASL_PLAINTEXT://127.0.0.1:31102,ANONYMOUS://127.0.0.1:31104,"
                                  "CONTROLLER://127.0.0.1:31103")
    assert found["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:31102,ANONYMOUS://127.0.0.1:31104"
    assert found["inter.broker.listener.name"] == "SASL_PLAINTEXT"
    assert found["authorizer.class.name"].endswith("StandardAuthorizer")
    assert found["allow.everyone.if.no.acl.found"] == "false"
    assert found["log.dirs"] == str(tmp_path / "state" / "kafka" / "node-2" / "data")


def test_internal_topics_are_replicated_three_times_with_min_isr_two_on_three_nodes(tmp_path):
    found = properties(cluster.server_properties(settings(tmp_path, kafka_brokers=3), 1, tmp_path, []))
    assert found["offsets.topic.replication.factor"] == "3"
    assert found["transaction.state.log.replication.factor"] == "3"
    assert found["transaction.state.log.min.isr"] == "2"
    assert found["default.replication.factor"] == "3"
    assert found["unclean.leader.election.enable"] == "false"
    # Per topic, never broker-wide: Faust's RF-1 changelogs would refuse every acks=all write.
    assert "min.insync.replicas" not in found


def test_one_node_keeps_the_single_node_runtime_as_it_was(tmp_path):
    one = settings(tmp_path)
    assert one.kafka_brokers == 1 and one.kafka_bootstrap == "127.0.0.1:31092"
    found = properties(cluster.server_properties(one, 1, tmp_path, []))
    assert found["controller.quorum.voters"] == "1@127.0.0.1:31093"
    assert (found["offsets.topic.replication.factor"], found["transaction.state.log.min.isr"]) == ("1", "1")
    paths = kafka.KafkaPaths.of(one, 1)
    assert (paths.home, paths.pid_file, paths.log_file) == (
        tmp_path / "state" / "kafka", tmp_path / "state" / "kafka" / "kafka.pid", tmp_path / "state" / "logs" /
        "kafka.out")


@pytest.mark.parametrize(("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))])
def test_replication_fits_the_cluster_and_leaves_room_for_one_broker_down(brokers, expected):
    assert fit_replication(3, 2, brokers) == expected
    assert all(spec.replication_on(brokers) == expected for spec in CATALOGUE)


def test_the_runtime_remembers_its_size(tmp_path, monkeypatch):
    state = tmp_path / "state"
    (state / CLUSTER_RECORD).parent.mkdir(parents=True)
    (state / CLUSTER_RECORD).write_text(json.dumps({"cluster_id": "x", "brokers": 3}))
    monkeypatch.setenv("CITYSTREAM_DEV_STATE_DIR", str(state))
    assert DevSettings().kafka_brokers == 3, "from the record, through the environment's state dir"
    assert DevSettings(state_dir=state).kafka_brokers == 3
    monkeypatch.setenv("CITYSTREAM_DEV_KAFKA_BROKERS", "1")
    assert DevSettings().kafka_brokers == 1, "an explicit setting wins (and start() then refuses it)"


def test_a_different_size_than_formatted_is_refused_with_the_way_out(tmp_path):
    one = settings(tmp_path)
    meta = kafka.KafkaPaths.of(one, 1).data / "meta.properties"
    meta.parent.mkdir(parents=True)
    meta.write_text("cluster.id=abc\nnode.id=1\nversion=1\n")  # a runtime formatted before clusters existed
    with pytest.raises(RuntimeProblem, match=r"formatted for 1 broker\(s\), not 3.*dev reset"):
        kafka._check_size(settings(tmp_path, kafka_brokers=3))
    kafka._check_size(one)  # its own size passes
    # A new node of a cluster joins with the cluster id its first node was formatted with.
    assert kafka._runtime_cluster_id(settings(tmp_path, kafka_brokers=3)) == "abc"


def test_status_of_a_cluster_lists_each_node_and_is_down_when_none_runs(tmp_path):
    report = kafka.status(settings(tmp_path, kafka_brokers=3))
    assert report["state"] == "down"
    assert [(b["node"], b["state"], b["port"]) for b in report["brokers"]] == [
        (1, "down", 31092), (2, "down", 31102), (3, "down", 31112)]


class FakeAdmin:
    """Records the topics create_topics asks for, on a cluster of `brokers`."""

    def __init__(self, brokers: int) -> None:
        self.brokers, self.asked = brokers, []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def list_topics(self) -> list[str]:
        return []

    async def _get_cluster_metadata(self, topics):
        assert topics == [], "no topic's metadata: brokers only"

        class Metadata:
            def to_object(inner):
                return {"brokers": [{"node_id": n} for n in range(self.brokers)]}

        return Metadata()

    async def create_topics(self, topics):
        self.asked = topics

        class Response:
            def to_object(inner):
                return {"topic_errors": [{"topic": t.name, "error_code": 0} for t in topics]}

        return Response()


@pytest.mark.parametrize(("brokers", "replicas", "min_isr"), [(1, 1, "1"), (3, 3, "2")])
async def test_create_topics_replicates_as_the_catalogue_asks_and_the_cluster_allows(monkeypatch, brokers,
                                                                                    replicas, min_isr):
    fake = FakeAdmin(brokers)
    monkeypatch.setattr(common_kafka, "make_admin", lambda *a, **k: fake)
    created = await common_kafka.create_topics("127.0.0.1:1", prefix="p.")
    assert created == [f"p.{spec.name}" for spec in CATALOGUE]
    assert {(t.replication_factor, t.topic_configs["min.insync.replicas"]) for t in fake.asked} == {(replicas,
                                                                                                    min_isr)}
    assert all(t.topic_configs["cleanup.policy"] == spec.cleanup_policy for t, spec in zip(fake.asked, CATALOGUE))


def test_dev_up_brokers_starts_the_cluster_size_asked_for(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from citystream import dev_cli

    seen: list[int] = []

    class Recording:
        def status(self, settings) -> dict:
            return {"state": "down"}

        def start(self, settings) -> str:
            seen.append(settings.kafka_brokers)
            return "started"

        def stop(self, settings) -> str:
            return "stopped"

    monkeypatch.setenv("CITYSTREAM_DEV_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(dev_cli, "COMPONENTS", {"kafka": Recording(), "timescaledb": Recording()})
    result = CliRunner().invoke(dev_cli.app, ["up", "--brokers", "3"])
    assert result.exit_code == 0, result.output
    assert seen == [3, 3]
    assert "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112" in result.output
    assert CliRunner().invoke(dev_cli.app, ["up", "--brokers", "9"]).exit_code == 2, "at most five nodes"


@pytest.mark.parametrize(("brokers", "factor"), [(1, "1"), (3, "3")])
def test_citystream_run_replicates_faust_topics_on_a_cluster(tmp_path, monkeypatch, brokers, factor):
    from citystream import run

    monkeypatch.delenv("TOPIC_REPLICATION_FACTOR", raising=False)
    env = run.Platform(settings(tmp_path, kafka_brokers=brokers)).service_env()
    assert env["TOPIC_REPLICATION_FACTOR"] == factor
    assert env["CITYSTREAM_KAFKA_BOOTSTRAP"] == settings(tmp_path, kafka_brokers=brokers).kafka_bootstrap


def test_the_offsets_topic_keeps_its_own_settings_when_its_min_isr_is_set():
    from citystream.devenv import offsets

    class Described:
        def to_object(self):
            entries = [("cleanup.policy", "compact", 1), ("segment.bytes", "104857600", 1),
                       ("min.insync.replicas", "1", 5), ("retention.ms", "604800000", 5)]
            return {"resources": [{"config_entries": [
                {"config_names": name, "config_value": value, "config_source": source}
                for name, value, source in entries]}]}

    # AlterConfigs replaces all of a topic's own settings: the ones it has must be sent back, defaults not.
    assert offsets._own_settings([Described()]) == {"cleanup.policy": "compact", "segment.bytes": "104857600"}
