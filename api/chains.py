"""Sending commands to approval-chain workflows and turning their refusals into problems."""

from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import Problem, domain_problem
from domain.errors import ChainFinished, DomainError, error_types
from domain.state import ChainView
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, chain_workflow_id

ERROR_TYPES = error_types()
UNKNOWN_OUTCOME = ("a command not yet taken up now expires and is never applied, one taken up is being recorded: "
                   "read the deliverable in a few seconds to learn which")


class AlreadyExists(Exception):
    """The workflow for this deliverable ran before and has closed: read the record instead."""


async def open_chain(client: Client, task_queue: str, chain: ChainInput, timeout: timedelta) -> ChainView:
    start = WithStartWorkflowOperation(
        ApprovalChainWorkflow.run, chain, id=chain_workflow_id(chain.deliverable_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    try:
        return await client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                              start_workflow_operation=start,
                                                              rpc_timeout=timeout)
    except WorkflowAlreadyStartedError:
        raise AlreadyExists() from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        raise unavailable(exc, "send the same request with the same Idempotency-Key to learn whether it was "
                               "made: a repeat never makes a second deliverable") from None


async def send(client: Client, deliverable_id: str, update: Any, arg: Any, timeout: timedelta) -> ChainView:
    handle = client.get_workflow_handle(chain_workflow_id(deliverable_id))
    try:
        return await handle.execute_update(update, arg, result_type=ChainView, rpc_timeout=timeout)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in str(exc).lower():
            raise domain_problem(ChainFinished("the chain has ended; it takes no more commands")) from None
        raise unavailable(exc, UNKNOWN_OUTCOME) from None
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise unavailable(exc, UNKNOWN_OUTCOME) from None


def unavailable(exc: Exception, advice: str) -> Problem:
    return Problem(503, f"the approval chain did not answer in time ({type(exc).__name__}); {advice}",
                   "chain-unavailable")


def refusal(exc: WorkflowUpdateFailedError) -> Problem:
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type in ERROR_TYPES:
        error: DomainError = ERROR_TYPES[cause.type](cause.message)
        return domain_problem(error)
    return Problem(503, f"the approval chain could not take the command: {exc.cause or exc}", "chain-unavailable")
