"""ApprovalChainWorkflow: the live approval chain of one deliverable, id `deliverable-{id}`.

It holds the last recorded state, serialises decisions, and runs the open stage's deadlines.
Every change is recorded by an activity first; the state it answers is what the workflow keeps,
so the rules live in the domain and the workflow stays thin.
"""

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import DomainError
    from domain.rules import check_decision
    from domain.state import DeliverableState
    from workflows.activities import ChainActivities
    from workflows.messages import (ChainInput, DecideInput, ReassignInput, Recording, RevisionInput,
                                    WithdrawInput)

RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5))


def refuse(exc: DomainError) -> ApplicationError:
    return ApplicationError(exc.detail, type=type(exc).__name__, non_retryable=True)


@workflow.defn
class ApprovalChainWorkflow:
    @workflow.init
    def __init__(self, input: ChainInput) -> None:
        self.input = input
        self.state: DeliverableState | None = input.state
        self.lock = asyncio.Lock()
        self.open_failed = False

    @workflow.run
    async def run(self, input: ChainInput) -> DeliverableState | None:
        await workflow.wait_condition(lambda: self.state is not None or self.open_failed)
        while self.state is not None and not self.state.finished:
            await self._wait_for_change_or_deadline(self.state)
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.input.model_copy(update={"state": self.state}))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    async def _wait_for_change_or_deadline(self, state: DeliverableState) -> None:
        deadline = state.next_deadline()
        changed = lambda: self.state is None or self.state.version != state.version  # noqa: E731
        if deadline is None:
            await workflow.wait_condition(changed)
            return
        wait = (deadline.due_at - workflow.now()).total_seconds()
        if wait > 0:
            try:
                await workflow.wait_condition(changed, timeout=wait)
                return
            except asyncio.TimeoutError:
                pass
        async with self.lock:
            if changed():
                return
            assert state.stage is not None
            await self._record(ChainActivities.record_deadline, {
                "stage_index": state.stage.index, "opened_at": state.stage.opened_at.isoformat(),
                "kind": deadline.kind, "level": deadline.level})

    # ---- updates ------------------------------------------------------------------------------
    @workflow.update
    async def open(self) -> DeliverableState:
        """Record the submission (once) and answer the chain's first state."""
        async with self.lock:
            if self.state is None:
                try:
                    await self._record(ChainActivities.record_submission, {
                        "project_id": self.input.project_id, "title": self.input.title,
                        "submitter": self.input.submitter, "policy": self.input.policy,
                        "revision": self.input.revision})
                except ApplicationError:
                    self.open_failed = True
                    raise
            assert self.state is not None
            return self.state

    @workflow.update
    async def decide(self, cmd: DecideInput) -> DeliverableState:
        async with self.lock:
            self._check_decision(cmd)  # again: another decision may have closed the stage meanwhile
            return await self._record(ChainActivities.record_decision, cmd.model_dump())

    @decide.validator
    def _validate_decide(self, cmd: DecideInput) -> None:
        self._check_decision(cmd)

    @workflow.update
    async def submit_revision(self, cmd: RevisionInput) -> DeliverableState:
        async with self.lock:
            return await self._record(ChainActivities.record_revision, cmd.model_dump())

    @workflow.update
    async def withdraw(self, cmd: WithdrawInput) -> DeliverableState:
        async with self.lock:
            return await self._record(ChainActivities.record_withdrawal, cmd.model_dump())

    @workflow.update
    async def reassign(self, cmd: ReassignInput) -> DeliverableState:
        async with self.lock:
            return await self._record(ChainActivities.record_reassignment, cmd.model_dump())

    @workflow.query
    def current(self) -> DeliverableState | None:
        return self.state

    # ---- helpers ------------------------------------------------------------------------------
    def _check_decision(self, cmd: DecideInput) -> None:
        if self.state is None:
            return  # not opened yet: the handler waits for the lock and the aggregate decides
        try:
            check_decision(self.state, cmd.actor, cmd.revision, cmd.verdict, cmd.comment)
        except DomainError as exc:
            raise refuse(exc) from None

    async def _record(self, activity: Any, args: dict[str, Any]) -> DeliverableState:
        recording = Recording(deliverable_id=self.input.deliverable_id, command_id=str(workflow.uuid4()), args=args)
        try:
            self.state = await workflow.execute_local_activity(
                activity, recording, result_type=DeliverableState,
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
        except ActivityError as exc:
            if isinstance(exc.cause, ApplicationError):
                raise ApplicationError(exc.cause.message, type=exc.cause.type, non_retryable=True) from None
            raise
        return self.state
