"""Request and response bodies of the HTTP API (the domain objects never go out as they are)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.policy import EscalationStep
from domain.state import Verdict

UserId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberIn(Body):
    user: UserId
    roles: list[RoleName] = Field(default_factory=list, max_length=20)


class PhaseIn(Body):
    name: str = Field(min_length=1, max_length=100)
    planned_start: str | None = None
    planned_end: str | None = None


class ProjectCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    members: list[MemberIn] = Field(min_length=1, max_length=500)
    escalation_path: list[EscalationStep] = Field(default_factory=list, max_length=20)
    phases: list[PhaseIn] = Field(default_factory=list, max_length=50)


class ProjectPublic(BaseModel):
    id: str
    name: str
    members: list[dict[str, Any]]
    escalation_path: list[dict[str, Any]] = []
    phases: list[dict[str, Any]] = []
    created_by: str | None = None
    created_at: datetime | str


class RevisionIn(Body):
    uri: str = Field(min_length=1, max_length=2000)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    note: str = Field(default="", max_length=5000)


class DeliverableCreate(Body):
    project_id: str
    title: str = Field(min_length=1, max_length=300)
    policy: str = Field(min_length=1, max_length=64)
    revision: RevisionIn


class DecisionIn(Body):
    verdict: Verdict
    comment: str = Field(default="", max_length=10000)
    revision: int = Field(ge=1)


class WithdrawIn(Body):
    reason: str = Field(default="", max_length=5000)


class ReassignIn(Body):
    approvers: list[UserId] = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=5000)
