"""Request and response bodies of the HTTP API (the domain objects never go out as they are)."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.policy import EscalationStep
from domain.state import Verdict

# Names and titles: printable text only (a NUL or control character breaks lists and exports).
Name = Annotated[str, StringConstraints(min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")]
# Free text may span lines, but never holds a NUL.
Text = Annotated[str, StringConstraints(max_length=10000, pattern=r"^[^\x00]*$")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@-]+$")]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemberIn(Body):
    user: UserId
    roles: list[RoleName] = Field(default_factory=list, max_length=20)


class PhaseIn(Body):
    name: Name
    planned_start: str | None = None
    planned_end: str | None = None


class ProjectCreate(Body):
    name: Name
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
    created_at: datetime


class RevisionIn(Body):
    uri: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^[^\x00-\x20\x7f]+$")]
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    note: Text = ""


class DeliverableCreate(Body):
    project_id: str
    title: Name
    policy: str = Field(min_length=1, max_length=64)
    revision: RevisionIn


class DecisionIn(Body):
    verdict: Verdict
    comment: Text = ""
    revision: int = Field(ge=1)


class WithdrawIn(Body):
    reason: Text = ""


class ReassignIn(Body):
    approvers: list[UserId] = Field(min_length=1, max_length=100)
    reason: Annotated[Text, StringConstraints(min_length=1)]
