"""The approval-chain workflow's input; its Updates and activities take the domain's commands."""

from typing import Any

from pydantic import BaseModel, Field, model_validator

from domain.commands import SubmitDeliverable
from domain.deliverable_state import ChainView
from domain.dependency_commands import OpenDependency
from domain.dependency_state import WatchView

TASK_QUEUE = "signoff"


def chain_workflow_id(deliverable_id: str) -> str:
    return f"deliverable-{deliverable_id}"


class ChainInput(BaseModel):
    submission: SubmitDeliverable
    # Set when the chain continues as new: the view it had, so nothing is recorded twice.
    view: ChainView | None = None
    # Continue as new past this many history events, even before the server suggests it.
    max_history: int = Field(default=10_000, ge=20)

    @property
    def deliverable_id(self) -> str:
        return self.submission.deliverable_id

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_submission(cls, data: Any) -> Any:
        # Runs started before commands were the spine carry the submission's fields flat.
        if isinstance(data, dict) and "submission" not in data and "submitter" in data:
            flat = {k: v for k, v in data.items() if k not in ("view", "max_history")}
            flat["actor"] = flat.pop("submitter")
            data = {**{k: data[k] for k in ("view", "max_history") if k in data}, "submission": flat}
        return data


def watch_workflow_id(dependency_id: str) -> str:
    return f"dependency-{dependency_id}"


class WatchInput(BaseModel):
    """The dependency watch's input: the opening it records first."""

    opening: OpenDependency
    # Set when the watch continues as new: the view it had, so nothing is recorded twice.
    view: WatchView | None = None
    max_history: int = Field(default=10_000, ge=20)

    @property
    def dependency_id(self) -> str:
        return self.opening.dependency_id
