"""What every Signoff workflow shares about recording: how long a recording may take, how it is
retried, and how a domain refusal becomes the ApplicationError that ends an update."""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import DomainError

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
