"""Activities: thin calls into the domain application that record each accepted command.

They run as local activities (no extra trip through the Temporal server); they are at-least-once,
and the command id each carries makes a repeat a no-op in the aggregate. There is one per use case
only because the recorded histories name them.
"""

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.application import Signoff
from domain.commands import (
    Command,
    Decide,
    FireDeadline,
    Reassign,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.deliverable_state import ChainView
from domain.errors import ConcurrentChange, DomainError


class ChainActivities:
    def __init__(self, app: Signoff):
        self.app = app

    @activity.defn
    async def record_submission(self, cmd: SubmitDeliverable) -> ChainView:
        return await self._run(self.app.submit_deliverable, cmd)

    @activity.defn
    async def record_decision(self, cmd: Decide) -> ChainView:
        return await self._run(self.app.change_deliverable, cmd)

    @activity.defn
    async def record_revision(self, cmd: SubmitRevision) -> ChainView:
        return await self._run(self.app.change_deliverable, cmd)

    @activity.defn
    async def record_withdrawal(self, cmd: Withdraw) -> ChainView:
        return await self._run(self.app.change_deliverable, cmd)

    @activity.defn
    async def record_reassignment(self, cmd: Reassign) -> ChainView:
        return await self._run(self.app.change_deliverable, cmd)

    @activity.defn
    async def record_deadline(self, cmd: FireDeadline) -> ChainView:
        return await self._run(self.app.change_deliverable, cmd)

    def all(self) -> list[Callable[..., Any]]:
        return [self.record_submission, self.record_decision, self.record_revision, self.record_withdrawal,
                self.record_reassignment, self.record_deadline, self.read_view]

    @activity.defn
    async def read_view(self, deliverable_id: str) -> ChainView:
        """The record's view of the chain, for a workflow whose own view fell behind the record."""
        return await asyncio.to_thread(self.app.chain_view, deliverable_id)

    async def _run(self, use_case: Callable[[Any], ChainView], cmd: Command) -> ChainView:
        try:
            return await asyncio.to_thread(use_case, cmd)
        except ConcurrentChange as exc:
            # Another write got in first: a retry reloads, and the command id keeps it single.
            raise ApplicationError(exc.detail, type=type(exc).__name__) from exc
        except DomainError as exc:
            # The record's current view goes with the refusal: a workflow that allowed the command
            # on its own view was behind the record, and takes this view as its own.
            current = await asyncio.to_thread(self._view_if_any, cmd.deliverable_id)
            raise ApplicationError(exc.detail, *([current.model_dump(mode="json")] if current else []),
                                   type=type(exc).__name__, non_retryable=True) from exc

    def _view_if_any(self, deliverable_id: str) -> ChainView | None:
        try:
            return self.app.chain_view(deliverable_id)
        except DomainError:
            return None
