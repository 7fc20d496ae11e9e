"""Response bodies of the past: a project's snapshot at a moment, and the timelines of deliverables and
dependencies (domain/timeline.py computes them; these say their shape)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.models import ProjectPublic
from domain.deliverable_state import DeliverableState, Status, Verdict
from domain.dependency_state import DependencyState, OwnerView
from domain.dependency_state import Status as DependencyStatus


class ProjectSnapshot(BaseModel):
    as_of: datetime = Field(description="The moment shown (the time of the request when none was asked for)")
    project: ProjectPublic = Field(description="The project as it stood then")
    deliverables: list[DeliverableState] = Field(
        description="The project's deliverables submitted by then, each as it stood then; oldest first")
    dependencies: list[DependencyState] = Field(
        description="Dependencies the project requested or provides, opened by then, each as it stood then; "
                    "oldest first")


class Interval(BaseModel):
    # `from` is a Python keyword: the field is `start` here and `from` on the wire.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    start: datetime = Field(alias="from", description="When this state began")
    to: datetime | None = Field(description="When it ended: the next interval's `from`, or the end of the life; "
                                            "null while it lasts")
    duration_s: float = Field(description="`to` − `from` in seconds; up to the moment of the answer while it lasts")
    waiting_on: list[str] = Field(description="Whom it waited on in this interval")
    escalation_level: int = Field(description="The last escalation step fired (0: none)")


class DeliverableInterval(Interval):
    state: Status = Field(description="The deliverable's status in this interval")
    stage: str | None = Field(description="The open stage's name (null when no stage is open)")
    stage_index: int | None = None
    revision: int = Field(description="The current revision")
    waiting_on: list[str] = Field(description="The open stage's approvers (and those an escalation granted) who "
                                              "had not decided yet; while changes are requested, the submitter")


class DependencyInterval(Interval):
    state: DependencyStatus = Field(description="The dependency's status in this interval")
    stalled: bool
    overdue: bool
    owner: OwnerView
    waiting_on: list[str] = Field(description="The owner: a user id, or `role:<name>` for whoever holds the role")


class Point(BaseModel):
    at: datetime
    kind: str = Field(description="What happened", examples=["decision"])
    type: str = Field(description="The recorded event's type, as in history", examples=["DecisionRecorded"])
    actor: str = Field(description="Who did it (`signoff` for deadlines)")
    level: int | None = None
    reason: str | None = None
    note: str | None = None
    notified: list[str] | None = None
    granted: list[str] | None = None
    to: list[str] | None = Field(default=None, description="Who a reminder went to")
    due_at: datetime | None = None


class DeliverablePoint(Point):
    kind: Literal["submission", "stage_opened", "decision", "stage_passed", "approved", "rejected",  # type: ignore[assignment]
                  "changes_requested", "revision", "withdrawal", "reassignment", "reminder", "sla_breach",
                  "escalation"] = Field(description="What happened", examples=["decision"])
    revision: int = Field(description="The revision it happened on")
    stage: str | None = None
    stage_index: int | None = None
    verdict: Verdict | None = None
    comment: str | None = None
    on_behalf_of: list[str] | None = Field(default=None, description="Stalled approvers a granted escalation "
                                                                     "decided for")
    approvers: list[str] | None = Field(default=None, description="Who approves the stage opened or reassigned")


class DependencyPoint(Point):
    kind: Literal["opening", "acknowledgement", "progress", "resolution", "cancellation",  # type: ignore[assignment]
                  "reassignment", "reminder", "stall", "escalation", "overdue"] = Field(
        description="What happened", examples=["stall"])
    percent: int | None = None
    owner: OwnerView | None = None
    told: list[str] | None = None


class Timeline(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    status: str = Field(description="Its status now")
    started_at: datetime = Field(description="Its submission or opening: the first interval's `from`")
    ended_at: datetime | None = Field(description="When it reached a final status: the last interval's `to`; "
                                                  "null while it is open")


class DeliverableTimeline(Timeline):
    status: Status  # type: ignore[assignment]
    intervals: list[DeliverableInterval]
    points: list[DeliverablePoint]


class DependencyTimeline(Timeline):
    status: DependencyStatus  # type: ignore[assignment]
    intervals: list[DependencyInterval]
    points: list[DependencyPoint]

