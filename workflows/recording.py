"""What every Signoff workflow shares about recording: how long a recording may take, how it is
retried, and how a domain refusal becomes the ApplicationError that ends an update."""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import CommandAbandoned, DomainError

# Abandoned update ids kept per run: enough for every client that could give up meanwhile.
MAX_ABANDONED = 1000
# How long past its deadline a run waits for an opening that may still be on its way to the worker.
OPEN_GRACE_SECONDS = 5
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=5))


def refuse(exc: DomainError, view: Any = None) -> ApplicationError:
    # The view's version goes with the refusal, so a caller can tell a workflow behind the record;
    # and the field a rule refusal names, so the caller can say which field breaks it.
    details = [{"view_version": view.version, "field": list(getattr(exc, "field", ()))}] if view is not None else []
    return ApplicationError(exc.detail, *details, type=type(exc).__name__, non_retryable=True)


def refusal_of(exc: ActivityError | ApplicationError) -> ApplicationError | None:
    """The domain's refusal inside a failed local activity, or None for any other failure.
    A local activity's failure may arrive as the ActivityError or as its cause itself."""
    refused = exc.cause if isinstance(exc, ActivityError) else exc
    return refused if isinstance(refused, ApplicationError) else None


def history_is_long(max_history: int) -> bool:
    """Time to continue as new: the server suggests it, or the run passed its own bound."""
    info = workflow.info()
    return info.is_continue_as_new_suggested() or info.get_current_history_length() >= max_history


async def wait_for_opening(opened: Callable[[], bool], expires_at: datetime, lock: asyncio.Lock,
                           summary: str) -> None:
    """Wait for the run's opening update. One that never came (its caller gone, the server
    restarting) cannot be recorded past `expires_at`: the run stops waiting then, unless an opening
    is under way (holds the lock)."""
    wait = max((expires_at - workflow.now()).total_seconds(), 0.0) + OPEN_GRACE_SECONDS
    try:
        await workflow.wait_condition(opened, timeout=wait, timeout_summary=summary)
    except asyncio.TimeoutError:
        await workflow.wait_condition(lambda: opened() or not lock.locked())


def remember_abandoned(abandoned: list[str], update_id: str) -> list[str]:
    return [*abandoned[-(MAX_ABANDONED - 1):], update_id]


def refuse_if_abandoned(abandoned: list[str]) -> None:
    """Refuse the current update if its caller went away before it was taken up."""
    info = workflow.current_update_info()
    if info is not None and info.id in abandoned:
        raise refuse(CommandAbandoned("the caller went away before the command was taken up"))
