"""The deliverable as clients and workflows see it: one shape for GET, decisions and the workflow's cache.

These are also the aggregate's value objects: it keeps its open stage, revisions, decisions and
escalations as these frozen models, so the record, the chain's view, the HTTP answer and the list
summary all derive from one shape.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.quorum import required_approvals

Status = Literal["in_review", "changes_requested", "approved", "rejected", "withdrawn"]
Verdict = Literal["approve", "reject", "request_changes"]
FINAL_STATUSES: frozenset[str] = frozenset({"approved", "rejected", "withdrawn"})


class Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class Deadline(Value):
    kind: Literal["reminder", "escalation", "sla"]
    level: int
    due_at: datetime
    done: bool = False


class NextDeadline(Value):
    """The open stage's earliest pending deadline."""

    kind: Literal["reminder", "escalation", "sla"]
    level: int
    due_at: datetime


class StageView(Value):
    index: int
    name: str
    rule: str
    n: int | None = None
    required: int
    open: bool
    approvers: list[str]
    granted: list[str]
    approvals: list[str]
    decided: list[str]
    waiting_on: list[str]
    escalation_level: int
    opened_at: datetime
    sla_due_at: datetime | None = None
    deadlines: list[Deadline]

    @classmethod
    def of(cls, **fields: Any) -> "StageView":
        """A stage from its own fields; what derives from them (required, waiting_on, sla_due_at)
        is computed here, once for every shape that shows a stage."""
        people = fields["approvers"] + fields["granted"]
        waiting = [p for i, p in enumerate(people) if p not in fields["decided"] and p not in people[:i]]
        deadlines = [Deadline.model_validate(d) for d in fields["deadlines"]]
        return cls(**{**fields, "deadlines": deadlines},
                   required=required_approvals(fields["rule"], fields.get("n"), len(fields["approvers"])),
                   waiting_on=waiting if fields["open"] else [],
                   sla_due_at=next((d.due_at for d in deadlines if d.kind == "sla"), None))

    def replace(self, **changes: Any) -> "StageView":
        own = self.model_dump(exclude={"required", "waiting_on", "sla_due_at"})
        return StageView.of(**{**own, "deadlines": self.deadlines, **changes})


class RevisionView(Value):
    number: int
    uri: str
    sha256: str
    note: str
    submitted_by: str
    submitted_at: datetime


class DecisionView(Value):
    actor: str
    on_behalf_of: list[str]
    verdict: Verdict
    comment: str
    revision: int
    stage_index: int
    stage_name: str
    at: datetime


class EscalationView(Value):
    stage_index: int
    stage_name: str
    level: int
    notified: list[str]
    granted: list[str]
    at: datetime


class PolicyRef(Value):
    name: str
    version: int
    on_revision: str


class ChainView(BaseModel):
    """The part of a deliverable's state that the workflow needs for validation and timers.

    It stays small whatever the chain's history, because every recording puts it into the
    workflow's history once more.
    """

    id: str
    submitter: str
    status: Status
    revision: int
    revision_sha256: str
    stage: StageView | None
    # Approvers of stages that have closed: their late decision is a conflict, not an intrusion.
    former_approvers: list[str] = []
    version: int

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def next_deadline(self, fired: frozenset[str] = frozenset()) -> Deadline | None:
        return earliest_pending(self.stage, lambda d: self.deadline_id(d) not in fired)

    def deadline_id(self, deadline: Deadline) -> str:
        """One name per deadline of one opening of a stage."""
        assert self.stage is not None
        return f"deadline:{self.stage.index}:{self.stage.opened_at.isoformat()}:{deadline.kind}:{deadline.level}"


def earliest_pending(stage: StageView | None, wanted: Any = lambda d: True) -> Deadline | None:
    """The open stage's earliest deadline not yet done (and `wanted`); None when it has none."""
    if stage is None or not stage.open:
        return None
    pending = [d for d in stage.deadlines if not d.done and wanted(d)]
    return min(pending, key=lambda d: d.due_at) if pending else None


class DeliverableState(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    project_id: str = Field(json_schema_extra={"format": "uuid"})
    title: str
    submitter: str
    policy: PolicyRef
    status: Status
    revision: int
    revisions: list[RevisionView]
    stage: StageView | None
    stages: list[str]
    decisions: list[DecisionView]
    escalations: list[EscalationView]
    created_at: datetime
    updated_at: datetime
    version: int
    next_deadline: NextDeadline | None = Field(
        default=None, description="The open stage's earliest pending deadline (null when none); its due time was "
                                  "computed when the stage opened, on the project's calendar if it has one")
