"""Request and response bodies of the HTTP API (the domain objects never go out as they are)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain import bounds
from domain.commands import (
    DecisionFields,
    ReassignmentFields,
    RevisionFields,
    WithdrawalFields,
)
from domain.policy_spec import NAME_PATTERN, EscalationStep
from domain.text import IsoDate, Name, RoleName, UserId

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


class ProjectCreate(Body):
    name: Name
    members: list[MemberIn] = Field(min_length=1, max_length=bounds.MAX_MEMBERS)
    escalation_path: list[EscalationStep] = Field(default_factory=list, max_length=bounds.MAX_ESCALATION_STEPS)
    phases: list[PhaseIn] = Field(default_factory=list, max_length=bounds.MAX_PHASES)


class ProjectPublic(BaseModel):
    id: str
    name: str
    members: list[dict[str, Any]]
    escalation_path: list[dict[str, Any]] = []
    phases: list[dict[str, Any]] = []
    created_by: str | None = None
    created_at: datetime


# A command's body is its use case's fields, written once in domain/commands.py.
class RevisionIn(Body, RevisionFields):
    pass


class DeliverableCreate(Body):
    project_id: ProjectId
    title: Name
    policy: str = Field(pattern=NAME_PATTERN)
    revision: RevisionIn


class DecisionIn(Body, DecisionFields):
    pass


class WithdrawIn(Body, WithdrawalFields):
    pass


class ReassignIn(Body, ReassignmentFields):
    pass
