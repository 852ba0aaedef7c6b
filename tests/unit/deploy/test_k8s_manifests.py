"""Every Kubernetes overlay renders with kustomize, and each object validates against the Kubernetes JSON schemas
(kubernetes-validate) or a vendored operator CRD schema; topics and ACLs in the manifests are the catalogue's and the
access policy's; every service has its probes, resources, disruption budget and scrape config."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from citystream.k8s.generate import DASHBOARDS_DIR, MIN_IN_SYNC_REPLICAS, REPLICAS, RULES_DIR, drifted
from citystream.k8s.workloads import SERVICES
from schemas.access import SERVICE_PRINCIPALS, grants
from schemas.topics import CATALOGUE, RAW_READINGS

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.32.0"  # the oldest minor still supported upstream when this was written
CRD_SCHEMAS = {"KafkaTopic": "kafkatopic.kafka.strimzi.io.yaml", "KafkaUser": "kafkauser.kafka.strimzi.io.yaml",
               "PrometheusRule": "prometheusrule.monitoring.coreos.com.yaml"}
# Operator kinds whose CRD schema is not vendored (their CRDs are 300-400 kB each): checked by the structural
# tests below only. A kind outside both lists fails the validation test.
NOT_VENDORED = {"Kafka", "KafkaNodePool", "Cluster", "ServiceMonitor"}


def strict(schema: dict) -> dict:
    """The API server's strict field validation: an object schema without preserve-unknown-fields refuses
    unknown fields (openAPIV3Schema would prune them silently)."""
    schema = copy.deepcopy(schema)

    def visit(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


CRD_VALIDATORS = {kind: jsonschema.Draft7Validator(strict(yaml.safe_load((K8S / "schemas" / name).read_text())))
                  for kind, name in CRD_SCHEMAS.items()}


@pytest.fixture(scope="session")
def kustomize() -> Path:
    """kustomize from deploy/k8s/install-kustomize.sh (cached in the environment's bin; a no-op when present)."""
    bin_dir = Path(sys.prefix) / "bin"
    subprocess.run(["bash", str(K8S / "install-kustomize.sh")], check=True,
                   env={**os.environ, "KUSTOMIZE_BIN_DIR": str(bin_dir)})
    return bin_dir / "kustomize"


@pytest.fixture(scope="session")
def rendered(kustomize) -> dict[str, list[dict]]:
    return {overlay: [doc for doc in yaml.safe_load_all(subprocess.run(
        [str(kustomize), "build", str(K8S / "overlays" / overlay)], check=True, capture_output=True,
        text=True).stdout) if doc]
        for overlay in OVERLAYS}


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def validation_errors(obj: dict) -> list[str]:
    """Errors of one object against its schema; raises LookupError when no schema covers its kind."""
    if obj["kind"] in CRD_VALIDATORS:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in CRD_VALIDATORS[obj["kind"]].iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError as missing:
        raise LookupError(obj["kind"]) from missing
    except kubernetes_validate.ValidationError as invalid:
        return [str(invalid)]
    return []


def test_generated_manifests_are_current():
    assert drifted() == [], "run `citystream k8s generate`"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(rendered, overlay):
    problems, unchecked = {}, set()
    for obj in rendered[overlay]:
        try:
            errors = validation_errors(obj)
        except LookupError:
            unchecked.add(obj["kind"])
            continue
        if errors:
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert problems == {}
    assert unchecked <= NOT_VENDORED, f"no schema for {unchecked - NOT_VENDORED}"
    assert len(rendered[overlay]) > 40


def test_the_validators_refuse_what_the_api_server_would():
    bad_user = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser", "metadata": {"name": "x"},
                "spec": {"authorization": {"type": "simple", "acls": [
                    {"resource": {"type": "topic", "name": "t", "patternType": "prefixed"},
                     "operations": ["Read"]}]}}}
    assert any("prefixed" in e for e in validation_errors(bad_user))
    bad_topic = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": {"name": "t"},
                 "spec": {"partitions": 0, "replica": 3}}
    assert len(validation_errors(bad_topic)) == 2  # partitions below 1, and the misspelt field
    bad_pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "x"},
               "spec": {"maxUnavailable": 1, "selectr": {}}}
    assert validation_errors(bad_pdb)


def expected_topics() -> dict[str, tuple[int, int, dict]]:
    topics = {}
    for spec in CATALOGUE:
        config = {"cleanup.policy": spec.cleanup_policy, "min.insync.replicas": 2}
        if spec.cleanup_policy == "delete":
            config["retention.ms"] = spec.retention_ms
        topics[spec.name] = (spec.partitions, 3, config)
    return topics


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_are_the_catalogue(rendered, overlay):
    topics = of_kind(rendered[overlay], "KafkaTopic").values()
    assert {t["spec"]["topicName"]: (t["spec"]["partitions"], t["spec"]["replicas"], t["spec"]["config"])
            for t in topics} == expected_topics()
    assert (REPLICAS, MIN_IN_SYNC_REPLICAS) == (3, 2)
    assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {"citystream"}


def _acl_set(users: dict[str, dict]) -> set[tuple]:
    return {(name, acl["resource"]["type"], acl["resource"].get("name"), acl["resource"].get("patternType"),
             frozenset(acl["operations"]))
            for name, user in users.items() for acl in user["spec"]["authorization"]["acls"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_users_carry_exactly_the_access_policy(rendered, overlay):
    users = of_kind(rendered[overlay], "KafkaUser")
    resource_type = {"topic": "topic", "group": "group", "transactional-id": "transactionalId"}
    pattern = {"literal": "literal", "prefixed": "prefix"}
    assert _acl_set(users) == {(g.principal, resource_type[g.resource], g.name, pattern[g.pattern],
                                frozenset(g.operations)) for g in grants()}
    assert set(users) == set(SERVICE_PRINCIPALS.values())
    for user in users.values():
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"


def test_policy_each_topic_has_its_catalogue_writer_only():
    principals_by_role = {"register": {"citystream-register"}, "anomaly": {"citystream-anomaly"},
                          "api": {"citystream-api"}, "ingest": {"citystream-gate", "citystream-ingest-http"}}
    policy = grants(city_systems=("city-traffic-control",))
    for spec in CATALOGUE:
        writers = {g.principal for g in policy
                   if g.resource == "topic" and g.name == spec.name and "Write" in g.operations}
        expected = {"city-traffic-control"} if spec.name == RAW_READINGS else principals_by_role[spec.writer]
        assert writers == expected, spec.name
    assert [(g.name, g.operations) for g in policy if g.principal == "city-traffic-control"] == \
        [(RAW_READINGS, ("Write", "Describe"))]


def test_policy_raw_topic_is_read_by_the_gate_only_and_prefixes_apply():
    readers = {g.principal for g in grants() if g.name == RAW_READINGS and "Read" in g.operations}
    assert readers == {"citystream-gate"}
    prefixed = grants(topic_prefix="test.")
    assert all(g.name.startswith("test.") for g in prefixed)
    anomaly_internal = {(g.resource, g.name) for g in prefixed
                        if g.principal == "citystream-anomaly" and g.pattern == "prefixed"}
    assert anomaly_internal == {("topic", "test.citystream-anomaly"), ("group", "test.citystream-anomaly")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_probes_resources_budget_and_scrape_config(rendered, overlay):
    objects = rendered[overlay]
    deployments, budgets = of_kind(objects, "Deployment"), of_kind(objects, "PodDisruptionBudget")
    services, monitors = of_kind(objects, "Service"), of_kind(objects, "ServiceMonitor")
    names = {f"citystream-{spec.name}" for spec in SERVICES}
    assert set(deployments) == set(budgets) == set(services) == set(monitors) == names
    for name, deployment in deployments.items():
        container, = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert set(container["resources"]) == {"requests", "limits"}
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        for selector in (budgets[name]["spec"]["selector"]["matchLabels"], services[name]["spec"]["selector"]):
            assert selector.items() <= pod_labels.items()
        assert monitors[name]["spec"]["endpoints"][0]["path"] == "/metrics"
    autoscaler, = of_kind(objects, "HorizontalPodAutoscaler").values()
    assert autoscaler["spec"]["scaleTargetRef"]["name"] == "citystream-ingest-http"
    assert "citystream-migrate" in of_kind(objects, "Job")


def test_production_runs_replicated_kafka_and_database(rendered):
    objects = rendered["production"]
    pool, = of_kind(objects, "KafkaNodePool").values()
    kafka, = of_kind(objects, "Kafka").values()
    database, = of_kind(objects, "Cluster").values()
    assert pool["spec"]["replicas"] == 3 and set(pool["spec"]["roles"]) == {"controller", "broker"}
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    assert kafka["spec"]["kafka"]["authorization"] == {"type": "simple"}
    assert database["spec"]["instances"] == 3
    assert database["spec"]["postgresql"]["shared_preload_libraries"] == ["timescaledb"]
    assert {d["spec"]["replicas"] for d in of_kind(objects, "Deployment").values()} == {3}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"citystream"}
    assert of_kind(rendered["dev"], "Cluster")["citystream-db"]["spec"]["instances"] == 1


def test_prometheus_rule_and_dashboards_are_the_committed_files(rendered):
    objects = rendered["production"]
    rule, = of_kind(objects, "PrometheusRule").values()
    assert rule["spec"]["groups"] == [group for name in ("recording.yml", "alerts.yml")
                                      for group in yaml.safe_load((RULES_DIR / name).read_text())["groups"]]
    dashboards = {key: json.loads(text) for cm in of_kind(objects, "ConfigMap").values()
                  if cm["metadata"]["labels"].get("grafana_dashboard") == "1" for key, text in cm["data"].items()}
    assert dashboards == {p.name: json.loads(p.read_text()) for p in DASHBOARDS_DIR.glob("*.json")}


def test_deploy_doc_names_every_alert_and_the_bench_run_it_sizes_from():
    doc = (REPO / "docs" / "deploy.md").read_text()
    alerts = [rule["alert"] for group in yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
              for rule in group["rules"] if "alert" in rule]
    assert [name for name in alerts if f"`{name}`" not in doc] == []
    run = doc.split("From the benchmark run `", 1)[1].split("`", 1)[0]
    assert (REPO / run).is_file()
