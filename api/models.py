"""Request and response bodies of the HTTP API (the domain objects never go out as they are)."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from domain import bounds
from domain.calendar import Calendar
from domain.commands import (
    DecisionFields,
    ReassignmentFields,
    RevisionFields,
    WithdrawalFields,
)
from domain.deliverable_state import Deadline, PolicyRef, Status, Verdict
from domain.dependency_commands import (
    CancelFields,
    OpenDependencyFields,
    ProgressFields,
    ReassignOwnerFields,
    ResolveFields,
)
from domain.dependency_state import DependencyState, OwnerView
from domain.notifications import TYPES
from domain.policy_spec import NAME_PATTERN, EscalationStep, PolicySpec
from domain.text import IsoDate, Name, RequiredText, RoleName, UserId

ProjectId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberIn(Body):
    user: UserId
    roles: list[RoleName] = Field(default_factory=list, max_length=bounds.MAX_MEMBER_ROLES)


class PhaseIn(Body):
    name: Name
    planned_start: IsoDate | None = None
    planned_end: IsoDate | None = None


CALENDAR_DOC = ("The project's business calendar: with one, every duration its stages use (sla, reminders, "
                "escalation `after`) counts working time (`P1D` one working day, `PT4H` four working hours); "
                "without one, wall time")


class ProjectCreate(Body):
    name: Name = Field(description="The project's name", examples=["Northwind website relaunch"])
    members: list[MemberIn] = Field(min_length=1, max_length=bounds.MAX_MEMBERS)
    escalation_path: list[EscalationStep] = Field(default_factory=list, max_length=bounds.MAX_ESCALATION_STEPS)
    phases: list[PhaseIn] = Field(default_factory=list, max_length=bounds.MAX_PHASES)
    calendar: Calendar | None = Field(default=None, description=CALENDAR_DOC)


MAX_WEBHOOKS = 20
MessageType = Literal[TYPES]  # type: ignore[valid-type]
MESSAGE_TYPES_DOC = "The message types it receives (absent or null: every type): " + ", ".join(TYPES)


class WebhookIn(Body):
    """A webhook: with the `id` of one the project has, that one (its url and events as given); without,
    a new one, whose secret the answer shows this once."""

    id: str | None = Field(default=None, max_length=64, description="A webhook the project has; absent: add one",
                           examples=["3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c"])
    url: str = Field(min_length=1, max_length=2000, description="https (http only to 127.0.0.1/localhost where "
                                                                 "SIGNOFF_ALLOW_LOCAL_WEBHOOKS is on), to a public host",
                     examples=["https://hooks.example/pmo"])
    events: list[MessageType] | None = Field(default=None, max_length=len(TYPES), description=MESSAGE_TYPES_DOC,
                                             examples=[["escalation.raised", "dependency.stalled"]])

    @field_validator("events", mode="before")
    @classmethod
    def _known_types(cls, events: Any) -> Any:
        # Say which name is unknown (the enum's own message lists the known ones only).
        unknown = [e for e in events if isinstance(e, str) and e not in TYPES] if isinstance(events, list) else []
        if unknown:
            raise ValueError(f"unknown message type {unknown[0]!r}; the types are {', '.join(TYPES)}")
        return events


class ProjectUpdate(Body):
    """A charter change: each part given replaces the project's whole part; a part left out (or null)
    stays as it is. The reason is recorded with the change."""

    members: list[MemberIn] | None = Field(
        default=None, min_length=1, max_length=bounds.MAX_MEMBERS,
        description="The project's members from now on, each listed once",
        examples=[[{"user": "alice", "roles": ["author"]}, {"user": "ethan", "roles": ["design-lead"]}]])
    escalation_path: list[EscalationStep] | None = Field(
        default=None, max_length=bounds.MAX_ESCALATION_STEPS,
        description="Where stalled stages escalate from now on", examples=[[{"after": "P1D", "notify": ["pm"]}]])
    phases: list[PhaseIn] | None = Field(default=None, max_length=bounds.MAX_PHASES,
                                         description="The project's phases from now on",
                                         examples=[[{"name": "Discovery", "planned_start": "2026-12-01"}]])
    calendar: Calendar | None = Field(default=None, description=CALENDAR_DOC + "; stages opened from now on use it")
    webhooks: list[WebhookIn] | None = Field(
        default=None, max_length=MAX_WEBHOOKS,
        description="The project's webhooks from now on: one listed with its `id` is kept (with the url and events "
                    "given), one without is added (its secret is in this answer only), one left out is removed",
        examples=[[{"url": "https://hooks.example/pmo", "events": ["escalation.raised"]}]])
    reason: RequiredText = Field(description="Why the charter changes", examples=["ethan takes over design from bob"])


class ProjectPublic(BaseModel):
    id: UUID
    name: str
    members: list["MemberOut"]
    escalation_path: list[EscalationStep] = []
    phases: list["PhaseOut"] = []
    calendar: Calendar | None = Field(default=None, description="The business calendar, null: wall time")
    webhooks: list["WebhookOut"] = Field(default_factory=list, description="Where its messages go; never a secret")
    created_by: str | None = None
    created_at: datetime


class ProjectChanged(ProjectPublic):
    """The project after a change: as GET shows it, and for each webhook this change added, its secret."""

    webhooks: list["WebhookAdded"] = Field(  # type: ignore[assignment]
        default_factory=list, description="Where its messages go; `secret` only on those this change added")


# A command's body is its use case's fields, written once in domain/commands.py.
class RevisionIn(Body, RevisionFields):
    pass


class DeliverableCreate(Body):
    project_id: ProjectId = Field(description="The project's id", examples=["0b6f5c1e-4a1d-4f7e-9c55-2d8e7a3b9f10"])
    title: Name = Field(description="What is signed off", examples=["Homepage mockups"])
    policy: str = Field(pattern=NAME_PATTERN, description="The approval policy's name", examples=["brand-review"])
    revision: RevisionIn


class DecisionIn(Body, DecisionFields):
    pass


class WithdrawIn(Body, WithdrawalFields):
    pass


class ReassignIn(Body, ReassignmentFields):
    pass


class DependencyCreate(Body, OpenDependencyFields):
    """A dependency to open: what the requesting project needs, from whom, by when."""


class ProgressIn(Body, ProgressFields):
    pass


class ResolveIn(Body, ResolveFields):
    pass


class CancelIn(Body, CancelFields):
    pass


class ReassignOwnerIn(Body, ReassignOwnerFields):
    pass


# ---- answers ------------------------------------------------------------------------------------
# Typed, so the contract says what each list holds; datetimes go out as RFC 3339 with `Z`.

class MemberOut(BaseModel):
    user: str = Field(description="User id", examples=["priya"])
    roles: list[str] = Field(description="Project roles", examples=[["design-lead"]])


class PhaseOut(BaseModel):
    name: str = Field(examples=["Discovery"])
    planned_start: str | None = Field(default=None, description="ISO date", examples=["2026-12-01"])
    planned_end: str | None = Field(default=None, description="ISO date", examples=["2027-01-15"])


class WebhookOut(BaseModel):
    id: str = Field(description="The webhook's id", examples=["3f2b8c1e-9d4a-4e6b-8a7c-1d2e3f4a5b6c"])
    url: str = Field(examples=["https://hooks.example/pmo"],
                     description="Whole for pmo, admin and the project's pmo; for other members only its scheme "
                                 "and host (`https://hooks.example/…`), since a url is often its credential")
    events: list[str] | None = Field(description=MESSAGE_TYPES_DOC, examples=[["escalation.raised"]])


class WebhookAdded(WebhookOut):
    secret: str | None = Field(default=None, description="Shown once, for a webhook this change added: the "
                                                          "Standard Webhooks secret its deliveries are signed with",
                               examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])


class WebhookSecret(WebhookOut):
    secret: str = Field(description="The webhook's new secret, shown this once; the old one no longer signs",
                        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])


DeliveryStatus = Literal["pending", "delivered", "failed", "unsubscribed", "skipped"]


class DeliveryRunOutcome(BaseModel):
    run: int = Field(description="1 for the first run of attempts, then one per retry asked for")
    outcome: Literal["delivered", "failed", "unsubscribed", "skipped"] = Field(
        description="delivered: a 2xx; failed: no 2xx within the budget; unsubscribed: the receiver answered 410 "
                    "(the webhook is removed); skipped: the webhook was removed before it could be sent")
    attempts: int = Field(description="Attempts in this run")
    last_status: int | None = Field(description="The receiver's last HTTP status (null: no answer)")
    error: str = Field(description="Why the last attempt failed, if it did")
    at: datetime


class SubjectOut(BaseModel):
    kind: str = Field(examples=["deliverable"])
    id: str
    title: str
    url: str


class DeliveryOut(BaseModel):
    """One message to one webhook, and what became of it."""

    id: UUID
    project_id: UUID
    webhook_id: str
    webhook_message_id: str = Field(description="The `webhook-id` header: the same on every attempt and retry")
    type: str = Field(description="The message type", examples=["escalation.raised"])
    subject: SubjectOut
    status: DeliveryStatus = Field(description="pending while a run is under way, else the last run's outcome")
    runs: int
    attempts: int = Field(description="Attempts over all runs")
    last_status: int | None = None
    error: str = ""
    outcomes: list[DeliveryRunOutcome]
    created_at: datetime
    updated_at: datetime
    version: int


class PolicyOut(PolicySpec):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: str = Field(description="The policy's name", examples=["brand-review"])
    version: int = Field(description="This version", examples=[2])
    latest_version: int = Field(description="The newest version", examples=[3])


class StageSummary(BaseModel):
    index: int
    name: str
    open: bool
    opened_at: datetime
    sla_due_at: datetime | None = None
    escalation_level: int


class DeliverableSummary(BaseModel):
    """One deliverable in a list: where it stands, without its history."""

    id: UUID
    project_id: UUID
    title: str
    submitter: str
    status: Status
    revision: int
    policy: PolicyRef
    stage: StageSummary | None
    waiting_on: list[str] = Field(description="Who still has to decide on the open stage")
    notified: list[str] = Field(description="Who was notified by the open stage's escalations")
    created_at: datetime
    updated_at: datetime


class InboxItem(BaseModel):
    """One thing waiting for the caller: a deliverable's (with `deliverable`) or a dependency's (with
    `dependency`); the other is null."""

    kind: Literal["decision", "escalation", "revision", "dependency"] = Field(
        description="decision: the caller approves the open stage; escalation: the caller was notified of a "
                    "stalled stage or a stalled dependency; revision: the caller's deliverable waits for a new "
                    "revision; dependency: the caller owns an open or in-progress dependency")
    deliverable: DeliverableSummary | None = None
    dependency: DependencyState | None = None


# ---- history: every aggregate kind's events in one entry shape (domain/history.py) ---------------

class Correlation(BaseModel):
    """What caused an event: the workflow that recorded it, the Temporal Update that carried the
    command (null for a deadline, an opening, or what an HTTP request recorded itself), and the
    command id the workflow recorded it under. An event that follows from a command in the same
    recording (a stage opened by a decision) carries that command's correlation."""

    workflow_id: str | None = Field(description="The workflow that recorded it; null: an HTTP request did",
                                    examples=["deliverable-0b6f5c1e-4a1d-4f7e-9c55-2d8e7a3b9f10"])
    update_id: str | None = Field(description="The Temporal Update that carried the command (its id in the "
                                              "workflow's history)", examples=["5f0e2b8c-7d1a-4c3e-9b6f-2a8d4e1c7b90"])
    command_id: str | None = Field(description="The id the command was recorded under",
                                   examples=["deliverable-0b6f5c1e-…:update:5f0e2b8c-…"])


class HistoryEntryBase(BaseModel):
    """One recorded event, in the shape every aggregate kind's history shares; the fields after
    `correlation` are the event's own and appear where the event has them."""

    type: str = Field(description="What happened", examples=["DecisionRecorded"])
    at: datetime = Field(description="When it happened")
    recorded_at: datetime = Field(description="When it was stored")
    version: int = Field(description="The aggregate's version after this event")
    actor: str = Field(description="Who did it (`signoff` for deadlines and what the service does itself)")
    on_behalf_of: list[str] = Field(description="Stalled approvers a granted escalation decided for (else empty)")
    correlation: Correlation


class HistoryEntry(HistoryEntryBase):
    """One recorded event of a deliverable."""

    revision: int = Field(description="The revision it happened on")
    comment: str | None = None
    verdict: Verdict | None = None
    stage_index: int | None = None
    index: int | None = Field(default=None, description="The stage opened (StageOpened)")
    reason: str | None = None
    level: int | None = None
    notified: list[str] | None = None
    granted: list[str] | None = None
    approvers: list[str] | None = None
    to: list[str] | None = Field(default=None, description="Who a reminder went to")
    uri: str | None = None
    sha256: str | None = None
    note: str | None = None
    number: int | None = Field(default=None, description="The revision submitted (RevisionSubmitted)")
    command_id: str | None = Field(default=None, description="The event's own command id (commands only)")
    deadlines: list[Deadline] | None = Field(default=None, description="The stage's deadlines as computed when it "
                                                                        "opened (StageOpened)")
    calendar: Calendar | None = Field(default=None, description="The project calendar the deadlines were counted "
                                                                "on (StageOpened; absent: wall time)")
    holidays_version: str | None = Field(default=None, description="The `holidays` package version that calendar's "
                                                                   "public holidays came from")


class DependencyHistoryEntry(HistoryEntryBase):
    """One recorded event of a dependency (`on_behalf_of` is always empty)."""

    command_id: str | None = Field(default=None, description="The event's own command id")
    title: str | None = Field(default=None, description="Opened")
    description: str | None = Field(default=None, description="Opened")
    owner: OwnerView | None = Field(default=None, description="The owner (Opened, OwnerReassigned)")
    needed_by: datetime | None = Field(default=None, description="Opened")
    stall_after: str | None = Field(default=None, description="Opened")
    remind_before: str | None = Field(default=None, description="Opened")
    escalation: list[EscalationStep] | None = Field(default=None, description="The steps it escalates by (Opened)")
    note: str | None = Field(default=None, description="ProgressReported, Resolved")
    percent: int | None = Field(default=None, description="ProgressReported")
    reason: str | None = Field(default=None, description="Cancelled, OwnerReassigned")
    to: list[str] | None = Field(default=None, description="Who a reminder went to (ReminderSent)")
    told: list[str] | None = Field(default=None, description="Who was told (Stalled, BecameOverdue)")
    level: int | None = Field(default=None, description="The escalation step (Escalated)")
    notified: list[str] | None = Field(default=None, description="Escalated")
    granted: list[str] | None = Field(default=None, description="Who may resolve or re-assign from then on "
                                                                "(Escalated)")
    clock_started_at: datetime | None = Field(default=None, description="The run of the stall clock a stall or "
                                                                        "escalation belonged to")
    due_at: datetime | None = Field(default=None, description="The due time the watch computed and waited for")
    calendar: Calendar | None = Field(default=None, description="The requesting project's calendar the deadlines "
                                                                "count on (Opened; absent: wall time)")
    holidays_version: str | None = None


class ProjectHistoryEntry(HistoryEntryBase):
    """One recorded event of a project: Created, CharterChanged (only the parts it changed are
    non-null), WebhookAdded, WebhookChanged, WebhookRemoved, WebhookSecretRotated."""

    name: str | None = Field(default=None, description="Created")
    members: list[MemberOut] | None = Field(default=None, description="Created, CharterChanged")
    escalation_path: list[EscalationStep] | None = Field(default=None, description="Created, CharterChanged")
    phases: list[PhaseOut] | None = Field(default=None, description="Created, CharterChanged")
    calendar: Calendar | None = Field(default=None, description="Created, CharterChanged (null: none, or unchanged)")
    reason: str | None = Field(default=None, description="Why (CharterChanged, Webhook…)")
    webhook_id: str | None = Field(default=None, description="The webhook (Webhook…)")
    url: str | None = Field(default=None, description="The webhook's url (WebhookAdded, WebhookChanged): whole for "
                                                      "pmo, admin and the project's pmo, else only its scheme and host")
    events: list[str] | None = Field(default=None, description="The message types the webhook takes (WebhookAdded, "
                                                               "WebhookChanged; null there: all)")
    generation: int | None = Field(default=None, description="The webhook secret's new generation "
                                                             "(WebhookSecretRotated); never the secret")


class PolicyHistoryEntry(HistoryEntryBase):
    """One recorded event of a policy: Created, then VersionPublished for each version."""

    name: str | None = Field(default=None, description="Created")
    policy_version: int | None = Field(default=None, description="The version published (VersionPublished)")
    spec: PolicySpec | None = Field(default=None, description="The version's stages (VersionPublished); null where "
                                                              "the caller may not read that version (it names "
                                                              "approvers by user id), as GET ?version= would 404")


class DeliveryHistoryEntry(HistoryEntryBase):
    """One recorded event of a webhook delivery: Started (run 1), RetryRequested (a later run),
    OutcomeRecorded (how a run ended). Each run has a workflow of its own."""

    project_id: UUID | None = Field(default=None, description="Started")
    webhook_id: str | None = Field(default=None, description="Started")
    url: str | None = Field(default=None, description="Where it was sent (Started)")
    message: dict[str, Any] | None = Field(default=None, description="The message as sent: key, type, timestamp, "
                                                                      "recipients, body (Started)")
    run: int | None = Field(default=None, description="The run of attempts (RetryRequested, OutcomeRecorded)")
    outcome: Literal["delivered", "failed", "unsubscribed", "skipped"] | None = Field(
        default=None, description="OutcomeRecorded")
    attempts: int | None = Field(default=None, description="Attempts in the run (OutcomeRecorded)")
    last_status: int | None = Field(default=None, description="The receiver's last HTTP status (OutcomeRecorded)")
    error: str | None = Field(default=None, description="Why the run's last attempt failed (OutcomeRecorded)")


ProjectPublic.model_rebuild()
