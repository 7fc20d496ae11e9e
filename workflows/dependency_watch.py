"""DependencyWatchWorkflow: keeps one dependency, id `dependency-{id}`, until it is resolved or cancelled.

It holds the dependency's last recorded watch view (its pending deadlines and the run of the stall
clock they belong to), serialises the owner's and requester's commands, and sleeps until the next
deadline: the reminder, the stall, each escalation step counted from the stall, and overdue at
needed-by. Each deadline is recorded by a local activity under an id made of its kind, level and
clock run, so a replayed timer or a retried recording records it once. The rules live in the
domain: the API asks them before it sends a command, the aggregate asks them again when recording.
"""

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.dependency_commands import (
        Acknowledge,
        Cancel,
        DependencyCommand,
        FireDependencyDeadline,
        ReassignOwner,
        ReportProgress,
        Resolve,
    )
    from domain.dependency_state import NextDeadline, WatchView
    from domain.errors import DependencyClosed
    from workflows.dependency_activities import DependencyActivities
    from workflows.messages import WatchInput
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



def deadline_id(view: WatchView, deadline: NextDeadline) -> str:
    """One id per deadline of one run of the stall clock: `stall-0-2026-11-27T09:00:00+00:00`."""
    return f"{deadline.kind}-{deadline.level}-{view.clock_started_at.isoformat()}"


def timer_summary(deadline: NextDeadline) -> str:
    """What the deadline's timer shows in the Web UI and `temporal workflow show`, with the due time
    it was computed for: "escalation level 1 due 2026-11-30T10:00:00+00:00"."""
    what = {"escalation": f"escalation level {deadline.level}"}.get(deadline.kind, deadline.kind)
    return f"{what} due {deadline.due_at.isoformat()}"


@workflow.defn
class DependencyWatchWorkflow:
    @workflow.init
    def __init__(self, input: WatchInput) -> None:
        self.input = input
        self.view: WatchView | None = input.view
        self.lock = asyncio.Lock()
        self.open_failed = False
        # Deadlines recorded in this run: a recording that changed nothing is never retried in a loop.
        self.fired: set[str] = set()
        self.abandoned: list[str] = []

    @workflow.run
    async def run(self, input: WatchInput) -> WatchView | None:
        await self._wait_for_opening(input)
        if self.view is None:
            raise ApplicationError("the dependency was refused and not recorded", type="SubmissionRefused",
                                   non_retryable=True)
        while not self.view.closed:
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self.input.model_copy(update={"view": self.view}))
            await self._wait_for_change_or_deadline(self.view)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    async def _wait_for_opening(self, input: WatchInput) -> None:
        def opened() -> bool:
            return self.view is not None or self.open_failed

        if input.opening.expires_at is None:
            await workflow.wait_condition(opened)
        else:  # an opening that never came cannot be recorded past its deadline: the run ends
            await wait_for_opening(opened, input.opening.expires_at, self.lock, "opening deadline")

    def _history_is_long(self) -> bool:
        return history_is_long(self.input.max_history)

    async def _wait_for_change_or_deadline(self, view: WatchView) -> None:
        def changed() -> bool:
            return self.view is None or self.view.version != view.version or self._history_is_long()

        deadline = next((d for d in view.deadlines if deadline_id(view, d) not in self.fired), None)
        if deadline is None:
            await workflow.wait_condition(changed)
            return
        wait = (deadline.due_at - workflow.now()).total_seconds()
        if wait > 0:
            try:
                await workflow.wait_condition(changed, timeout=wait, timeout_summary=timer_summary(deadline))
                return
            except asyncio.TimeoutError:
                pass
        async with self.lock:
            if changed():
                return
            name = deadline_id(view, deadline)
            self.fired.add(name)
            await self._record(DependencyActivities.record_dependency_deadline, FireDependencyDeadline(
                kind=deadline.kind, level=deadline.level, clock_started_at=view.clock_started_at,
                due_at=deadline.due_at), name)

    # ---- updates ------------------------------------------------------------------------------
    @workflow.update
    async def open(self) -> WatchView:
        """Record the opening (once) and answer the dependency's first watch view."""
        async with self.lock:
            if self.view is None:
                try:
                    await asyncio.sleep(0)  # an abandon signal that came in the same task lands first
                    self._refuse_if_abandoned()
                    await self._record(DependencyActivities.record_dependency_opening, self.input.opening, "opening")
                except ApplicationError:
                    self.open_failed = True
                    raise
            assert self.view is not None
            return self.view

    @open.validator
    def _validate_open(self) -> None:
        self._refuse_if_abandoned()

    @workflow.update
    async def acknowledge(self, cmd: Acknowledge) -> WatchView:
        return await self._command(DependencyActivities.record_dependency_acknowledgement, cmd)

    @acknowledge.validator
    def _validate_acknowledge(self, cmd: Acknowledge) -> None:
        self._validate()

    @workflow.update
    async def progress(self, cmd: ReportProgress) -> WatchView:
        return await self._command(DependencyActivities.record_dependency_progress, cmd)

    @progress.validator
    def _validate_progress(self, cmd: ReportProgress) -> None:
        self._validate()

    @workflow.update
    async def resolve(self, cmd: Resolve) -> WatchView:
        return await self._command(DependencyActivities.record_dependency_resolution, cmd)

    @resolve.validator
    def _validate_resolve(self, cmd: Resolve) -> None:
        self._validate()

    @workflow.update
    async def cancel(self, cmd: Cancel) -> WatchView:
        return await self._command(DependencyActivities.record_dependency_cancellation, cmd)

    @cancel.validator
    def _validate_cancel(self, cmd: Cancel) -> None:
        self._validate()

    @workflow.update
    async def reassign(self, cmd: ReassignOwner) -> WatchView:
        return await self._command(DependencyActivities.record_dependency_reassignment, cmd)

    @reassign.validator
    def _validate_reassign(self, cmd: ReassignOwner) -> None:
        self._validate()

    @workflow.signal
    def abandon(self, update_id: str) -> None:
        """The caller of this update has gone: if it is not yet recorded, it never will be."""
        self.abandoned = remember_abandoned(self.abandoned, update_id)

    @workflow.query
    def current(self) -> WatchView | None:
        return self.view

    # ---- helpers ------------------------------------------------------------------------------
    def _refuse_if_abandoned(self) -> None:
        refuse_if_abandoned(self.abandoned)

    def _validate(self) -> None:
        """What the watch can tell from its own view; who may do what needs the projects, which the
        API asks before sending and the record asks again."""
        self._refuse_if_abandoned()
        if self.view is not None and self.view.closed:
            raise refuse(DependencyClosed(f"the dependency is {self.view.status}"), self.view)

    async def _command(self, activity: Any, cmd: DependencyCommand) -> WatchView:
        async with self.lock:
            await asyncio.sleep(0)  # an abandon signal that came in the same task lands first
            self._validate()  # again: a command ahead of this one may have closed it
            info = workflow.current_update_info()
            assert info is not None
            # The update's own id names the command: stable across task retries, unique per command.
            return await self._record(activity, cmd, f"update:{info.id}")

    async def _record(self, activity: Any, cmd: DependencyCommand, name: str) -> WatchView:
        # The watch names the dependency and the command: a command can touch no other dependency,
        # and its id stays the same however often the task is retried.
        stamped = cmd.model_copy(update={"dependency_id": self.input.dependency_id,
                                         "command_id": f"{workflow.info().workflow_id}:{name}"})
        try:
            self.view = await workflow.execute_local_activity(
                activity, stamped, result_type=WatchView,
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
        except (ActivityError, ApplicationError) as exc:
            refused = refusal_of(exc)
            if refused is None:
                raise
            if refused.details:
                # The record refused what this view allowed: the view was behind; the record wins.
                self.view = WatchView.model_validate(refused.details[0])
            raise ApplicationError(refused.message, type=refused.type, non_retryable=True) from None
        return self.view
