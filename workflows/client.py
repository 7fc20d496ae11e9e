"""The one place that knows how Signoff talks to Temporal: the client, workflow ids, update names,
and how Temporal's answers map back to domain results and domain errors. The API calls it with a
command and gets a view or a DomainError; nothing here knows HTTP."""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.commands import (
    Decide,
    Reassign,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.deliverable_state import ChainView
from domain.errors import (
    CallerGone,
    ChainFinished,
    ChainUnavailable,
    DomainError,
    Invalid,
    error_types,
)
from workflows import search
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.codec import data_converter
from workflows.messages import ChainInput, chain_workflow_id

log = logging.getLogger("signoff.chains")
ERROR_TYPES = error_types()
# Resolves when the caller of a command has gone away (an HTTP client that disconnected).
CallerLeft = Callable[[], Awaitable[None]]
# The chain's Update for each command a caller may send.
UPDATES: dict[type, Any] = {Decide: ApprovalChainWorkflow.decide, SubmitRevision: ApprovalChainWorkflow.submit_revision,
                            Withdraw: ApprovalChainWorkflow.withdraw, Reassign: ApprovalChainWorkflow.reassign}
UNKNOWN_OUTCOME = ("a command not yet recorded now expires and is never applied, one already recorded stays: "
                   "read the deliverable in a few seconds to learn which")


async def connect(settings: Settings, lazy: bool = False) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), lazy=lazy)


class AlreadyExists(Exception):
    """The workflow for this deliverable ran before and has closed: read the record instead."""


def remaining(deadline: datetime) -> timedelta:
    """What is left of a command's time; nothing left means it is not sent at all."""
    left = deadline - datetime.now(timezone.utc)
    if left <= timedelta(0):
        raise ChainUnavailable("the request waited past its deadline before it could be sent; nothing was recorded")
    return left


def start_operation(chain: ChainInput, task_queue: str) -> WithStartWorkflowOperation:
    """How a chain starts: its id, its search attributes (workflows/search.py) and the deliverable's
    title as its summary, for the Web UI and `temporal workflow describe` (encrypted like every
    payload when a payload key is set)."""
    return WithStartWorkflowOperation(
        ApprovalChainWorkflow.run, chain, id=chain_workflow_id(chain.deliverable_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A run whose submission was refused (expired, say) failed: the same id may be submitted again.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        search_attributes=search.at_start(chain.submission), static_summary=chain.submission.title)


async def open_chain(client: Client, task_queue: str, submission: SubmitDeliverable, deadline: datetime,
                     caller_left: CallerLeft | None = None) -> ChainView:
    """Start the deliverable's chain and record its submission; answer the chain's first view."""
    chain = ChainInput(submission=submission)
    start = start_operation(chain, task_queue)
    handle = client.get_workflow_handle(chain_workflow_id(chain.deliverable_id))
    try:
        return await _answer(handle, deadline, caller_left, "", lambda update_id: client.execute_update_with_start_workflow(
            ApprovalChainWorkflow.open, start_workflow_operation=start, id=update_id, rpc_timeout=remaining(deadline)))
    except WorkflowAlreadyStartedError:
        raise AlreadyExists() from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None


async def send(client: Client, command: Decide | SubmitRevision | Withdraw | Reassign, deadline: datetime,
               caller_left: CallerLeft | None = None,
               recorded_version: Callable[[], Awaitable[int]] | None = None) -> ChainView:
    """Send `command` to its deliverable's chain and answer the view it recorded.

    A refusal made on a view older than the record (the answer to an earlier recording was lost
    to a crash) is not the truth: the chain takes the record's view and the command is tried once
    more. `recorded_version` reads the record's version, and is only called after a refusal.
    """
    deliverable_id, update = command.deliverable_id, UPDATES[type(command)]
    handle = client.get_workflow_handle(chain_workflow_id(deliverable_id))

    def call(update_id: str) -> Awaitable[ChainView]:
        # The chain names the command after the Update's id: one per attempt, stable across retries.
        return handle.execute_update(update, command, id=update_id, result_type=ChainView,
                                     rpc_timeout=remaining(deadline))

    try:
        return await _answer(handle, deadline, caller_left, UNKNOWN_OUTCOME, call)
    except WorkflowUpdateFailedError as exc:
        behind = _view_version(exc)
        if behind is None or recorded_version is None or await recorded_version() <= behind:
            raise refusal(exc) from None
        log.warning("chain %s refused on view %s behind the record: refreshing", deliverable_id, behind)
    try:
        await _answer(handle, deadline, caller_left, "nothing was recorded", lambda update_id: handle.execute_update(
            ApprovalChainWorkflow.refresh, id=update_id, rpc_timeout=remaining(deadline)))
        return await _answer(handle, deadline, caller_left, UNKNOWN_OUTCOME, call)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None


async def _answer(handle: WorkflowHandle, deadline: datetime, caller_left: CallerLeft | None, advice: str,
                  call: Callable[[str], Awaitable[Any]]) -> Any:
    """Run one update call (given its update id) by the deadline, and turn Temporal's failures to
    answer into domain errors; a refusal (WorkflowUpdateFailedError) is left to the caller."""
    update_id = str(uuid.uuid4())
    try:
        return await _unless_caller_leaves(call(update_id), caller_left, deadline,
                                           lambda: _abandon(handle, update_id))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in str(exc).lower():
            raise ChainFinished("the chain has ended; it takes no more commands") from None
        raise unavailable(exc, advice) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, RuntimeError) as exc:
        # RuntimeError: the lazily connected client could not reach Temporal at all.
        raise unavailable(exc, advice) from None


async def _unless_caller_leaves(work: Awaitable[Any], caller_left: CallerLeft | None, deadline: datetime,
                                abandon: Callable[[], Awaitable[None]]) -> Any:
    """Await `work` until the deadline at most (the client's own retries against a server that is
    down outlast its rpc_timeout); if the HTTP client disconnects first, stop waiting and abandon
    the command, so a command not yet taken up when its caller went is never recorded."""
    task = asyncio.ensure_future(work)
    waits = {task}
    if caller_left is not None:
        waits.add(gone := asyncio.ensure_future(caller_left()))
    try:
        left = (deadline - datetime.now(timezone.utc)).total_seconds()
        await asyncio.wait(waits, timeout=max(left, 0.001), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for other in waits - {task}:
            other.cancel()
    if task.done():
        return task.result()
    task.cancel()
    if caller_left is not None and gone.done():
        await abandon()
        raise CallerGone("the caller went away: the command is abandoned unless it was already being recorded")
    # Past the deadline a command not yet recorded never will be (the record checks it).
    raise WorkflowUpdateRPCTimeoutOrCancelledError()


async def _abandon(handle: WorkflowHandle, update_id: str) -> None:
    try:
        # Both workflows take this signal by this name.
        await handle.signal("abandon", update_id, rpc_timeout=timedelta(seconds=5))
    except (RPCError, RuntimeError) as exc:
        log.warning("could not abandon update %s of %s: %s", update_id, handle.id, exc)


def _view_version(exc: WorkflowUpdateFailedError) -> int | None:
    cause = _application_error(exc)
    if cause is None or not cause.details or not isinstance(cause.details[0], dict):
        return None
    version = cause.details[0].get("view_version")
    return version if isinstance(version, int) else None


def _application_error(exc: WorkflowUpdateFailedError) -> ApplicationError | None:
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return cause


def unavailable(exc: Exception, advice: str) -> ChainUnavailable:
    detail = f"the approval chain did not answer in time ({type(exc).__name__})" + (f"; {advice}" if advice else "")
    return ChainUnavailable(detail)


def refusal(exc: WorkflowUpdateFailedError) -> DomainError:
    cause = _application_error(exc)
    if cause is not None and cause.type in ERROR_TYPES:
        error = ERROR_TYPES[cause.type](cause.message)
        named = cause.details[0].get("field") if cause.details and isinstance(cause.details[0], dict) else None
        if isinstance(error, Invalid) and isinstance(named, list):
            error.field = tuple(named)
        return error
    return ChainUnavailable(f"the approval chain could not take the command: {exc.cause or exc}")
