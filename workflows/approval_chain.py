"""ApprovalChainWorkflow: the live approval chain of one deliverable, id `deliverable-{id}`.

It keeps the chain's last recorded view, serialises commands, and runs the open stage's
deadlines. Every change is recorded by an activity first and the view it answers is what the
workflow keeps, so the rules live in the domain and the workflow stays thin. Validators refuse
with the same pure rules the aggregate applies, so a refused command never enters the history.
"""

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import rules
    from domain.commands import (
        Command,
        Decide,
        FireDeadline,
        Reassign,
        SubmitRevision,
        Withdraw,
    )
    from domain.deliverable_state import ChainView, Deadline
    from domain.errors import CommandExpired, DomainError
    from workflows.activities import ChainActivities
    from workflows import search
    from workflows.messages import ChainInput
    from workflows.recording import (
        RECORD_RETRY,
        RECORD_TIMEOUT,
        history_is_long,
        refusal_of,
        refuse,
        refuse_if_abandoned,
        remember_abandoned,
        wait_for_opening,
    )


# One patch for the changes that made the event store the workflow's source of truth (issue 5):
# expiry checked where commands are recorded, the record's view adopted after a refusal, abandoned
# commands, and a refused or never-opened submission failing the run. Chains started before it
# replay as they ran, and keep the old behaviour until they continue as new (patched() answers
# once per run); for them the API's refresh still repairs a view behind the record.
RECORD_IS_TRUTH = "record-is-truth"
# One patch for what Temporal's operators see (issue 7): the chain upserts its search attributes
# (workflows/search.py) when its status or open stage moves. It is asked only when one of them
# differs from what the run has, so a decision that moves neither adds no command. Chains started
# before it differ at once (they started without any), ask it while replaying, and keep going
# without upserts until they continue as new. Timer summaries are metadata on the timer command,
# which replay does not compare (the histories recorded before them replay): not patched.
SEARCH_ATTRIBUTES = "search-attributes"


def timer_summary(stage_name: str, deadline: Deadline) -> str:
    """What a deadline's timer shows in the Web UI and `temporal workflow show`: "design SLA"."""
    what = {"reminder": f"reminder {deadline.level}", "escalation": f"escalation level {deadline.level}",
            "sla": "SLA"}[deadline.kind]
    return f"{stage_name} {what}"


@workflow.defn
class ApprovalChainWorkflow:
    @workflow.init
    def __init__(self, input: ChainInput) -> None:
        self.input = input
        self.view: ChainView | None = input.view
        self.lock = asyncio.Lock()
        self.open_failed = False
        # Deadlines recorded in this run: even if a recording changed nothing, it is never retried
        # in a loop, which would fill the history.
        self.fired: set[str] = set()
        # Updates whose callers went away before they were taken up: never recorded.
        self.abandoned: list[str] = []

    @workflow.run
    async def run(self, input: ChainInput) -> ChainView | None:
        await self._wait_for_opening(input)
        if self.view is None and workflow.patched(RECORD_IS_TRUTH):
            # A failed run, so the same deliverable id may be submitted again (Idempotency-Key retry).
            raise ApplicationError("the submission was refused and not recorded", type="SubmissionRefused",
                                   non_retryable=True)
        while self.view is not None and not self.view.finished:
            self._show(self.view)
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.input.model_copy(update={"view": self.view}))
            await self._wait_for_change_or_deadline(self.view)
        if self.view is not None:
            self._show(self.view)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    def _show(self, view: ChainView) -> None:
        """Bring the run's search attributes up to the view's status and stage, for operators."""
        updates = search.changes(workflow.info().typed_search_attributes, self.input.submission, view)
        if updates and workflow.patched(SEARCH_ATTRIBUTES):
            workflow.upsert_search_attributes(updates)

    async def _wait_for_opening(self, input: ChainInput) -> None:
        def opened() -> bool:
            return self.view is not None or self.open_failed

        if input.submission.expires_at is None or not workflow.patched(RECORD_IS_TRUTH):
            await workflow.wait_condition(opened)
            return
        # A submission whose `open` never came must not leave the run waiting for ever: past the
        # submission's deadline it can no longer be recorded, so the run fails.
        await wait_for_opening(opened, input.submission.expires_at, self.lock, "submission deadline")

    def _history_is_long(self) -> bool:
        return history_is_long(self.input.max_history)

    async def _wait_for_change_or_deadline(self, view: ChainView) -> None:
        def changed() -> bool:
            return self.view is None or self.view.version != view.version or self._history_is_long()

        deadline = view.next_deadline(frozenset(self.fired))
        if deadline is None:
            await workflow.wait_condition(changed)
            return
        wait = (deadline.due_at - workflow.now()).total_seconds()
        if wait > 0:
            assert view.stage is not None
            try:
                await workflow.wait_condition(changed, timeout=wait,
                                              timeout_summary=timer_summary(view.stage.name, deadline))
                return
            except asyncio.TimeoutError:
                pass
        async with self.lock:
            if changed():
                return
            assert view.stage is not None
            # One id per deadline, whatever else the task holds, so a replayed timer records once.
            command_id = view.deadline_id(deadline)
            self.fired.add(command_id)
            await self._record(ChainActivities.record_deadline, FireDeadline(
                stage_index=view.stage.index, opened_at=view.stage.opened_at.isoformat(), kind=deadline.kind,
                level=deadline.level), command_id)

    # ---- updates ------------------------------------------------------------------------------
    @workflow.update
    async def open(self) -> ChainView:
        """Record the submission (once) and answer the chain's first view."""
        async with self.lock:
            if self.view is None:
                try:
                    if workflow.patched(RECORD_IS_TRUTH):
                        await asyncio.sleep(0)  # an abandon signal that came in the same task lands first
                        self._refuse_if_abandoned()
                    await self._record(ChainActivities.record_submission, self.input.submission, "submission")
                except ApplicationError:
                    self.open_failed = True
                    raise
            assert self.view is not None
            return self.view

    @open.validator
    def _validate_open(self) -> None:
        self._refuse_if_abandoned()

    @workflow.update
    async def decide(self, cmd: Decide) -> ChainView:
        return await self._command(ChainActivities.record_decision, cmd)

    @decide.validator
    def _validate_decide(self, cmd: Decide) -> None:
        self._validate(cmd)

    @workflow.update
    async def submit_revision(self, cmd: SubmitRevision) -> ChainView:
        return await self._command(ChainActivities.record_revision, cmd)

    @submit_revision.validator
    def _validate_revision(self, cmd: SubmitRevision) -> None:
        self._validate(cmd)

    @workflow.update
    async def withdraw(self, cmd: Withdraw) -> ChainView:
        return await self._command(ChainActivities.record_withdrawal, cmd)

    @withdraw.validator
    def _validate_withdraw(self, cmd: Withdraw) -> None:
        self._validate(cmd)

    @workflow.update
    async def reassign(self, cmd: Reassign) -> ChainView:
        return await self._command(ChainActivities.record_reassignment, cmd)

    @reassign.validator
    def _validate_reassign(self, cmd: Reassign) -> None:
        self._validate(cmd)

    @workflow.update
    async def refresh(self) -> ChainView | None:
        """Take the record's current view as the chain's own. The API calls this when the workflow
        refused a command on a view older than the record (a recording whose answer was lost)."""
        async with self.lock:
            if self.view is not None:
                self.view = await workflow.execute_local_activity(
                    ChainActivities.read_view, self.input.deliverable_id, result_type=ChainView,
                    start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
            return self.view

    @workflow.signal
    def abandon(self, update_id: str) -> None:
        """The caller of this update has gone: if it is not yet recorded, it never will be."""
        self.abandoned = remember_abandoned(self.abandoned, update_id)

    @workflow.query
    def current(self) -> ChainView | None:
        return self.view

    # ---- helpers ------------------------------------------------------------------------------
    def _refuse_if_abandoned(self) -> None:
        refuse_if_abandoned(self.abandoned)

    def _validate(self, cmd: Command, expiry: bool = False) -> None:
        self._refuse_if_abandoned()
        # Only chains from before RECORD_IS_TRUTH check expiry here; the record checks it now, after
        # looking whether it already holds the command (a recording whose answer was lost).
        if expiry and cmd.expires_at is not None and workflow.now() > cmd.expires_at:
            raise refuse(CommandExpired("the command came after its caller had stopped waiting for it"))
        if self.view is None:
            return  # not opened yet: the handler waits for the lock and the aggregate decides
        try:
            rules.check(self.view, cmd)
        except DomainError as exc:
            raise refuse(exc, self.view) from None

    async def _command(self, activity: Any, cmd: Command) -> ChainView:
        async with self.lock:
            if workflow.patched(RECORD_IS_TRUTH):
                await asyncio.sleep(0)  # an abandon signal that came in the same task lands first
                self._validate(cmd)  # again: a command ahead of this one may have changed the view
            else:
                self._validate(cmd, expiry=True)
            info = workflow.current_update_info()
            assert info is not None
            # The update's own id names the command: stable across task retries, unique per command.
            return await self._record(activity, cmd, f"update:{info.id}")

    async def _record(self, activity: Any, cmd: Command, name: str) -> ChainView:
        # The chain names the deliverable and the command: a command can touch no other
        # deliverable, and its id stays the same however often the task is retried.
        stamped = cmd.model_copy(update={"deliverable_id": self.input.deliverable_id,
                                         "command_id": f"{workflow.info().workflow_id}:{name}"})
        try:
            self.view = await workflow.execute_local_activity(
                activity, stamped, result_type=ChainView,
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
        except (ActivityError, ApplicationError) as exc:
            refused = refusal_of(exc)
            if refused is None:
                raise
            if refused.details and workflow.patched(RECORD_IS_TRUTH):
                # The record refused what this view allowed: the view was behind; the record wins.
                self.view = ChainView.model_validate(refused.details[0])
            raise ApplicationError(refused.message, type=refused.type, non_retryable=True) from None
        return self.view
