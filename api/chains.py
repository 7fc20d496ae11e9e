"""Sending commands to approval-chain workflows and turning their refusals into problems."""

from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import Problem, domain_problem
from domain.errors import ChainFinished, DomainError, error_types
from domain.state import DeliverableState
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, chain_workflow_id

ERROR_TYPES = error_types()


class AlreadyExists(Exception):
    """The workflow for this deliverable ran before and has closed: read the record instead."""


async def open_chain(client: Client, task_queue: str, chain: ChainInput) -> DeliverableState:
    start = WithStartWorkflowOperation(
        ApprovalChainWorkflow.run, chain, id=chain_workflow_id(chain.deliverable_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    try:
        return await client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                              start_workflow_operation=start)
    except WorkflowAlreadyStartedError:
        raise AlreadyExists() from None
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None


async def send(client: Client, deliverable_id: str, update: Any, arg: Any) -> DeliverableState:
    handle = client.get_workflow_handle(chain_workflow_id(deliverable_id))
    try:
        return await handle.execute_update(update, arg, result_type=DeliverableState)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in str(exc).lower():
            raise domain_problem(ChainFinished("the chain has ended; it takes no more commands")) from None
        raise


def refusal(exc: WorkflowUpdateFailedError) -> Problem:
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if isinstance(cause, ApplicationError) and cause.type in ERROR_TYPES:
        error: DomainError = ERROR_TYPES[cause.type](cause.message)
        return domain_problem(error)
    return Problem(503, f"the approval chain could not take the command: {exc.cause or exc}", "chain-unavailable")
