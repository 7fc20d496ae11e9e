"""DeliveryWorkflow, id `delivery-{id}` (a retry run: `delivery-{id}-run-{n}`): one message to one
webhook, off the path of every chain and watch. It records the delivery, sends with retries
spaced by Temporal (from a second, doubling, at most an hour apart, for the configured budget),
and records how the run ended: delivered, unsubscribed (410), skipped (webhook removed) or failed
with the last status. The budget becomes a number of attempts (those that begin within it), so the
last attempt always ends and is counted."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.delivery_activities import Attempted, DeliveryActivities, DeliveryInput, Outcome
    from workflows.recording import RECORD_RETRY, RECORD_TIMEOUT


class DeliveryRun(DeliveryInput):
    budget_seconds: float
    attempt_timeout_seconds: float
    first_retry_seconds: float = 1.0


MAX_INTERVAL_SECONDS = 3600.0  # retries at most an hour apart


def delivery_workflow_id(delivery_id: str, run: int = 1) -> str:
    return f"delivery-{delivery_id}" if run == 1 else f"delivery-{delivery_id}-run-{run}"


@workflow.defn
class DeliveryWorkflow:
    @workflow.run
    async def run(self, input: DeliveryRun) -> Outcome:
        plain = DeliveryInput.model_validate(input.model_dump(include=set(DeliveryInput.model_fields)))
        await workflow.execute_local_activity(DeliveryActivities.open_delivery, plain,
                                              start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
        first, longest = input.first_retry_seconds, min(MAX_INTERVAL_SECONDS, input.budget_seconds)
        try:
            # A number of attempts, not a deadline: an attempt cut off by a deadline may have been
            # answered 2xx all the same, and would be recorded as failed. Each attempt ends on its own.
            sent: Attempted = await workflow.execute_activity(
                DeliveryActivities.send_webhook, plain, result_type=Attempted,
                start_to_close_timeout=timedelta(seconds=input.attempt_timeout_seconds + 5),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=first), backoff_coefficient=2.0,
                                         maximum_interval=timedelta(seconds=longest),
                                         maximum_attempts=attempts_within(input.budget_seconds, first, longest)),
                summary=f"{input.message.type} to webhook {input.webhook_id}")
            outcome = Outcome(delivery_id=input.delivery_id, run=input.run, outcome=sent.outcome,
                              attempts=sent.attempts, last_status=sent.status)
        except ActivityError as exc:
            status, attempts, error = last_failure(exc)
            outcome = Outcome(delivery_id=input.delivery_id, run=input.run, outcome="failed", attempts=attempts,
                              last_status=status, error=error)
        await workflow.execute_local_activity(DeliveryActivities.record_delivery_outcome, outcome,
                                              start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY)
        return outcome


def attempts_within(budget_seconds: float, first_seconds: float, longest_seconds: float) -> int:
    """How many attempts begin within the budget: the first at once, then each after its backoff
    (doubling from `first_seconds`, at most `longest_seconds`)."""
    attempts, elapsed, interval = 1, 0.0, first_seconds
    while elapsed + interval <= budget_seconds:
        elapsed += interval
        attempts += 1
        interval = min(interval * 2, longest_seconds)
    return attempts


def last_failure(exc: ActivityError) -> tuple[int | None, int, str]:
    """The last attempt's status, its number and why it failed, from the error the attempts ended with."""
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause
    if cause is None:
        return None, 1, str(exc.cause or exc)
    details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    return details.get("status"), int(details.get("attempt") or 1), cause.message
