"""Stage deadlines on real timers (seconds-long policies), and recordings that survive faults."""

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from domain.commands import Decide, SubmitRevision
from store.events import open_application
from tests.builders import make_policy, make_project, revision, submission
from tests.fault_worker import faulty
from tests.workflows.conftest import Chains
from workers.worker import build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, chain_workflow_id

ROOT = Path(__file__).resolve().parents[2]


async def wait_for(predicate, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_escalation_notifies_then_grants_and_grantee_settles(chains):
    spec = {"stages": [{"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "all", "sla": "PT2S",
                        "reminders": ["PT0.5S"],
                        "escalation": [{"after": "PT1S", "notify": ["pm"]},
                                       {"after": "PT2S", "notify": ["pmo"], "grant": ["pmo"]}]}]}
    handle, state = await chains.submit(spec)
    assert state.stage.granted == []
    current = lambda: chains.app.get_deliverable(state.id)  # noqa: E731
    await wait_for(lambda: current().stage.escalation_level == 2)
    types = [h["type"] for h in chains.app.deliverable_history(state.id)]
    assert types[2:] == ["ReminderSent", "Escalated", "Escalated", "SlaBreached"] or \
        types[2:] == ["ReminderSent", "Escalated", "SlaBreached", "Escalated"]
    escalations = current().escalations
    assert [(e.level, e.notified, e.granted) for e in escalations] == [(1, ["pete"], []), (2, ["paula"], ["paula"])]
    state = await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor="paula", verdict="approve", revision=1))
    assert state.status == "approved"
    assert chains.app.get_deliverable(state.id).decisions[-1].on_behalf_of == ["carol", "dan", "erin"]


async def test_a_decision_before_the_deadline_cancels_it(chains):
    spec = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any",
                        "escalation": [{"after": "PT1S", "notify": ["pm"]}]},
                       {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "any",
                        "escalation": []}]}
    handle, state = await chains.submit(spec)
    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
    # The stage's timer is cancelled in Temporal, not merely ignored when it fires.
    events = [e async for e in handle.fetch_history_events()]
    kinds = [e.WhichOneof("attributes") for e in events]
    assert "timer_started_event_attributes" in kinds and "timer_canceled_event_attributes" in kinds
    assert "timer_fired_event_attributes" not in kinds
    await asyncio.sleep(1.5)
    assert chains.app.get_deliverable(state.id).escalations == []


async def test_revision_restarts_the_chain(chains):
    handle, state = await chains.submit()
    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
    state = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(
        actor="carol", verdict="request_changes", comment="hero image is off-brand", revision=1))
    assert state.status == "changes_requested"
    v2 = revision("v2")
    state = await handle.execute_update(ApprovalChainWorkflow.submit_revision, SubmitRevision(actor="alice", **v2))
    assert (state.status, state.revision, state.stage.name) == ("in_review", 2, "design")


async def test_activity_failing_after_recording_is_retried_without_a_second_record(temporal_env, sqlite_app):
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(temporal_env.client, sqlite_app, task_queue, faulty("raise-after-record:FAULT-1")):
        handle, state = await Chains(temporal_env.client, sqlite_app, task_queue).submit()
        state = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(
            actor="bob", verdict="approve", comment="FAULT-1", revision=1))
    assert state.stage.name == "engineering"
    history = sqlite_app.deliverable_history(state.id)
    assert [h["actor"] for h in history if h["type"] == "DecisionRecorded"] == ["bob"]


def start_worker(env: dict[str, str]) -> subprocess.Popen:
    """A worker process as `signoff worker` runs it, with the fault in SIGNOFF_FAULTS (if any) armed."""
    return subprocess.Popen([sys.executable, "-m", "tests.fault_worker"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@dataclass
class Crash:
    """A chain served by a worker process that dies (SIGKILL) at the fault named, and the means to
    start a healthy worker in its place."""

    app: Any
    chain: ChainInput
    handle: Any
    doomed: subprocess.Popen
    env: dict[str, str]
    processes: list[subprocess.Popen]

    def start_survivor(self) -> None:
        self.processes.append(start_worker(self.env))


@asynccontextmanager
async def crashing_chain(temporal_env, tmp_path, fault: str, spec=None) -> AsyncIterator[Crash]:
    url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    env = {"SIGNOFF_EVENT_STORE": url, "SIGNOFF_TASK_QUEUE": f"kill-{uuid.uuid4().hex[:8]}",
           "SIGNOFF_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host}
    app = open_application(url)
    chain = ChainInput(submission=submission(make_project(app), make_policy(app, spec)))
    doomed = start_worker({**env, "SIGNOFF_FAULTS": fault})
    processes = [doomed]
    try:
        start = WithStartWorkflowOperation(ApprovalChainWorkflow.run, chain, id=chain_workflow_id(chain.deliverable_id),
                                           task_queue=env["SIGNOFF_TASK_QUEUE"],
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        await temporal_env.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                    start_workflow_operation=start)
        yield Crash(app, chain, await start.workflow_handle(), doomed, env, processes)
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        app.close()


async def test_worker_killed_after_recording_completes_on_restart_exactly_once(temporal_env, tmp_path):
    async with crashing_chain(temporal_env, tmp_path, "kill-after-record:KILL-ME") as crash:
        handle, did = crash.handle, crash.chain.deliverable_id
        decision = asyncio.create_task(handle.execute_update(ApprovalChainWorkflow.decide, Decide(
            actor="bob", verdict="approve", comment="KILL-ME please", revision=1)))
        await asyncio.to_thread(crash.doomed.wait, 30)
        assert crash.doomed.returncode == -9, crash.doomed.stderr.read().decode()[-2000:]
        # Recorded, but Temporal never heard back: the caller is still waiting.
        assert [d.actor for d in crash.app.get_deliverable(did).decisions] == ["bob"]
        assert not decision.done()
        crash.start_survivor()
        state = await asyncio.wait_for(decision, timeout=60)
        assert state.stage.name == "engineering"
        for actor in ("carol", "dan", "sam"):
            state = await handle.execute_update(ApprovalChainWorkflow.decide,
                                                Decide(actor=actor, verdict="approve", revision=1))
        assert state.status == "approved"
        history = crash.app.deliverable_history(did)
        assert [h["actor"] for h in history if h["type"] == "DecisionRecorded"] == ["bob", "carol", "dan", "sam"]


async def test_worker_killed_after_an_escalation_loses_no_decision_sent_meanwhile(temporal_env, tmp_path):
    spec = {"stages": [{"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "all",
                        "escalation": [{"after": "PT1S", "notify": ["pm"]}]}]}
    async with crashing_chain(temporal_env, tmp_path, "kill-after-deadline:escalation", spec) as crash:
        await asyncio.to_thread(crash.doomed.wait, 30)
        assert crash.doomed.returncode == -9
        # While no worker runs, a decision arrives; the retried task holds it and the timer together.
        decision = asyncio.create_task(crash.handle.execute_update(
            ApprovalChainWorkflow.decide, Decide(actor="carol", verdict="approve", revision=1)))
        await asyncio.sleep(0.5)
        crash.start_survivor()
        view = await asyncio.wait_for(decision, timeout=60)
        assert view.stage.approvals == ["carol"]
        state = crash.app.get_deliverable(crash.chain.deliverable_id)
        assert [d.actor for d in state.decisions] == ["carol"]
        assert [e.level for e in state.escalations] == [1]
