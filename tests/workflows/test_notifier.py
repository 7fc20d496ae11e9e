"""The notifier end to end on the real dev server and a real receiver: a scripted chain with an
escalation and a stalled dependency that escalates produce exactly the messages people must get,
each signed (verified with `standardwebhooks`) and delivered once."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import PersistenceError

from config.settings import Settings
from domain.commands import Decide
from domain.dependency_commands import OpenDependency, Resolve
from domain.webhooks import derive_secret
from tests.builders import MEMBERS, make_policy, submission
from tests.receiver import Receiver
from workers.notifier import TOPICS, Notifier, tracking_recorder
from workers.worker import build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import start_operation
from workflows.dependency_client import open_watch, send_to_watch
from workflows.messages import ChainInput

PROVIDERS = [{"user": "omar", "roles": ["eng"]}, {"user": "pia", "roles": ["pm"]}]
SPEC = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any",
                    "escalation": [{"after": "PT1S", "notify": ["pm"]}]}]}


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def test_a_scripted_chain_and_dependency_deliver_exactly_their_messages(temporal_env, sqlite_app, receiver,
                                                                              tmp_path):
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    settings = Settings(allow_local_webhooks=True, webhook_key="test-key", task_queue=task_queue,
                        webhook_first_retry_seconds=0.2, public_url="https://signoff.example")
    app = sqlite_app
    project = app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula")
    providing = app.create_project("Platform team", PROVIDERS, [], [], "paula")
    [webhook_id] = project.set_webhooks("paula", "PMO channel", [{"url": receiver.url()}], uuid.uuid4)
    app.save(project)
    receiver.secrets["/hook"] = derive_secret(b"test-key", webhook_id, 1)
    # The platform team's own channel: it hears of the dependency it owes, not of Northwind's reviews.
    [platform_hook] = providing.set_webhooks("paula", "platform channel", [{"url": receiver.url("/platform")}],
                                             uuid.uuid4)
    app.save(providing)
    receiver.secrets["/platform"] = derive_secret(b"test-key", platform_hook, 1)
    tracking = tracking_recorder(f"sqlite:///{tmp_path / 'events.sqlite'}")
    notifier = asyncio.ensure_future(Notifier(app, temporal_env.client, settings, tracking).run(poll_seconds=0.1))
    try:
        async with build_worker(temporal_env.client, app, task_queue, settings=settings):
            chain = ChainInput(submission=submission(str(project.id), make_policy(app, SPEC)))
            start = start_operation(chain, task_queue)
            await temporal_env.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                        start_workflow_operation=start)
            opening = OpenDependency(actor="alice", dependency_id=str(uuid.uuid4()), project_id=str(project.id),
                                     providing_project_id=str(providing.id), title="Sandbox credentials",
                                     owner={"user": "omar"}, needed_by=datetime.now(UTC) + timedelta(minutes=5),
                                     stall_after="PT1S", escalation=[{"after": "PT0.5S", "notify": ["pm"]}])
            await open_watch(temporal_env.client, task_queue, opening, datetime.now(UTC) + timedelta(seconds=10))
            await until(lambda: "Escalated" in [e["type"] for e in app.deliverable_history(chain.deliverable_id)]
                        and "Escalated" in [e["type"] for e in app.dependency_history(opening.dependency_id)],
                        10, "both escalations")
            handle = await start.workflow_handle()
            await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
            await send_to_watch(temporal_env.client, Resolve(actor="omar", dependency_id=opening.dependency_id,
                                                             note="in the vault"),
                                datetime.now(UTC) + timedelta(seconds=10))
            await until(lambda: len(receiver.received) >= 9, 15, "nine deliveries")
            await asyncio.sleep(1.0)  # nothing more arrives
    finally:
        notifier.cancel()
    platform = sorted(r.body["type"] for r in receiver.received if r.path == "/platform")
    assert platform == ["dependency.resolved", "dependency.stalled", "escalation.raised"]
    got = sorted((r.body["type"], r.body["data"]["subject"]["kind"], tuple(r.body["data"]["recipients"]))
                 for r in receiver.received if r.path == "/hook")
    assert got == sorted([
        ("review.requested", "deliverable", ("bob",)),
        ("escalation.raised", "deliverable", ("pete",)),
        ("deliverable.approved", "deliverable", ("alice",)),
        ("dependency.stalled", "dependency", ("omar", "alice")),
        ("escalation.raised", "dependency", ("pete", "pia")),
        ("dependency.resolved", "dependency", ("alice",)),
    ])
    assert all(r.verified for r in receiver.received)
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 9  # one id per message and webhook
    first = next(r.body for r in receiver.received if r.body["type"] == "review.requested")
    assert first["data"]["project"] == {"id": str(project.id), "name": "Northwind website relaunch"}
    assert first["data"]["subject"]["url"] == f"https://signoff.example/api/deliverables/{chain.deliverable_id}"
    assert first["text"] == "Homepage mockups: your review is requested (design)"


async def test_an_event_that_cannot_be_told_is_passed_over_and_an_outage_is_waited_out(temporal_env, sqlite_app,
                                                                                        tmp_path, monkeypatch):
    app = sqlite_app
    project = app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula")
    for title in ("Homepage mockups", "Sitemap"):
        app.submit_deliverable(submission(str(project.id), make_policy(app, SPEC), title=title,
                                          command_id=f"submit-{title}"))
    notifier = Notifier(app, temporal_env.client, Settings(), tracking_recorder(f"sqlite:///{tmp_path / 'e.sqlite'}"))
    told = notifier.deliveries_for

    def broken_once(notification):
        if notification.id == first:
            raise KeyError("an event shape nobody foresaw")
        return told(notification)

    first = app.recorder.select_notifications(start=None, limit=1, topics=TOPICS)[0].id
    monkeypatch.setattr(notifier, "deliveries_for", broken_once)
    assert await notifier.catch_up() == 2  # both StageOpened read; the first passed over, not retried for ever
    assert notifier.tracking.max_tracking_id(app.name) > first

    def store_away(notification):
        raise PersistenceError("the store is away")

    app.submit_deliverable(submission(str(project.id), make_policy(app, SPEC), title="Footer", command_id="f"))
    monkeypatch.setattr(notifier, "deliveries_for", store_away)
    position = notifier.tracking.max_tracking_id(app.name)
    with pytest.raises(PersistenceError):
        await notifier.catch_up()
    assert notifier.tracking.max_tracking_id(app.name) == position  # waited out, not passed over


async def test_a_dead_receiver_never_holds_a_chain_back(temporal_env, sqlite_app, receiver, tmp_path):
    """A receiver that answers 500 for ever: the chain goes on and ends while its messages are still
    being retried, and each message ends with one `failed` outcome once the budget is spent."""
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    settings = Settings(allow_local_webhooks=True, webhook_key="test-key", task_queue=task_queue,
                        webhook_first_retry_seconds=0.5, webhook_budget_seconds=4)
    app = sqlite_app
    project = app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula")
    project.set_webhooks("paula", "PMO channel", [{"url": receiver.url()}], uuid.uuid4)
    app.save(project)
    receiver.then = 500
    notifier = asyncio.ensure_future(Notifier(app, temporal_env.client, settings,
                                              tracking_recorder(f"sqlite:///{tmp_path / 'e.sqlite'}")).run(0.1))
    try:
        async with build_worker(temporal_env.client, app, task_queue, settings=settings):
            chain = ChainInput(submission=submission(str(project.id), make_policy(app, {"stages": [
                {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}]})))
            start = start_operation(chain, task_queue)
            await temporal_env.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                        start_workflow_operation=start)
            await until(lambda: receiver.received, 5, "the first attempt at review.requested")
            handle = await start.workflow_handle()
            began = time.monotonic()
            await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
            assert (await handle.result()).status == "approved"
            assert time.monotonic() - began < 2  # not after the deliveries' 4 s of retries
            assert not [d for d in deliveries(app) if d["status"] != "pending"]  # still retrying meanwhile
            await until(lambda: len(deliveries(app)) == 2 and all(d["status"] == "failed" for d in deliveries(app)),
                        15, "both messages failed after their budget")
    finally:
        notifier.cancel()
    assert sorted(d["type"] for d in deliveries(app)) == ["deliverable.approved", "review.requested"]
    assert all(d["last_status"] == 500 and len(d["outcomes"]) == 1 for d in deliveries(app))


def deliveries(app) -> list[dict]:
    """Every delivery recorded, read from the event store's log."""
    ids = {n.originator_id for n in app.recorder.select_notifications(start=None, limit=10_000)
           if n.topic.startswith("domain.delivery:")}
    return [app.get_delivery(i) for i in ids]
