"""The notifier: follows the event store's notification log and starts one DeliveryWorkflow per
message per subscribed webhook, so telling people never sits in a chain's or a watch's path.

Its position is eventsourcing's own tracking record (`TrackingRecorder`: a table `tracking` in a file
of its own beside a SQLite store, `signoff_notifier_tracking` on PostgreSQL). A delivery's workflow
id is derived from the webhook and the event, so a notifier that crashes between starting deliveries
and recording its position starts the same ids again, and Temporal refuses the duplicates: each
message reaches each webhook once. Every worker runs one; they share the position.
"""

import asyncio
import logging
from datetime import datetime
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    PersistenceError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, get_topic
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from config.settings import Settings
from domain.application import Signoff
from domain.deliverable import Deliverable
from domain.delivery import delivery_id
from domain.dependency import Dependency
from domain.notifications import Message, RecordedEvent, Subject, messages_for
from domain.project import Project
from store.events import is_postgres, store_env
from workflows.delivery import DeliveryRun, DeliveryWorkflow, delivery_workflow_id

log = logging.getLogger("signoff.notifier")
NAME = "signoff_notifier"
BATCH = 100
# The events that can make a message (domain/notifications.py): the notifier reads no others.
EVENTS = [Deliverable.StageOpened, Deliverable.ReminderSent, Deliverable.Escalated, Deliverable.Approved,
          Deliverable.Rejected, Deliverable.ChangesRequested, Dependency.ReminderSent, Dependency.Stalled,
          Dependency.Escalated, Dependency.BecameOverdue, Dependency.Resolved]
TOPICS = [get_topic(cls) for cls in EVENTS]
SKIP = {"originator_id", "originator_version", "timestamp"}
MAX_SUMMARY = 200  # characters of a delivery's summary in Temporal (a title may be longer)
# Temporal's answers that pass with time; any other refusal is about the one event.
PASSING = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED,
           RPCStatusCode.CANCELLED, RPCStatusCode.ABORTED}


def transient(exc: Exception) -> bool:
    """The store or Temporal unreachable for now (try again), not something wrong with one event."""
    if isinstance(exc, RPCError):
        return exc.status in PASSING
    # RuntimeError: a lazily connected client that cannot reach Temporal at all.
    return isinstance(exc, (PersistenceError, OSError, RuntimeError))


def tracking_recorder(event_store_url: str) -> TrackingRecorder:
    env = store_env(event_store_url)
    if not is_postgres(env):  # its own file: the table is named `tracking`, whoever tracks
        env = {**env, "SQLITE_DBNAME": str(Path(env["SQLITE_DBNAME"]).with_suffix(".notifier.sqlite"))}
    return InfrastructureFactory.construct(Environment(NAME, env)).tracking_recorder()


class Notifier:
    def __init__(self, app: Signoff, client: Client, settings: Settings, tracking: TrackingRecorder):
        self.app, self.client, self.settings, self.tracking = app, client, settings, tracking
        # Per aggregate, what never changes: its subject, project, whom outcomes go to, stage names,
        # and the other projects whose webhooks hear of it (a dependency's providing project).
        self.subjects: dict[UUID, tuple[Subject, str, str, tuple[str, ...]]] = {}
        self.also_told: dict[UUID, tuple[str, ...]] = {}

    async def run(self, poll_seconds: float = 0.5) -> None:
        while True:
            try:
                await self.catch_up()
            except Exception:  # noqa: BLE001 - a store or Temporal outage: say so, try again
                log.exception("notifier could not catch up; trying again")
            await asyncio.sleep(poll_seconds)

    async def catch_up(self) -> int:
        """Start the deliveries of every notification not yet tracked; answer how many were read."""
        read = 0
        while True:
            position = await asyncio.to_thread(self.tracking.max_tracking_id, self.app.name)
            batch = await asyncio.to_thread(self.app.recorder.select_notifications, start=position, limit=BATCH,
                                            topics=TOPICS, inclusive_of_start=position is None)
            if not batch:
                return read
            for notification in batch:
                try:
                    for run in await asyncio.to_thread(self.deliveries_for, notification):
                        await self._start(run)
                except Exception as exc:  # noqa: BLE001
                    if transient(exc):
                        raise  # the store or Temporal is away: the next catch-up starts here again
                    # One event that cannot be told must not stop every project's messages.
                    log.exception("notification %s made no deliveries; passing over it", notification.id)
                try:
                    await asyncio.to_thread(self.tracking.insert_tracking,
                                            Tracking(application_name=self.app.name, notification_id=notification.id))
                except IntegrityError:
                    pass  # another worker's notifier tracked it first; its deliveries are the same ids
                read += 1

    def deliveries_for(self, notification: Any) -> list[DeliveryRun]:
        uid = notification.originator_id
        subject, project_id, owner, stages = self._subject(uid, notification.topic.partition(":")[2])
        # A dependency's messages go to both sides: the team that owes it hears of its stall too.
        projects = [self.app.read_project(p) for p in (project_id, *self.also_told[uid])]
        if not any(project.webhooks for project in projects):
            return []  # nobody to tell: the event is not even decoded
        event = self.app.mapper.to_domain_event(notification)
        fields = {k: v for k, v in event.__dict__.items() if k not in SKIP}
        if stages and "index" in fields:
            fields["stage_name"] = stages[fields["index"]]
        recorded = RecordedEvent(subject=subject, project_id=project_id, project_name=projects[0].name,
                                 name=type(event).__qualname__.split(".")[-1], version=event.originator_version,
                                 at=fields.get("at") or event.timestamp, fields=fields, owner_of_subject=owner)
        return [self._run(project, webhook, message) for message in messages_for(recorded) for project in projects
                for webhook in subscribed(project.webhooks.values(), message)]

    def _subject(self, uid: UUID, qualname: str) -> tuple[Subject, str, str, tuple[str, ...]]:
        if uid not in self.subjects:
            if len(self.subjects) > 10_000:
                self.subjects.clear()
                self.also_told.clear()
            base = self.settings.public_base_url()
            aggregate = self.app.repository.get(uid, deepcopy_from_cache=False)  # read, never changed
            if qualname.startswith("Deliverable"):
                self.subjects[uid] = (Subject(kind="deliverable", id=str(uid), title=aggregate.title,
                                              url=f"{base}/api/deliverables/{uid}"), aggregate.project_id,
                                      aggregate.submitter, tuple(stage["name"] for stage in aggregate.policy["stages"]))
                self.also_told[uid] = ()
            else:
                self.subjects[uid] = (Subject(kind="dependency", id=str(uid), title=aggregate.title,
                                              url=f"{base}/api/dependencies/{uid}"), aggregate.project_id,
                                      aggregate.created_by, ())
                providing = aggregate.providing_project_id
                self.also_told[uid] = (providing,) if providing and providing != aggregate.project_id else ()
        return self.subjects[uid]

    def _run(self, project: Project, webhook: dict[str, Any], message: Message) -> DeliveryRun:
        uid = str(delivery_id(webhook["id"], message.key, message.type))
        s = self.settings
        return DeliveryRun(delivery_id=uid, project_id=str(project.id), webhook_id=webhook["id"], url=webhook["url"],
                           message=message, budget_seconds=s.webhook_budget_seconds,
                           attempt_timeout_seconds=s.webhook_attempt_timeout_seconds,
                           first_retry_seconds=s.webhook_first_retry_seconds)

    async def _start(self, run: DeliveryRun) -> None:
        try:
            await self.client.start_workflow(
                DeliveryWorkflow.run, run, id=delivery_workflow_id(run.delivery_id), task_queue=self.settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=f"{run.message.type}: {run.message.body['data']['subject']['title']}"[:MAX_SUMMARY])
        except WorkflowAlreadyStartedError:
            pass  # started before this notifier's position was recorded: the same delivery


def subscribed(webhooks: Iterable[dict[str, Any]], message: Message) -> list[dict[str, Any]]:
    """The webhooks that take `message`: of its type (or all types), added before it happened."""
    return [w for w in webhooks if (w["events"] is None or message.type in w["events"])
            and message.timestamp >= datetime.fromisoformat(w["added_at"])]
