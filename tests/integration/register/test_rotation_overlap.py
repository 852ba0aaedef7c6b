"""Rotation overlap end to end: the register's record on the real topic, judged by the ingest's credential check.

Tests may import both services (the services themselves never import each other).
"""

from __future__ import annotations

from datetime import timedelta

from services.ingest.credentials import CredentialCheck, parse_credential
from tests.integration.register.conftest import ADMIN, sensor_body, wait_for_record


def _accepted(record, credential: str, at) -> bool:
    check = CredentialCheck(parse_credential(credential), at)
    return any(check.accepts(stored) for stored in record.credentials)


async def test_old_and_new_credentials_work_inside_the_overlap_and_only_the_new_one_after(
        client, clock, settings, organisation):
    sensor_id = (await client.post("/v1/sensors", json=sensor_body(organisation), headers=ADMIN)).json()["sensor_id"]
    await client.post(f"/v1/sensors/{sensor_id}/status", json={"status": "active"}, headers=ADMIN)
    old = (await client.post(f"/v1/sensors/{sensor_id}/credentials", headers=ADMIN)).json()
    new = (await client.post(f"/v1/sensors/{sensor_id}/credentials", json={"overlap_seconds": 600},
                             headers=ADMIN)).json()
    rotated_at = clock()

    record = (await wait_for_record(settings, sensor_id, lambda r: r is not None and r.version >= 4))[sensor_id]
    assert record.version == 4
    by_key = {c.key_id: c for c in record.credentials}
    not_after = by_key[old["key_id"]].not_after
    assert by_key[new["key_id"]].not_after is None
    assert timedelta(seconds=599) < not_after - rotated_at <= timedelta(seconds=600)
    assert new["replaced_not_after"] is not None

    inside = [rotated_at, not_after - timedelta(seconds=1)]
    after = [not_after, not_after + timedelta(days=1)]
    assert [_accepted(record, old["credential"], t) for t in inside + after] == [True, True, False, False]
    assert [_accepted(record, new["credential"], t) for t in inside + after] == [True, True, True, True]
    forged = f"{old['key_id']}.{new['credential'].split('.', 1)[1]}"  # a real secret under another key id
    assert not any(_accepted(record, forged, t) for t in inside)

    # An overlap of zero ends the previous credential at once.
    newest = (await client.post(f"/v1/sensors/{sensor_id}/credentials", json={"overlap_seconds": 0},
                                headers=ADMIN)).json()
    record = (await wait_for_record(settings, sensor_id, lambda r: r is not None and r.version >= 5))[sensor_id]
    now = clock()
    assert (_accepted(record, new["credential"], now), _accepted(record, newest["credential"], now)) == (False, True)
