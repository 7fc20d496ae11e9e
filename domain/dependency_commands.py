"""Dependency commands: one frozen model per use case, from the HTTP request to the event.

Like `domain.commands.Command`, each names who asks, about which dependency, under which id (so a
repeat is a no-op) and until when it may be recorded. What a use case asks for is written once,
in its `...Fields` model, which the HTTP body can extend.
"""

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from domain import bounds
from domain.commands import SYSTEM_ACTOR, Envelope, Fields
from domain.policy_spec import DURATION, EscalationStep
from domain.text import Name, RequiredText, RoleName, Text, UserId


class DependencyCommand(Envelope):
    """A command to one dependency."""

    dependency_id: str = ""
    # The actor's global roles (admin, pmo) as the token said, so the record applies the rules the API checked.
    actor_roles: tuple[str, ...] = ()


class Owner(Fields):
    """Who owes the dependency: one user, or whoever holds one project role."""

    # Exactly one of the two is a name: the other is left out or null. Nothing else is accepted.
    model_config = Fields.model_config | {"extra": "forbid", "json_schema_extra": {"oneOf": [
        {"required": ["user"], "properties": {"user": {"type": "string"}, "role": {"type": "null"}}},
        {"required": ["role"], "properties": {"role": {"type": "string"}, "user": {"type": "null"}}}]}}
    user: UserId | None = None
    role: RoleName | None = None

    @model_validator(mode="after")
    def _one_of(self) -> "Owner":
        if (self.user is None) == (self.role is None):
            raise ValueError("an owner is either {\"user\": ...} or {\"role\": ...}")
        return self


class OpenDependencyFields(Fields):
    project_id: str = Field(description="The requesting project", json_schema_extra={"format": "uuid"})
    title: Name
    description: Text = ""
    owner: Owner
    providing_project_id: str | None = Field(default=None, json_schema_extra={"format": "uuid"})
    needed_for: str | None = Field(default=None, description="The deliverable it is needed for",
                                   json_schema_extra={"format": "uuid"})
    needed_by: datetime = Field(description="When it is needed, with a time zone")
    stall_after: str = Field(json_schema_extra=DURATION)
    remind_before: str | None = Field(default=None, json_schema_extra=DURATION)
    escalation: list[EscalationStep] | None = Field(default=None, max_length=bounds.MAX_ESCALATION_STEPS)

    @field_validator("needed_by")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("needed_by needs a time zone (such as Z)")
        return value


class ProgressFields(Fields):
    note: Text = ""
    # Strict: "50" is a careless client, not a percentage.
    percent: StrictInt | None = Field(default=None, ge=0, le=100)


class ResolveFields(Fields):
    note: Text = ""


class CancelFields(Fields):
    reason: RequiredText


class ReassignOwnerFields(Fields):
    owner: Owner
    reason: RequiredText


class OpenDependency(DependencyCommand, OpenDependencyFields):
    pass


class Acknowledge(DependencyCommand):
    pass


class ReportProgress(DependencyCommand, ProgressFields):
    pass


class Resolve(DependencyCommand, ResolveFields):
    pass


class Cancel(DependencyCommand, CancelFields):
    pass


class ReassignOwner(DependencyCommand, ReassignOwnerFields):
    pass


class FireDependencyDeadline(DependencyCommand):
    """A dependency deadline fell due. A stall or escalation belongs to one run of the stall clock
    (`clock_started_at`): once the clock has restarted it is a no-op."""

    actor: str = SYSTEM_ACTOR
    kind: Literal["reminder", "stall", "escalation", "overdue"]
    level: int = 0
    clock_started_at: datetime
    # The due time the watch computed and waited for: recorded, so history shows why it fired then.
    due_at: datetime | None = None


DependencyChange = Acknowledge | ReportProgress | Resolve | Cancel | ReassignOwner | FireDependencyDeadline
