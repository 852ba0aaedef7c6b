"""The HTTP contract of ingest's `POST /v1/readings`: the batch body and every answer body (documented in ingest's
OpenAPI; the handler builds the same shapes without pydantic on its hot path, and a test checks they agree)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.readings import RawReading
from schemas.rejections import RejectionReason


class ReadingBatch(BaseModel):
    """The body of `POST /v1/readings`: one or more readings, and nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    readings: list[RawReading] = Field(
        min_length=1, description="Readings in any order; each is admitted or rejected on its own. At most "
        "`CITYSTREAM_INGEST_MAX_BATCH_READINGS` (default 1000) per request.")


class AcceptedOutcome(BaseModel):
    """The reading at `index` was admitted and acknowledged by Kafka."""

    index: int = Field(ge=0, description="Position of the reading in the batch.")
    status: Literal["accepted"]
    sensor_id: str
    seq: int


class RejectedOutcome(BaseModel):
    """The reading at `index` was refused; it went to `citystream.readings.rejected.v1` with the same reason."""

    index: int = Field(ge=0, description="Position of the reading in the batch.")
    status: Literal["rejected"]
    reason: RejectionReason = Field(description="Stable reason code.")
    field: str | None = Field(description="The field at fault, dotted path, e.g. `metrics.voltage`.")
    detail: str = Field(description="Human-readable explanation.")
    sensor_id: str | None = Field(description="Sensor the reading claimed or the credential named, if any.")
    seq: int | None = Field(description="Sequence number the reading claimed, if it was one.")


ReadingOutcome = Annotated[AcceptedOutcome | RejectedOutcome, Field(discriminator="status")]


class BatchResult(BaseModel):
    """The answer to a gated batch: one outcome per reading, in batch order (with `Prefer: return=minimal`, only
    the rejected readings' outcomes, each with its index; the counts and the status are the same).

    200: all accepted. 207: some rejected. Every reading rejected for one reason: that reason's status
    (`schemas.rejections.HTTP_STATUS`) and `reason` set; for several reasons: 422 without `reason`."""

    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0)
    outcomes: list[ReadingOutcome] = Field(
        description="One per reading in batch order; only the rejected ones when the request sent "
        "`Prefer: return=minimal` (the answer then carries `Preference-Applied: return=minimal`).")
    reason: RejectionReason | None = Field(
        default=None, description="Present only when every reading was rejected for this one reason.")


class RequestRefused(BaseModel):
    """The whole request was refused before any reading was looked at (not JSON, wrong shape, too large)."""

    reason: Literal[RejectionReason.MALFORMED, RejectionReason.PAYLOAD_TOO_LARGE, RejectionReason.BATCH_TOO_LARGE]
    detail: str
    field: str | None = Field(description="`readings` when the list itself is at fault; else null.")


class CredentialRefused(BaseModel):
    """401: the credential is valid for no sensor of the register (missing, unknown, wrong or expired), so no reading
    was looked at; one summary, never one outcome per reading (anonymous traffic is counted, not stored)."""

    accepted: Literal[0]
    rejected: int | None = Field(ge=0, description="Readings the request carried; null when the body was unreadable.")
    reason: Literal[RejectionReason.BAD_CREDENTIALS]
    field: Literal["credential"]
    detail: str


class SourceLimited(BaseModel):
    """429 before the body is read: this client address sent too many requests whose credential failed."""

    reason: Literal[RejectionReason.RATE_LIMITED]
    field: Literal["credential"]
    detail: str


class IngestUnavailable(BaseModel):
    """503: Kafka did not acknowledge in time, the register view is not caught up, or no rate-limit lease could be
    had from PostgreSQL (shared quota). Retry after `Retry-After`."""

    reason: Literal["UNAVAILABLE"]
    detail: str
