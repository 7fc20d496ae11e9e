"""A webhook delivery through a worker crash, in the production topology (a dev server on its SQLite
file, two `signoff worker` processes, the event store on PostgreSQL): a worker killed (-9) after the
receiver answered 2xx but before the outcome was recorded makes Temporal send again after the attempt
times out, with the same `webhook-id`, so the receiver can tell it is the same message; the delivery
records exactly one `delivered` outcome."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

from domain.delivery import delivery_id, webhook_message_id
from domain.notifications import Message
from domain.webhooks import derive_secret
from tests.builders import MEMBERS
from tests.faults.topology import Topology, production_topology
from tests.receiver import Receiver
from workflows.delivery import DeliveryRun, DeliveryWorkflow, delivery_workflow_id

KEY = "faults-webhook-key"
KILL = "kill-after-webhook-sent"  # tests/fault_worker.py
ATTEMPT_SECONDS = 1.0  # an attempt lost with its worker is tried again after this and 5 s more


async def until(predicate, timeout: float, what: str, topology: Topology) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached within {timeout:.0f} s: {what}\n{topology.log_tail()}"
        await asyncio.sleep(0.1)


async def test_worker_killed_between_sending_and_recording_sends_again_with_the_same_webhook_id(tmp_path,
                                                                                               pg_schema_url):
    receiver = Receiver()
    try:
        async with production_topology(tmp_path, pg_schema_url, api=False, faults=KILL, allow_local_webhooks=True,
                                       webhook_key=KEY, webhook_attempt_timeout_seconds=ATTEMPT_SECONDS,
                                       webhook_first_retry_seconds=0.2) as topology:
            app = topology.app
            project = app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula")
            [webhook_id] = project.set_webhooks("paula", "PMO channel", [{"url": receiver.url()}], uuid.uuid4)
            app.save(project)
            receiver.secrets["/hook"] = derive_secret(KEY.encode(), webhook_id, 1)
            now = datetime.now(UTC)
            message = Message(key=f"{uuid.uuid4()}:2", type="dependency.stalled", timestamp=now,
                              project_id=str(project.id), recipients=["pete"],
                              body={"type": "dependency.stalled", "timestamp": now.isoformat(),
                                    "data": {"project": {"id": str(project.id), "name": project.name},
                                             "subject": {"kind": "dependency", "id": "d", "title": "Sandbox credentials",
                                                         "url": "https://signoff.example/api/dependencies/d"},
                                             "recipients": ["pete"]},
                                    "text": "Sandbox credentials has stalled"})
            uid = str(delivery_id(webhook_id, message.key, message.type))
            run = DeliveryRun(delivery_id=uid, project_id=str(project.id), webhook_id=webhook_id, url=receiver.url(),
                              message=message, budget_seconds=120, attempt_timeout_seconds=ATTEMPT_SECONDS,
                              first_retry_seconds=0.2)
            handle = await topology.client.start_workflow(DeliveryWorkflow.run, run, id=delivery_workflow_id(uid),
                                                          task_queue=topology.settings.task_queue)

            # Whichever worker takes the attempt posts it, hears 200 and dies before Temporal hears.
            await until(lambda: any(w.poll() is not None for w in topology.workers), 20,
                        "a worker killed right after the receiver answered 200", topology)
            first = next(i for i, w in enumerate(topology.workers) if w.poll() is not None)
            assert topology.workers[first].returncode == -9, topology.log_tail()
            assert [r.answered for r in receiver.received] == [200]
            assert app.get_delivery(uid)["status"] == "pending"  # sent, but no outcome recorded
            # The other one is armed too: kill it, and start both again without the fault.
            topology.kill_worker(1 - first)
            await asyncio.gather(topology.start_worker(0), topology.start_worker(1))

            outcome = await asyncio.wait_for(handle.result(), 60)
            assert (outcome.outcome, outcome.attempts, outcome.last_status) == ("delivered", 2, 200)
            await asyncio.sleep(1.0)  # a third send would have arrived by now
            assert [r.answered for r in receiver.received] == [200, 200]
            assert all(r.verified for r in receiver.received)
            assert {r.headers["webhook-id"] for r in receiver.received} == {webhook_message_id(uid)}
            state = app.get_delivery(uid)
            assert [(o["run"], o["outcome"], o["attempts"]) for o in state["outcomes"]] == [(1, "delivered", 2)]
            assert state["status"] == "delivered"
    finally:
        receiver.close()
