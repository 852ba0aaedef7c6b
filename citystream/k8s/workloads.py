"""The CityStream services as Kubernetes objects: Deployment, Service, PodDisruptionBudget, ServiceMonitor each,
plus the ingest-http HorizontalPodAutoscaler and the migration Job. One table below; `generate.py` renders it."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.access import SERVICE_PRINCIPALS
from schemas.topics import REPLICAS

IMAGE = "citystream:0.1.0"
KAFKA_CLUSTER = "citystream"
KAFKA_BOOTSTRAP = f"{KAFKA_CLUSTER}-kafka-bootstrap:9092"  # Strimzi's bootstrap Service, SCRAM listener
APP_LABEL = "app.kubernetes.io/name"
PART_OF = {"app.kubernetes.io/part-of": "citystream"}


@dataclass(frozen=True)
class ServiceSpec:
    name: str                      # Deployment/Service name suffix, and the key in SERVICE_PRINCIPALS
    command: tuple[str, ...]
    port: int
    prometheus_service: str        # the `service` label the alerts in deploy/prometheus/rules match on
    prometheus_role: str | None
    env: tuple[tuple[str, str], ...] = ()
    database_url_key: str | None = None  # key of the citystream-database Secret this service connects with
    database_env: str = "CITYSTREAM_DATABASE_URL"
    # (environment variable, key of the citystream-database Secret): further database logins, e.g. retention's.
    database_extra_env: tuple[tuple[str, str], ...] = ()
    cpu: str = "250m"
    cpu_limit: str = "1"
    memory: str = "256Mi"
    memory_limit: str = "512Mi"
    replicas: int = 2
    # Faust workers rebuild their tables from changelogs before they are ready: allow up to 10 min to start.
    startup_failures: int = 30
    data_dir_env: str | None = None
    # (environment variable, key of the citystream-tokens Secret): credentials that must not be the local defaults.
    token_env: tuple[tuple[str, str], ...] = ()


# Faust creates its own topics (changelogs, repartition, leader election) with this replication factor. The Strimzi
# cluster's broker-wide min.insync.replicas is 2, so with Faust's default of 1 every acks=all write to them would be
# refused: the Faust services (Kafka-native gate, anomaly worker) replicate them as the catalogue's topics.
FAUST_TOPICS = (("TOPIC_REPLICATION_FACTOR", str(REPLICAS)),)

SERVICES: tuple[ServiceSpec, ...] = (
    # The register also keeps retention (docs/retention.md): hourly, as the citystream_retention role; one pass runs
    # at a time across replicas (a database lock), so every replica may run the task.
    ServiceSpec("register", ("python", "-m", "services.register"), 8081, "register", None,
                env=(("CITYSTREAM_REGISTER_HOST", "0.0.0.0"), ("CITYSTREAM_REGISTER_RETENTION_INTERVAL_S", "3600")),
                database_url_key="app-url",
                database_extra_env=(("CITYSTREAM_REGISTER_RETENTION_DATABASE_URL", "retention-url"),),
                token_env=(("CITYSTREAM_REGISTER_ADMIN_TOKEN", "register-admin-token"),)),
    # The HPA scales ingest-http over pods: their per-sensor rate limits lease from one bucket per sensor in
    # PostgreSQL (services/ingest/leases.py), as the application role, so a sensor keeps one quota across pods.
    ServiceSpec("ingest-http", ("python", "-m", "services.ingest", "http"), 8082, "ingest", "http",
                env=(("CITYSTREAM_INGEST_HTTP_SHARED_QUOTA", "true"),), database_url_key="app-url",
                cpu="500m", cpu_limit="2", memory="384Mi", memory_limit="768Mi"),
    ServiceSpec("ingest-gate", ("python", "-m", "services.ingest", "gate"), 8083, "ingest", "gate",
                env=FAUST_TOPICS, cpu="500m", cpu_limit="2", memory="384Mi", memory_limit="768Mi",
                data_dir_env="CITYSTREAM_INGEST_GATE_DATA_DIR"),
    ServiceSpec("ingest-sink", ("python", "-m", "services.ingest", "sink"), 8084, "ingest", "sink",
                database_url_key="app-url", cpu="500m", cpu_limit="2"),
    ServiceSpec("anomaly", ("python", "-m", "services.anomaly", "worker"), 8085, "anomaly", "worker",
                env=(("CITYSTREAM_ANOMALY_WEB_HOST", "0.0.0.0"), *FAUST_TOPICS), cpu="500m", cpu_limit="2", memory="512Mi",
                memory_limit="1Gi", data_dir_env="CITYSTREAM_ANOMALY_DATA_DIR"),
    ServiceSpec("api", ("python", "-m", "services.api"), 8080, "api", None,
                env=(("CITYSTREAM_API_HOST", "0.0.0.0"),), database_url_key="reader-url",
                database_env="CITYSTREAM_API_DATABASE_URL", token_env=(("CITYSTREAM_API_TOKENS", "api-tokens"),)),
)


def _labels(spec: ServiceSpec) -> dict[str, str]:
    return {APP_LABEL: f"citystream-{spec.name}", **PART_OF}


def _env(spec: ServiceSpec) -> list[dict]:
    principal = SERVICE_PRINCIPALS[spec.name]
    env: list[dict] = [
        {"name": "CITYSTREAM_KAFKA_BOOTSTRAP", "value": KAFKA_BOOTSTRAP},
        {"name": "CITYSTREAM_KAFKA_SECURITY_PROTOCOL", "value": "SASL_PLAINTEXT"},
        {"name": "CITYSTREAM_KAFKA_SASL_MECHANISM", "value": "SCRAM-SHA-512"},
        {"name": "CITYSTREAM_KAFKA_USERNAME", "value": principal},
        # The Strimzi User Operator writes each KafkaUser's password into a Secret named after the user.
        {"name": "CITYSTREAM_KAFKA_PASSWORD",
         "valueFrom": {"secretKeyRef": {"name": principal, "key": "password"}}},
        {"name": "CITYSTREAM_INSTANCE_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if spec.database_url_key:
        env.append({"name": spec.database_env,
                    "valueFrom": {"secretKeyRef": {"name": "citystream-database", "key": spec.database_url_key}}})
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": "citystream-database", "key": key}}}
            for name, key in spec.database_extra_env]
    if spec.data_dir_env:
        env.append({"name": spec.data_dir_env, "value": "/var/lib/citystream"})
    env += [{"name": name, "valueFrom": {"secretKeyRef": {"name": "citystream-tokens", "key": key}}}
            for name, key in spec.token_env]
    env += [{"name": name, "value": value} for name, value in spec.env]
    return env


def _probe(path: str, port: int, period_s: int, failures: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period_s, "timeoutSeconds": 3,
            "failureThreshold": failures}


def deployment(spec: ServiceSpec) -> dict:
    container = {
        "name": spec.name, "image": IMAGE, "command": list(spec.command),
        "ports": [{"name": "http", "containerPort": spec.port}],
        "env": _env(spec),
        "resources": {"requests": {"cpu": spec.cpu, "memory": spec.memory},
                      "limits": {"cpu": spec.cpu_limit, "memory": spec.memory_limit}},
        # /healthz: the process is alive; /readyz: its dependencies answer (docs/deploy.md, "Readiness").
        "startupProbe": _probe("/healthz", spec.port, 10, spec.startup_failures),
        "livenessProbe": _probe("/healthz", spec.port, 10, 3),
        "readinessProbe": _probe("/readyz", spec.port, 5, 2),
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict] = [{"name": "tmp", "emptyDir": {}}]
    if spec.data_dir_env:  # Faust table state: rebuilt from the changelog topics when a pod moves
        container["volumeMounts"].append({"name": "data", "mountPath": "/var/lib/citystream"})
        volumes.append({"name": "data", "emptyDir": {}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": f"citystream-{spec.name}", "labels": _labels(spec)},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": {APP_LABEL: f"citystream-{spec.name}"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": _labels(spec)},
                "spec": {"containers": [container], "volumes": volumes,
                         "terminationGracePeriodSeconds": 30,
                         # Replicas on different nodes and zones where the cluster has them.
                         "topologySpreadConstraints": [{
                             "maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "ScheduleAnyway",
                             "labelSelector": {"matchLabels": {APP_LABEL: f"citystream-{spec.name}"}}}
                             for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone")]},
            },
        },
    }


def service(spec: ServiceSpec) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"citystream-{spec.name}", "labels": _labels(spec)},
            "spec": {"selector": {APP_LABEL: f"citystream-{spec.name}"},
                     "ports": [{"name": "http", "port": spec.port, "targetPort": "http"}]}}


def pod_disruption_budget(spec: ServiceSpec) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": f"citystream-{spec.name}", "labels": _labels(spec)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {APP_LABEL: f"citystream-{spec.name}"}}}}


def service_monitor(spec: ServiceSpec) -> dict:
    # The alert rules match on `job`, `service` and `role` as the local Prometheus config sets them.
    relabelings = [{"action": "replace", "targetLabel": "job", "replacement": f"citystream-{spec.name}"},
                   {"action": "replace", "targetLabel": "service", "replacement": spec.prometheus_service}]
    if spec.prometheus_role:
        relabelings.append({"action": "replace", "targetLabel": "role", "replacement": spec.prometheus_role})
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": f"citystream-{spec.name}", "labels": _labels(spec)},
            "spec": {"selector": {"matchLabels": {APP_LABEL: f"citystream-{spec.name}"}},
                     "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s",
                                    "relabelings": relabelings}]}}


def ingest_autoscaler() -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "citystream-ingest-http", "labels": {APP_LABEL: "citystream-ingest-http",
                                                                      **PART_OF}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": "citystream-ingest-http"},
                     "minReplicas": 2, "maxReplicas": 10,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
                     # Scale in slowly: a sensor fleet reports in waves; flapping would move connections around.
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}}}}


def migration_job() -> dict:
    """`citystream db migrate` against the database owner; the topics come from the KafkaTopic resources, which
    the Strimzi Topic Operator reconciles (so `topics create` is the local runtime's step, not this Job's)."""
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "citystream-migrate", "labels": {APP_LABEL: "citystream-migrate", **PART_OF}},
            "spec": {"backoffLimit": 6, "ttlSecondsAfterFinished": 86400, "template": {
                "metadata": {"labels": {APP_LABEL: "citystream-migrate", **PART_OF}},
                "spec": {"restartPolicy": "OnFailure", "containers": [{
                    "name": "migrate", "image": IMAGE, "command": ["citystream", "db", "migrate"],
                    "env": [{"name": "CITYSTREAM_DATABASE_URL", "valueFrom": {"secretKeyRef": {
                        # CloudNativePG writes the owner's connection URI into <cluster>-app.
                        "name": "citystream-db-app", "key": "uri"}}}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "256Mi"}},
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "allowPrivilegeEscalation": False},
                }]}}}}


def all_objects() -> list[dict]:
    objects: list[dict] = []
    for spec in SERVICES:
        objects += [deployment(spec), service(spec), pod_disruption_budget(spec), service_monitor(spec)]
    return [*objects, ingest_autoscaler(), migration_job()]
