"""Inputs and outputs of the approval-chain workflow and its activities: one model each, so fields can grow."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from domain.deliverable_state import ChainView, Verdict

TASK_QUEUE = "signoff"


def chain_workflow_id(deliverable_id: str) -> str:
    return f"deliverable-{deliverable_id}"


class ChainInput(BaseModel):
    deliverable_id: str
    project_id: str
    title: str
    submitter: str
    policy: dict[str, Any]
    revision: dict[str, Any]
    # Set when the chain continues as new: the view it had, so nothing is recorded twice.
    view: ChainView | None = None
    # Continue as new past this many history events, even before the server suggests it.
    max_history: int = Field(default=10_000, ge=20)
    # The submission's delivery deadline, like every command's: past it, it is never recorded.
    expires_at: datetime | None = None


class Command(BaseModel):
    actor: str
    # Past this moment the workflow refuses the command: a caller who gave up waiting (503) can
    # rely on a command that was not yet taken up never being applied later.
    expires_at: datetime | None = None

    def arguments(self) -> dict[str, Any]:
        """What the use case records: the command without its delivery deadline."""
        return self.model_dump(exclude={"expires_at"})


class DecideInput(Command):
    verdict: Verdict
    comment: str = ""
    revision: int


class RevisionInput(Command):
    uri: str
    sha256: str
    note: str = ""


class WithdrawInput(Command):
    reason: str = ""


class ReassignInput(Command):
    approvers: list[str]
    reason: str


class Recording(BaseModel):
    """What an activity records: the use case's arguments plus the id that makes it idempotent."""

    deliverable_id: str
    command_id: str
    args: dict[str, Any]
    # Checked where the command is recorded: a command already held answers the record; one not
    # yet held is refused past this moment, so nothing applies after its caller gave up.
    expires_at: datetime | None = None
