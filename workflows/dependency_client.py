"""How the API talks to dependency watches: start one with its opening, send it a command, and map
Temporal's answers back to watch views and domain errors (as workflows/client.py does for chains)."""

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_state import WatchView
from domain.errors import ChainFinished, DependencyClosed
from workflows import search
from workflows.client import UNKNOWN_OUTCOME, AlreadyExists, CallerLeft, _answer, refusal, remaining
from workflows.dependency_watch import DependencyWatchWorkflow
from workflows.messages import WatchInput, watch_workflow_id

DependencyAction = Acknowledge | ReportProgress | Resolve | Cancel | ReassignOwner
# The watch's Update for each command a caller may send.
UPDATES: dict[type, Any] = {Acknowledge: DependencyWatchWorkflow.acknowledge,
                            ReportProgress: DependencyWatchWorkflow.progress,
                            Resolve: DependencyWatchWorkflow.resolve, Cancel: DependencyWatchWorkflow.cancel,
                            ReassignOwner: DependencyWatchWorkflow.reassign}


def start_operation(watch: WatchInput, task_queue: str) -> WithStartWorkflowOperation:
    """How a watch starts: its id, the requesting project as a search attribute (operators find
    every workflow of a project with `ProjectId='…'`), and the dependency's title as its summary."""
    return WithStartWorkflowOperation(
        DependencyWatchWorkflow.run, watch, id=watch_workflow_id(watch.dependency_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A run whose opening was refused (expired, say) failed: the same id may be opened again.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=TypedSearchAttributes([SearchAttributePair(search.PROJECT_ID, watch.opening.project_id)]),
        static_summary=watch.opening.title)


async def open_watch(client: Client, task_queue: str, opening: OpenDependency, deadline: datetime,
                     caller_left: CallerLeft | None = None) -> WatchView:
    """Start the dependency's watch and record its opening; answer its first watch view."""
    start = start_operation(WatchInput(opening=opening), task_queue)
    handle = client.get_workflow_handle(watch_workflow_id(opening.dependency_id))
    try:
        return await _answer(handle, deadline, caller_left, "", lambda update_id: client.execute_update_with_start_workflow(
            DependencyWatchWorkflow.open, start_workflow_operation=start, id=update_id,
            rpc_timeout=remaining(deadline)))
    except WorkflowAlreadyStartedError:
        raise AlreadyExists() from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None


async def send_to_watch(client: Client, command: DependencyAction, deadline: datetime,
                        caller_left: CallerLeft | None = None) -> WatchView:
    """Send `command` to its dependency's watch; answer the watch view it recorded."""
    handle = client.get_workflow_handle(watch_workflow_id(command.dependency_id))
    update = UPDATES[type(command)]

    def call(update_id: str) -> Awaitable[WatchView]:
        return handle.execute_update(update, command, id=update_id, result_type=WatchView,
                                     rpc_timeout=remaining(deadline))

    try:
        return await _answer(handle, deadline, caller_left, UNKNOWN_OUTCOME, call)
    except ChainFinished:
        raise DependencyClosed("the dependency is resolved or cancelled; it takes no more commands") from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
