"""Inputs and outputs of the approval-chain workflow and its activities: one model each, so fields can grow."""

from typing import Any

from pydantic import BaseModel

from domain.state import ChainView, Verdict

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
    max_history: int = 10_000


class DecideInput(BaseModel):
    actor: str
    verdict: Verdict
    comment: str = ""
    revision: int


class RevisionInput(BaseModel):
    actor: str
    uri: str
    sha256: str
    note: str = ""


class WithdrawInput(BaseModel):
    actor: str
    reason: str = ""


class ReassignInput(BaseModel):
    actor: str
    approvers: list[str]
    reason: str


class Recording(BaseModel):
    """What an activity records: the use case's arguments plus the id that makes it idempotent."""

    deliverable_id: str
    command_id: str
    args: dict[str, Any]
