"""The deliverable as clients and workflows see it: one shape for GET, decisions and the workflow's cache."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Status = Literal["in_review", "changes_requested", "approved", "rejected", "withdrawn"]
Verdict = Literal["approve", "reject", "request_changes"]
FINAL_STATUSES: frozenset[str] = frozenset({"approved", "rejected", "withdrawn"})


class Deadline(BaseModel):
    kind: Literal["reminder", "escalation", "sla"]
    level: int
    due_at: datetime
    done: bool = False


class StageView(BaseModel):
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


class RevisionView(BaseModel):
    number: int
    uri: str
    sha256: str
    note: str
    submitted_by: str
    submitted_at: datetime


class DecisionView(BaseModel):
    actor: str
    on_behalf_of: list[str]
    verdict: Verdict
    comment: str
    revision: int
    stage_index: int
    stage_name: str
    at: datetime


class EscalationView(BaseModel):
    stage_index: int
    stage_name: str
    level: int
    notified: list[str]
    granted: list[str]
    at: datetime


class PolicyRef(BaseModel):
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
        if self.stage is None or not self.stage.open:
            return None
        pending = [d for d in self.stage.deadlines if not d.done and self.deadline_id(d) not in fired]
        return min(pending, key=lambda d: d.due_at) if pending else None

    def deadline_id(self, deadline: Deadline) -> str:
        """One name per deadline of one opening of a stage."""
        assert self.stage is not None
        return f"deadline:{self.stage.index}:{self.stage.opened_at.isoformat()}:{deadline.kind}:{deadline.level}"


class DeliverableState(BaseModel):
    id: str
    project_id: str
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
