"""The audit trail's shapes over HTTP (domain/audit.py makes the rows)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from api.models import Correlation


class AuditSubject(BaseModel):
    kind: str = Field(description="project, policy, deliverable, dependency, delivery or feed_tokens (kinds added "
                                  "later appear under their own name)", examples=["deliverable"])
    id: str
    title: str


class AuditRow(BaseModel):
    """One recorded event of any kind of thing, in one shape, chained to the row before by its hash."""

    seq: int = Field(description="The row's place in the trail: 1, 2, 3… with no gaps")
    position: int = Field(description="The event's position in the event store's log")
    version: int = Field(description="The thing's version after this event")
    at: datetime = Field(description="When it happened")
    recorded_at: datetime = Field(description="When it was stored")
    actor: str = Field(description="Who did it (`signoff` for deadlines and what the service does itself)")
    on_behalf_of: list[str]
    action: str = Field(description="What happened, as a stable dotted name (README: Audit actions)",
                        examples=["deliverable.decision.approved"])
    subject: AuditSubject
    project_id: str | None = Field(description="The project it belongs to; null for global things (policies)")
    revision: int | None = Field(description="The deliverable's revision it happened on (deliverables only)")
    reason: str | None = Field(description="Why, as the actor said (a reason or a decision's comment)")
    details: dict[str, Any] = Field(description="The event's other facts")
    correlation: Correlation
    prev_hash: str = Field(description="The hash of the row before (64 zeros for the first)")
    hash: str = Field(description="SHA-256 of prev_hash's bytes and this row's canonical JSON without `hash` and "
                                  "`prev_hash`")


class AuditPage(BaseModel):
    items: list[AuditRow]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class Checkpoint(BaseModel):
    seq: int
    hash: str
    at: datetime
    key_id: str
    signature: str = Field(description="Ed25519 over the canonical JSON of {seq, hash, at}, hex")


class Broken(BaseModel):
    seq: int = Field(description="The first row that does not hold")
    why: str


class CheckpointCount(BaseModel):
    count: int
    verified: int
    last_seq: int | None


class AuditVerification(BaseModel):
    ok: bool
    rows: int = Field(description="Rows the event store's events make")
    view_rows: int = Field(description="Rows of the audit view compared with them")
    first_broken: Broken | None
    checkpoints: CheckpointCount
    unsigned_rows: int = Field(description="Rows after the last checkpoint: chained, not yet signed")


class AuditKey(BaseModel):
    public_key: str = Field(description="The Ed25519 key checkpoints are signed with: base64 of its 32 bytes")
    key_id: str
