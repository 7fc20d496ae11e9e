"""A Signoff worker that dies or fails at named points, for the crash tests; production never loads it.

`python -m tests.fault_worker` runs it like `signoff worker`, with SIGNOFF_FAULTS naming the fault:
- `kill-after-record:MARK` kills the worker (SIGKILL) right after a decision whose comment contains
  MARK is durably recorded, before Temporal hears of it;
- `raise-after-record:MARK` makes that activity attempt fail once after recording;
- `kill-after-deadline:KIND` kills the worker right after a deadline of that kind is recorded;
- `kill-after-dependency-deadline:KIND` kills it right after a dependency watch's deadline of that
  kind (reminder, stall, escalation, overdue) is recorded, before Temporal hears of it;
- `kill-after-webhook-sent` kills it right after a webhook receiver answered 2xx, before the attempt's
  result reaches Temporal (so before the outcome is recorded).
Each proves that a retried recording is a no-op and nothing accepted is lost. The activities keep
their names, so the workflow cannot tell them from the real ones.
"""

import functools
import os
import signal

from temporalio import activity

from config.settings import Settings
from domain.application import Signoff
from domain.commands import Decide, FireDeadline
from domain.deliverable_state import ChainView
from domain.dependency_commands import FireDependencyDeadline
from domain.dependency_state import WatchView
from workers.cli import run_worker
from workflows.activities import ChainActivities
from workflows.delivery_activities import Attempted, DeliveryActivities, DeliveryInput
from workflows.dependency_activities import DependencyActivities


class FaultyActivities(ChainActivities):
    def __init__(self, app: Signoff, fault: str):
        super().__init__(app)
        self.fault, _, self.arg = fault.partition(":")

    @activity.defn(name="record_decision")
    async def record_decision(self, cmd: Decide) -> ChainView:
        view = await super().record_decision(cmd)
        if self.arg and self.arg in cmd.comment:
            if self.fault == "kill-after-record":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "raise-after-record" and activity.info().attempt == 1:
                raise RuntimeError("injected fault after the decision was recorded")
        return view

    @activity.defn(name="record_deadline")
    async def record_deadline(self, cmd: FireDeadline) -> ChainView:
        view = await super().record_deadline(cmd)
        if self.fault == "kill-after-deadline" and self.arg == cmd.kind:
            os.kill(os.getpid(), signal.SIGKILL)
        return view


class FaultyDependencyActivities(DependencyActivities):
    def __init__(self, app: Signoff, fault: str):
        super().__init__(app)
        self.fault, _, self.arg = fault.partition(":")

    @activity.defn(name="record_dependency_deadline")
    async def record_dependency_deadline(self, cmd: FireDependencyDeadline) -> WatchView:
        view = await super().record_dependency_deadline(cmd)
        if self.fault == "kill-after-dependency-deadline" and self.arg == cmd.kind:
            os.kill(os.getpid(), signal.SIGKILL)
        return view


class FaultyDeliveryActivities(DeliveryActivities):
    def __init__(self, app: Signoff, settings: Settings, fault: str):
        super().__init__(app, settings)
        self.fault = fault

    @activity.defn(name="send_webhook")
    async def send_webhook(self, input: DeliveryInput) -> Attempted:
        sent = await super().send_webhook(input)
        if self.fault == "kill-after-webhook-sent" and sent.outcome == "delivered":
            os.kill(os.getpid(), signal.SIGKILL)
        return sent


def faulty(fault: str) -> functools.partial[FaultyActivities]:
    """What build_worker takes as `activities`: the app in, activities with `fault` out."""
    return functools.partial(FaultyActivities, fault=fault)


def faulty_dependencies(fault: str) -> functools.partial[FaultyDependencyActivities]:
    """What build_worker takes as `dependency_activities`: the app in, activities with `fault` out."""
    return functools.partial(FaultyDependencyActivities, fault=fault)


def faulty_deliveries(fault: str) -> functools.partial[FaultyDeliveryActivities]:
    """What build_worker takes as `delivery_activities`: the app and settings in, activities with `fault` out."""
    return functools.partial(FaultyDeliveryActivities, fault=fault)


if __name__ == "__main__":
    fault = os.environ.get("SIGNOFF_FAULTS", "")
    run_worker(Settings(), faulty(fault), faulty_dependencies(fault), faulty_deliveries(fault))
