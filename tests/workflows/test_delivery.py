"""DeliveryWorkflow on the real dev server against a real local receiver that verifies signatures
with `standardwebhooks`: retries until 2xx, gives up after its budget with one `failed` outcome,
unsubscribes on 410, and keeps one `webhook-id` across attempts."""

import uuid
from datetime import UTC, datetime

import pytest

from config.settings import Settings
from domain.delivery import delivery_id, webhook_message_id
from domain.notifications import Message
from domain.webhooks import derive_secret
from tests.builders import make_project
from tests.receiver import Receiver
from workers.worker import build_worker
from workflows.delivery import DeliveryRun, DeliveryWorkflow, delivery_workflow_id

SETTINGS = Settings(allow_local_webhooks=True, webhook_key="test-webhook-key")


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
async def deliveries(temporal_env, sqlite_app, receiver):
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    project_id = make_project(sqlite_app)
    project = sqlite_app.get_project(project_id)
    [webhook_id] = project.set_webhooks("paula", "PMO channel", [{"url": receiver.url()}], uuid.uuid4)
    sqlite_app.save(project)
    receiver.secrets["/hook"] = derive_secret(SETTINGS.webhook_key.encode(), webhook_id, 1)

    async def deliver(budget: float = 30.0) -> tuple[str, object]:
        message = Message(key=f"{uuid.uuid4()}:3", type="escalation.raised", timestamp=datetime.now(UTC),
                          project_id=project_id, recipients=["pete"],
                          body={"type": "escalation.raised", "timestamp": datetime.now(UTC).isoformat(),
                                "data": {"project": {"id": project_id, "name": "Northwind"},
                                         "subject": {"kind": "deliverable", "id": "d", "title": "Homepage mockups",
                                                     "url": "http://x/api/deliverables/d"},
                                         "recipients": ["pete"], "level": 1},
                                "text": "Escalation level 1: Homepage mockups has waited too long"})
        uid = str(delivery_id(webhook_id, message.key, message.type))
        run = DeliveryRun(delivery_id=uid, project_id=project_id, webhook_id=webhook_id, url=receiver.url(),
                          message=message, budget_seconds=budget, attempt_timeout_seconds=2,
                          first_retry_seconds=0.2)
        outcome = await temporal_env.client.execute_workflow(DeliveryWorkflow.run, run, id=delivery_workflow_id(uid),
                                                             task_queue=task_queue)
        return uid, outcome

    async with build_worker(temporal_env.client, sqlite_app, task_queue, settings=SETTINGS):
        yield deliver, webhook_id, project_id


async def test_three_failures_then_200_is_four_attempts_and_one_delivered_outcome(deliveries, receiver, sqlite_app):
    deliver, webhook_id, _ = deliveries
    receiver.answers = [500, 503, 500]
    uid, outcome = await deliver()
    assert (outcome.outcome, outcome.attempts, outcome.last_status) == ("delivered", 4, 200)
    assert [r.answered for r in receiver.received] == [500, 503, 500, 200]
    assert all(r.verified for r in receiver.received)  # standardwebhooks verified every signature
    assert {r.headers["webhook-id"] for r in receiver.received} == {webhook_message_id(uid)}
    state = sqlite_app.get_delivery(uid)
    assert (state["status"], state["attempts"], len(state["outcomes"])) == ("delivered", 4, 1)
    assert receiver.received[0].body["text"].startswith("Escalation level 1")


async def test_a_receiver_that_always_fails_leaves_one_failed_outcome_after_the_budget(deliveries, receiver,
                                                                                     sqlite_app):
    deliver, _, _ = deliveries
    receiver.then = 500
    uid, outcome = await deliver(budget=2.0)
    assert (outcome.outcome, outcome.last_status) == ("failed", 500)
    assert outcome.attempts == len(receiver.received) >= 2
    state = sqlite_app.get_delivery(uid)
    assert (state["status"], state["last_status"], len(state["outcomes"])) == ("failed", 500, 1)


async def test_410_unsubscribes_the_webhook(deliveries, receiver, sqlite_app):
    deliver, webhook_id, project_id = deliveries
    receiver.then = 410
    uid, outcome = await deliver()
    assert (outcome.outcome, outcome.attempts) == ("unsubscribed", 1)
    assert webhook_id not in sqlite_app.get_project(project_id).webhooks
    # A message for a webhook removed meanwhile is skipped, not sent.
    _, later = await deliver()
    assert later.outcome == "skipped" and len(receiver.received) == 1
