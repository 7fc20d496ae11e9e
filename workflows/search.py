"""What Temporal operators search chains by: the custom search attributes of `deliverable-{id}`
(a dependency's watch, `dependency-{id}`, carries `ProjectId` of its requesting project).

One place names them; every Temporal that runs the chain must have them registered (the dev
servers take `dev_server_flags()`, a cluster `temporal operator search-attribute create`, see
docker-compose.yml), or the chain's start and its upserts fail. The chain starts with all four set
(`at_start`), and upserts only what changed when its status or open stage moves (`changes`).
"""

from collections.abc import Sequence

from temporalio.common import SearchAttributeKey, SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

from domain.commands import SubmitDeliverable
from domain.deliverable_state import ChainView

PROJECT_ID = SearchAttributeKey.for_keyword("ProjectId")
DELIVERABLE_STATUS = SearchAttributeKey.for_keyword("DeliverableStatus")
SUBMITTER = SearchAttributeKey.for_keyword("Submitter")
# The open stage's name, or the stage that asked for changes; unset once the chain has ended.
STAGE_NAME = SearchAttributeKey.for_keyword("StageName")
KEYS: tuple[SearchAttributeKey[str], ...] = (PROJECT_ID, DELIVERABLE_STATUS, SUBMITTER, STAGE_NAME)


def dev_server_flags() -> list[str]:
    """`temporal server start-dev` flags that register every key."""
    return [arg for key in KEYS for arg in ("--search-attribute", f"{key.name}=Keyword")]


def _wanted(project_id: str, submitter: str, status: str,
            stage_name: str | None) -> dict[SearchAttributeKey[str], str | None]:
    return {PROJECT_ID: project_id, DELIVERABLE_STATUS: status, SUBMITTER: submitter, STAGE_NAME: stage_name}


def at_start(submission: SubmitDeliverable) -> TypedSearchAttributes:
    """A new chain is in review at its policy's first stage."""
    wanted = _wanted(submission.project_id, submission.actor, "in_review", submission.policy["stages"][0]["name"])
    return TypedSearchAttributes([SearchAttributePair(key, value) for key, value in wanted.items() if value is not None])


def changes(current: TypedSearchAttributes, submission: SubmitDeliverable,
            view: ChainView) -> Sequence[SearchAttributeUpdate[str]]:
    """The upserts that bring `current` to what `view` shows; none when nothing an operator searches
    by has moved (a plain approval, a reminder)."""
    wanted = _wanted(submission.project_id, view.submitter, view.status,
                     view.stage.name if view.stage is not None else None)
    return [key.value_set(value) if value is not None else key.value_unset()
            for key, value in wanted.items() if current.get(key) != value]
