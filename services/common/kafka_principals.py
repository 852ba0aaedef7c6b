"""Kafka SCRAM users and ACLs through the admin protocol (aiokafka has the ACL messages but no calls for them, and
no SCRAM-credential messages): upsert, delete and list users, apply and revoke `schemas.access` grants."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.admin import (
    CreateAclsRequest_v1,
    DeleteAclsRequest_v1,
    DescribeAclsRequest_v1,
)
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    CompactArray,
    CompactBytes,
    CompactString,
    Int8,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from schemas.access import Grant
from services.common.kafka import make_admin
from services.common.settings import KafkaAccess

log = logging.getLogger(__name__)

# Kafka's wire codes (org.apache.kafka.common.resource / acl).
RESOURCE_TYPES = {"any": 1, "topic": 2, "group": 3, "cluster": 4, "transactional-id": 5}
PATTERN_TYPES = {"any": 1, "literal": 3, "prefixed": 4}
OPERATIONS = {"Any": 1, "All": 2, "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
              "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11, "IdempotentWrite": 12}
ALLOW, ANY_PERMISSION = 3, 1
SCRAM_MECHANISMS = {"SCRAM-SHA-256": (1, "sha256"), "SCRAM-SHA-512": (2, "sha512")}
SCRAM_ITERATIONS = 8192  # Kafka's minimum is 4096


class _AlterUserScramCredentialsResponse_v0(Response):
    API_KEY = 51
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", CompactArray(("user", CompactString("utf-8")), ("error_code", Int16),
                                 ("error_message", CompactString("utf-8")), ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 51
    API_VERSION = 0
    RESPONSE_TYPE = _AlterUserScramCredentialsResponse_v0
    SCHEMA = Schema(
        ("deletions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("tags", TaggedFields))),
        ("upsertions", CompactArray(("name", CompactString("utf-8")), ("mechanism", Int8), ("iterations", Int32),
                                    ("salt", CompactBytes), ("salted_password", CompactBytes),
                                    ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _AlterUserScramCredentials(Request[_AlterUserScramCredentialsRequest_v0]):
    API_KEY = 51

    def __init__(self, deletions: list, upsertions: list) -> None:
        self._deletions, self._upsertions = deletions, upsertions

    def build(self, request_struct_class):
        return request_struct_class(self._deletions, self._upsertions, {})


class _DescribeUserScramCredentialsResponse_v0(Response):
    API_KEY = 50
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("error_message", CompactString("utf-8")),
        ("results", CompactArray(
            ("user", CompactString("utf-8")), ("error_code", Int16), ("error_message", CompactString("utf-8")),
            ("credential_infos", CompactArray(("mechanism", Int8), ("iterations", Int32), ("tags", TaggedFields))),
            ("tags", TaggedFields))),
        ("tags", TaggedFields),
    )


class _DescribeUserScramCredentialsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 50
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeUserScramCredentialsResponse_v0
    SCHEMA = Schema(("users", CompactArray(("name", CompactString("utf-8")), ("tags", TaggedFields))),
                    ("tags", TaggedFields))


class _DescribeUserScramCredentials(Request[_DescribeUserScramCredentialsRequest_v0]):
    API_KEY = 50

    def build(self, request_struct_class):
        return request_struct_class(None, {})  # null: every user


# CreateAcls / DeleteAcls / DescribeAcls v1 with a whole list at once (aiokafka's wrappers send one entry).
class _CreateAcls(Request[CreateAclsRequest_v1]):
    API_KEY = 30

    def __init__(self, rows: list[tuple]) -> None:
        self._rows = rows

    def build(self, request_struct_class):
        return request_struct_class(self._rows)


class _DeleteAcls(Request[DeleteAclsRequest_v1]):
    API_KEY = 31

    def __init__(self, filters: list[tuple]) -> None:
        self._filters = filters

    def build(self, request_struct_class):
        return request_struct_class(self._filters)


class _DescribeAcls(Request[DescribeAclsRequest_v1]):
    API_KEY = 29

    def __init__(self, *acl_filter) -> None:
        self._filter = acl_filter

    def build(self, request_struct_class):
        return request_struct_class(*self._filter)


class KafkaAdminRefused(RuntimeError):
    """The broker refused an admin request (the message carries its error name and text)."""


def _check(code: int, message: str | None, what: str) -> None:
    if code:
        raise KafkaAdminRefused(f"{what}: {for_code(code).__name__} {message or ''}".rstrip())


def scram_upsertion(username: str, password: str, mechanism: str = "SCRAM-SHA-512") -> tuple:
    """The salted password Kafka stores (RFC 5802 Hi(), PBKDF2 with the mechanism's hash); the secret never
    travels, only its salted form."""
    code, digest = SCRAM_MECHANISMS[mechanism]
    salt = os.urandom(32)
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, SCRAM_ITERATIONS)
    return (username, code, SCRAM_ITERATIONS, salt, salted, {})


@dataclass(frozen=True)
class AclEntry:
    principal: str
    resource: str
    name: str
    pattern: str
    operation: str


def _acl_rows(grants: Iterable[Grant]) -> list[tuple]:
    return [(RESOURCE_TYPES[g.resource], g.name, PATTERN_TYPES[g.pattern], f"User:{g.principal}", "*",
             OPERATIONS[operation], ALLOW) for g in grants for operation in g.operations]


async def upsert_users(kafka: KafkaAccess, passwords: dict[str, str], mechanism: str = "SCRAM-SHA-512") -> None:
    """Create or reset the SCRAM credential of each user (admin principal required)."""
    if not passwords:
        return
    upsertions = [scram_upsertion(user, secret, mechanism) for user, secret in passwords.items()]
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_AlterUserScramCredentials([], upsertions))
    finally:
        await admin.close()
    for user, code, message, _ in response.results:
        _check(code, message, f"SCRAM credential of {user}")
    # The controller answers once the credentials are in the metadata log; the broker's login cache takes them a
    # moment later, and a client logging in within that moment is refused as if its password were wrong.
    await _wait_until_login_works(kafka.as_user(*next(iter(passwords.items())), mechanism))


async def _wait_until_login_works(user: KafkaAccess, timeout_s: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        client = make_admin(user, request_timeout_ms=5_000)
        try:
            await client.start()
            return
        except KafkaError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
        finally:
            await client.close()


async def delete_user(kafka: KafkaAccess, username: str) -> None:
    """Remove every SCRAM credential of `username` (none is not an error). Only the mechanisms it has are named:
    the broker refuses all of a user's changes when one of them names a credential that does not exist."""
    mechanisms = (await _credentials(kafka)).get(username, [])
    if not mechanisms:
        return
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_AlterUserScramCredentials(
            [(username, code, {}) for code in mechanisms], []))
    finally:
        await admin.close()
    for user, code, message, _ in response.results:
        _check(code, message, f"SCRAM credential of {user}")


async def _credentials(kafka: KafkaAccess) -> dict[str, list[int]]:
    """User -> the codes of the SCRAM mechanisms it has a credential for."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_DescribeUserScramCredentials())
    finally:
        await admin.close()
    _check(response.error_code, response.error_message, "listing SCRAM users")
    return {user: [mechanism for mechanism, _, _ in infos or []]
            for user, code, _, infos, _ in response.results if not code}


async def list_users(kafka: KafkaAccess) -> list[str]:
    """Every user with a SCRAM credential, sorted."""
    return sorted(await _credentials(kafka))


async def apply_grants(kafka: KafkaAccess, grants: Iterable[Grant]) -> int:
    """Create the ALLOW ACLs of `grants` (creating an existing ACL is a no-op on the broker). Returns the count."""
    rows = _acl_rows(grants)
    if not rows:
        return 0
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_CreateAcls(rows))
    finally:
        await admin.close()
    for code, message in response.creation_responses:
        _check(code, message, "creating an ACL")
    return len(rows)


async def describe_acls(kafka: KafkaAccess, principal: str | None = None) -> list[AclEntry]:
    """Every ACL (of `principal` when given)."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_DescribeAcls(
            RESOURCE_TYPES["any"], None, PATTERN_TYPES["any"], f"User:{principal}" if principal else None, None,
            OPERATIONS["Any"], ANY_PERMISSION))
    finally:
        await admin.close()
    _check(response.error_code, response.error_message, "listing ACLs")
    resources = {code: name for name, code in RESOURCE_TYPES.items()}
    patterns = {code: name for name, code in PATTERN_TYPES.items()}
    operations = {code: name for name, code in OPERATIONS.items()}
    return [AclEntry(acl_principal.removeprefix("User:"), resources.get(rtype, str(rtype)), name,
                     patterns.get(ptype, str(ptype)), operations.get(op, str(op)))
            for rtype, name, ptype, acls in response.resources for acl_principal, _, op, _ in acls]


async def revoke_principal(kafka: KafkaAccess, principal: str) -> None:
    """Delete every ACL naming `principal`."""
    admin = make_admin(kafka)
    await admin.start()
    try:
        response = await admin._send_request(_DeleteAcls([(
            RESOURCE_TYPES["any"], None, PATTERN_TYPES["any"], f"User:{principal}", None, OPERATIONS["Any"],
            ANY_PERMISSION)]))
    finally:
        await admin.close()
    for code, message, _ in response.filter_responses:
        _check(code, message, f"deleting the ACLs of {principal}")
