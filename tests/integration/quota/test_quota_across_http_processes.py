"""A sensor's quota holds across two ingest-http processes sharing one port (SO_REUSEPORT) when they share it
through PostgreSQL (CITYSTREAM_INGEST_HTTP_SHARED_QUOTA): readings of a 60/min sensor sent one per fresh
connection, so the kernel spreads them over both processes, are admitted at most one quota (plus the refill while
they are sent) and less at most one unspent lease per process. The control runs the same two processes without the
setting: each then grants its own quota, and the same bound fails."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
import pytest

from citystream.bench.fleet import BenchFleet, register_fleet
from citystream.bench.processes import Service, platform_services
from citystream.simulate.clients import RegisterClient
from citystream.simulate.settings import SimulateSettings
from schemas.common import Domain
from services.common.kafka import create_topics
from services.common.roles import APP_ROLE, with_role
from services.ingest.leases import lease_size
from tests.conftest import BROKERS_USED, HANDED_OUT_PREFIXES
from tests.integration.scaleout.harness import wait_shared_port_ready

QUOTA_PER_MINUTE = 60  # one token a second, a minute's allowance of 60
SENT = 150  # readings, one request and one fresh connection each: well over one quota, under two
MEMBERS = 2


@dataclass
class TwoOnOnePort:
    services: dict[str, Service]
    register_url: str

    @property
    def members(self) -> list[Service]:
        return [s for s in self.services.values() if s.role == "ingest-http"]

    def restart_members(self, shared_quota: bool) -> None:
        for member in self.members:
            member.stop()
            member.env["CITYSTREAM_INGEST_HTTP_SHARED_QUOTA"] = "true" if shared_quota else "false"
            member.start()
        for member in self.members:
            member.wait_ready(120)
        wait_shared_port_ready(self.members)

    async def declare(self, prefix: str) -> BenchFleet:
        register = RegisterClient(self.register_url, SimulateSettings().admin_token.get_secret_value())
        try:
            return await register_fleet(register, prefix, 1, Domain.TRAFFIC, rate_limit_per_minute=QUOTA_PER_MINUTE)
        finally:
            await register.close()


@pytest.fixture
def two_on_one_port(infrastructure, fresh_database_url, tmp_path) -> Iterator[TwoOnOnePort]:
    kafka = infrastructure.kafka
    BROKERS_USED.add(kafka)
    run_id = f"q{uuid.uuid4().hex[:8]}"
    prefix = f"test.{run_id}."
    HANDED_OUT_PREFIXES.add(prefix)
    services = platform_services(bootstrap=kafka.bootstrap, database_url=fresh_database_url, topic_prefix=prefix,
                                 run_id=run_id, logs_dir=tmp_path / "logs", roles=("register", "ingest-http"),
                                 instances={"ingest-http": MEMBERS}, shared_http_port=True)
    for service in services.values():
        service.env.update(kafka.environment())
        if service.role == "ingest-http":  # as deployed: the application role, under migration 0800's grants
            service.env["CITYSTREAM_DATABASE_URL"] = with_role(fresh_database_url, APP_ROLE)
            service.env["CITYSTREAM_INGEST_HTTP_SHARED_QUOTA"] = "true"
    platform = TwoOnOnePort(services, services["register"].url)
    try:
        asyncio.run(create_topics(kafka, prefix=prefix))
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready(120)
        wait_shared_port_ready(platform.members)
        yield platform
    finally:
        for service in services.values():
            service.stop()


def wait_all_know(members: list[Service], sensors: int, timeout_s: float = 60) -> None:
    """Fresh connections (spread over the processes) all see `sensors` sensors in their register view."""
    port = members[0].port
    deadline = time.monotonic() + timeout_s
    in_a_row = 0
    while in_a_row < 16:
        assert time.monotonic() < deadline, "the ingest-http processes never all learned the quota sensor"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            detail = json.loads(connection.getresponse().read())["checks"]["register"]["detail"]
        finally:
            connection.close()
        known = int(detail.split()[0]) if detail.endswith(" sensors") else 0
        in_a_row = in_a_row + 1 if known >= sensors else 0
        time.sleep(0.02 if known >= sensors else 0.3)


def serving_member(members: list[Service], client_port: int) -> str:
    """The process holding the server side of the connection from `client_port` (answered, not yet closed)."""
    for member in members:
        if any(c.raddr and c.raddr.port == client_port and c.laddr.port == member.port
               for c in psutil.Process(member.process.pid).net_connections(kind="tcp")):
            return member.name
    raise AssertionError(f"no ingest-http process holds the connection from port {client_port}")


@dataclass
class Sent:
    statuses: Counter
    served_by: Counter
    admitted_by: Counter
    seconds: float

    @property
    def admitted(self) -> int:
        return self.statuses[200]

    def figures(self) -> dict:
        return {"sent": SENT, "admitted": self.admitted, "statuses": dict(self.statuses),
                "served_by": dict(self.served_by), "admitted_by": dict(self.admitted_by),
                "seconds": round(self.seconds, 1), "ceiling": round(ceiling(self.seconds), 1)}


def send_one_per_connection(members: list[Service], fleet: BenchFleet) -> Sent:
    """SENT readings of the fleet's one sensor, each in its own request on its own connection."""
    port = members[0].port
    statuses, served_by, admitted_by = Counter(), Counter(), Counter()
    started = time.monotonic()
    for seq in range(1, SENT + 1):
        credential, payloads, _, _ = fleet.next_batch(1, 0)
        body = json.dumps({"readings": payloads})
        for _ in range(20):  # a 401 only while a process has not yet seen the credential (nothing is gated)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.connect()
                client_port = connection.sock.getsockname()[1]
                connection.request("POST", "/v1/readings", body, {"Authorization": f"Bearer {credential}",
                                                                   "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                member = serving_member(members, client_port)
            finally:
                connection.close()
            if response.status != 401:
                break
            time.sleep(0.2)
        assert response.status in (200, 429), (seq, response.status)
        statuses[response.status] += 1
        served_by[member] += 1
        admitted_by[member] += response.status == 200
    return Sent(statuses, served_by, admitted_by, time.monotonic() - started)


def ceiling(seconds: float) -> float:
    """One quota: a minute's allowance and its refill while the readings were sent, plus one lease per process (the
    slack a leasing design may take; this one takes none, as every admitted reading spent a token the shared bucket
    granted)."""
    return QUOTA_PER_MINUTE + seconds * QUOTA_PER_MINUTE / 60 + MEMBERS * lease_size(QUOTA_PER_MINUTE)


async def test_shared_quota_holds_across_two_processes_on_one_port(two_on_one_port: TwoOnOnePort):
    members = two_on_one_port.members
    fleet = await two_on_one_port.declare("quota-shared-")
    await asyncio.to_thread(wait_all_know, members, 1)
    sent = await asyncio.to_thread(send_one_per_connection, members, fleet)
    print(f"\nshared quota over {MEMBERS} ingest-http processes: {json.dumps(sent.figures())}")
    assert all(sent.served_by[m.name] >= SENT // 5 for m in members), sent.figures()  # both served the sensor
    assert sent.admitted <= ceiling(sent.seconds), sent.figures()
    # Not starved either: at most one lease per process can be left unspent.
    assert sent.admitted >= QUOTA_PER_MINUTE - MEMBERS * lease_size(QUOTA_PER_MINUTE), sent.figures()

    # The control: the same processes, each on its own buckets, grant a quota each — the bound above fails.
    two_on_one_port.restart_members(shared_quota=False)
    fleet = await two_on_one_port.declare("quota-local-")
    await asyncio.to_thread(wait_all_know, members, 2)
    control = await asyncio.to_thread(send_one_per_connection, members, fleet)
    print(f"without a shared quota: {json.dumps(control.figures())}")
    assert all(control.served_by[m.name] >= SENT // 5 for m in members), control.figures()
    assert control.admitted > ceiling(control.seconds), control.figures()
