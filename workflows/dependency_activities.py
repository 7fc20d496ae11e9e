"""Activities of the dependency watch: thin calls into the domain application that record each
accepted command, as local activities. At-least-once; the command id makes a repeat a no-op. One
per use case, so a history names what it recorded."""

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.application import Signoff
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    DependencyCommand,
    FireDependencyDeadline,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_state import WatchView
from domain.errors import ConcurrentChange, DomainError


class DependencyActivities:
    def __init__(self, app: Signoff):
        self.app = app

    @activity.defn
    async def record_dependency_opening(self, cmd: OpenDependency) -> WatchView:
        return await self._run(self.app.opened_dependency, cmd)

    @activity.defn
    async def record_dependency_acknowledgement(self, cmd: Acknowledge) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    @activity.defn
    async def record_dependency_progress(self, cmd: ReportProgress) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    @activity.defn
    async def record_dependency_resolution(self, cmd: Resolve) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    @activity.defn
    async def record_dependency_cancellation(self, cmd: Cancel) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    @activity.defn
    async def record_dependency_reassignment(self, cmd: ReassignOwner) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    @activity.defn
    async def record_dependency_deadline(self, cmd: FireDependencyDeadline) -> WatchView:
        return await self._run(self.app.changed_dependency, cmd)

    def all(self) -> list[Callable[..., Any]]:
        return [self.record_dependency_opening, self.record_dependency_acknowledgement, self.record_dependency_progress, self.record_dependency_resolution,
                self.record_dependency_cancellation, self.record_dependency_reassignment, self.record_dependency_deadline]

    async def _run(self, use_case: Callable[[Any], Any], cmd: DependencyCommand) -> WatchView:
        try:
            return (await asyncio.to_thread(use_case, cmd)).to_watch()
        except ConcurrentChange as exc:
            # Another write got in first: a retry reloads, and the command id keeps it single.
            raise ApplicationError(exc.detail, type=type(exc).__name__) from exc
        except DomainError as exc:
            # The record's current view goes with the refusal: a watch that allowed the command on
            # its own view was behind the record, and takes this view as its own.
            current = await asyncio.to_thread(self._view_if_any, cmd.dependency_id)
            raise ApplicationError(exc.detail, *([current.model_dump(mode="json")] if current else []),
                                   type=type(exc).__name__, non_retryable=True) from exc

    def _view_if_any(self, dependency_id: str) -> WatchView | None:
        try:
            return self.app.dependency_watch(dependency_id)
        except DomainError:
            return None
