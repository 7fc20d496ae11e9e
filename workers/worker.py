"""The Temporal worker process: runs the workflows and the activities that record into the event store."""

import asyncio
import logging
from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from config.settings import Settings
from domain.application import Signoff
from store.events import open_application
from workers.notifier import Notifier, tracking_recorder
from workflows.activities import ChainActivities
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import connect
from workflows.delivery import DeliveryWorkflow
from workflows.delivery_activities import DeliveryActivities
from workflows.dependency_activities import DependencyActivities
from workflows.dependency_watch import DependencyWatchWorkflow

log = logging.getLogger("signoff.worker")
WORKFLOWS = [ApprovalChainWorkflow, DependencyWatchWorkflow, DeliveryWorkflow]


def build_worker(client: Client, app: Signoff, task_queue: str,
                 activities: Callable[[Signoff], ChainActivities] = ChainActivities,
                 dependency_activities: Callable[[Signoff], DependencyActivities] = DependencyActivities,
                 settings: Settings | None = None,
                 delivery_activities: Callable[[Signoff, Settings], DeliveryActivities] = DeliveryActivities) -> Worker:
    deliveries = delivery_activities(app, settings or Settings())
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS,
                  activities=activities(app).all() + dependency_activities(app).all() + deliveries.all(),
                  workflow_runner=UnsandboxedWorkflowRunner())


async def run_worker(settings: Settings,
                     activities: Callable[[Signoff], ChainActivities] = ChainActivities,
                     dependency_activities: Callable[[Signoff], DependencyActivities] = DependencyActivities,
                     delivery_activities: Callable[[Signoff, Settings], DeliveryActivities] = DeliveryActivities) -> None:
    app = open_application(settings.event_store_url())
    client = await connect(settings)
    log.info("worker on task queue %s at %s", settings.task_queue, settings.temporal_address)
    # Each worker follows the log for messages to deliver (workers/notifier.py): they share one position.
    notifier = asyncio.ensure_future(
        Notifier(app, client, settings, tracking_recorder(settings.event_store_url())).run())
    try:
        await build_worker(client, app, settings.task_queue, activities, dependency_activities, settings,
                           delivery_activities).run()
    except asyncio.CancelledError:
        pass
    finally:
        notifier.cancel()
        app.close()
