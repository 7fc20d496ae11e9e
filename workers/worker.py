"""The Temporal worker process: runs the workflows and the activities that record into the event store."""

import asyncio
import logging

from temporalio.client import Client
from temporalio.worker import Worker

from domain.application import Signoff
from domain.storage import open_application
from workers.settings import Settings
from workflows.activities import ChainActivities
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.codec import data_converter

log = logging.getLogger("signoff.worker")
WORKFLOWS = [ApprovalChainWorkflow]


async def connect(settings: Settings, lazy: bool = False) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                data_converter=data_converter(settings), lazy=lazy)


def build_worker(client: Client, app: Signoff, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=ChainActivities(app).all())


async def run_worker(settings: Settings) -> None:
    app = open_application(settings.event_store_url())
    client = await connect(settings)
    log.info("worker on task queue %s at %s", settings.task_queue, settings.temporal_address)
    try:
        await build_worker(client, app, settings.task_queue).run()
    except asyncio.CancelledError:
        pass
    finally:
        app.close()
