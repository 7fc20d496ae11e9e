"""Commands: one frozen model per use case, the same object from the HTTP request to the event.

The API builds a command from the request body and the token; the chain's Update takes it; the
activity records it; the application and the aggregate take it; `rules.check` refuses it. What a
use case asks for (a decision's verdict, comment and revision, say) is written once, in its
`...Fields` model, which the HTTP body extends too.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from domain import bounds
from domain.deliverable_state import Verdict
from domain.text import HttpUri, Note, RequiredText, Text, UserId

SYSTEM_ACTOR = "signoff"


class Fields(BaseModel):
    model_config = ConfigDict(frozen=True)


class Envelope(Fields):
    """Who asks, under which id, and until when it may be recorded: what every command carries
    besides its subject's id."""

    actor: str
    # The subject's workflow fills it in from the Update's id: the id it records under stays the
    # same across task retries.
    command_id: str = ""
    # Past this moment the command is never recorded: a caller who gave up waiting (503) can rely
    # on a command not yet taken up never being applied later.
    expires_at: datetime | None = None


class Command(Envelope):
    """A command to one deliverable's approval chain."""

    # Filled in by the chain's workflow from its own id: a command can name no other deliverable.
    deliverable_id: str = ""


class RevisionFields(Fields):
    uri: HttpUri = Field(description="Where the revision's file is", examples=["https://files.example/mockups-v2.pdf"])
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="The file's SHA-256, lower-case hex: what was signed off",
                        examples=["3bfc269594ef649228e9a74bab00f042efc91d5acc6fbee31a382e80d42388fe"])
    note: Note = Field(default="", description="What changed", examples=["bigger logo, as asked"])


class DecisionFields(Fields):
    # A reject or a request for changes says why.
    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"verdict": {"enum": ["reject", "request_changes"]}}, "required": ["verdict"]},
        "then": {"required": ["comment"], "properties": {"comment": {"pattern": "\\S"}}}})
    verdict: Verdict = Field(description="approve, reject, or request_changes (a new revision)", examples=["approve"])
    comment: Text = Field(default="", description="Why; required for reject and request_changes",
                          examples=["Logo too small on mobile"])
    # Strict: "1" or 1.0 is a careless client, not a revision.
    revision: StrictInt = Field(ge=1, description="The revision decided on: the current one", examples=[1])


class WithdrawalFields(Fields):
    reason: Text = Field(default="", description="Why", examples=["The client paused the project"])


class ReassignmentFields(Fields):
    approvers: list[UserId] = Field(min_length=1, max_length=bounds.MAX_MEMBERS,
                                    description="The open stage's new approvers: members of the project",
                                    examples=[["ethan"]])
    reason: RequiredText = Field(description="Why", examples=["priya is on leave until Monday"])


class SubmitDeliverable(Command):
    project_id: str
    title: str
    # The policy as published when the deliverable was submitted: the chain keeps to this version.
    policy: dict[str, Any]
    revision: RevisionFields


class Decide(Command, DecisionFields):
    pass


class SubmitRevision(Command, RevisionFields):
    pass


class Withdraw(Command, WithdrawalFields):
    pass


class Reassign(Command, ReassignmentFields):
    pass


class FireDeadline(Command):
    """A stage deadline fell due; the opening it belongs to makes a late timer a no-op."""

    actor: str = SYSTEM_ACTOR
    stage_index: int
    opened_at: str
    kind: Literal["reminder", "escalation", "sla"]
    level: int


ChainCommand = Decide | SubmitRevision | Withdraw | Reassign | FireDeadline
