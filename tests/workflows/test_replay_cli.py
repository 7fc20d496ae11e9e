"""`signoff replay` (workers/replay.py): histories fetched from the real dev server, replayed on this
code; and a reordering without `workflow.patched` is caught while the patched one passes, on a probe
workflow and on the approval chain itself."""

import asyncio
import io
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from config.settings import Settings
from domain.commands import Decide, FireDeadline, SubmitRevision
from domain.deliverable_state import ChainView
from tests.builders import revision
from tests.workflows.record_histories import SPEC
from workers import replay
from workflows.activities import ChainActivities
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput

ROOT = Path(__file__).resolve().parents[2]


async def run_chain_with_escalation_and_revision(chains) -> str:
    """A chain whose design stage reminds and escalates, then asks for changes; revision 2 is approved."""
    handle, view = await chains.submit(SPEC)
    deadline = asyncio.get_running_loop().time() + 10
    while not chains.app.get_deliverable(view.id).escalations:  # the reminder (0.5 s), the escalation (1 s)
        assert asyncio.get_running_loop().time() < deadline, "the escalation never fired"
        await asyncio.sleep(0.1)
    for actor, verdict, comment in (("bob", "approve", ""), ("carol", "request_changes", "add dark mode")):
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor=actor, verdict=verdict, comment=comment, revision=1))
    await handle.execute_update(ApprovalChainWorkflow.submit_revision, SubmitRevision(actor="alice", **revision("v2")))
    for actor in ("carol", "dan"):
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor=actor, verdict="approve", revision=2))
    assert (await handle.result()).status == "approved"
    kinds = {e.WhichOneof("attributes") for e in (await handle.fetch_history()).events}
    assert "timer_fired_event_attributes" in kinds
    return handle.id


async def test_a_finished_chain_replays_ok_by_id_by_query_and_through_the_cli(chains):
    started = datetime.now(UTC) - timedelta(seconds=1)
    workflow_id = await run_chain_with_escalation_and_revision(chains)
    client = chains.client
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id

    outcomes = await replay.replay(client, pydantic_data_converter, workflow_ids=[workflow_id])
    assert outcomes == [replay.Outcome(workflow_id, run_id)]
    out = io.StringIO()
    assert replay.report(outcomes, out) == 0
    assert out.getvalue().splitlines() == [f"ok  {workflow_id} {run_id}",
                                           "replayed 1 workflow histories: 1 ok, 0 nondeterministic"]

    # By --since and --query, through visibility (eventually consistent: it may lag a moment).
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        listed = await replay.replay(client, pydantic_data_converter, since=started,
                                     query=f"WorkflowId='{workflow_id}'")
        if listed or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert listed == [replay.Outcome(workflow_id, run_id)]
    assert await replay.replay(client, pydantic_data_converter, since=datetime.now(UTC) + timedelta(days=1)) == []
    # Without --since or --query: the running ones (this chain has finished), a query the server takes.
    # The dev server is shared by the whole session, so other tests' running workflows (some with
    # encrypted payloads this converter cannot read) may be listed too: only ours is asserted.
    running = await replay.replay(client, pydantic_data_converter)
    assert workflow_id not in {o.workflow_id for o in running}

    # The real command, as an operator runs it, against the test server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env.update(SIGNOFF_TEMPORAL_ADDRESS=client.service_client.config.target_host,
               SIGNOFF_TEMPORAL_NAMESPACE=client.namespace)
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "workers.cli", "replay", "--workflow-id", workflow_id,
                         "--workflow-id", "deliverable-that-never-was"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    lines = done.stdout.splitlines()
    assert lines[0] == f"ok  {workflow_id} {run_id}", done.stderr
    assert lines[1].startswith("UNREADABLE deliverable-that-never-was: ")
    assert lines[2] == "replayed 1 workflow histories: 1 ok, 0 nondeterministic, 1 unreadable"
    assert done.returncode == 1  # a named workflow that cannot be read is not a pass

    only_ours = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "workers.cli", "replay", "--workflow-id", workflow_id],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert only_ours.returncode == 0, only_ours.stdout + only_ours.stderr


# A tiny workflow in three versions under one name: A as it ran, B reordered without a patch,
# C reordered under workflow.patched (old histories keep the old order).
@activity.defn
async def first_step() -> str:
    return "first"


@activity.defn
async def second_step() -> str:
    return "second"


STEP = timedelta(seconds=5)


@workflow.defn(name="ReplayProbe")
class ProbeA:
    @workflow.run
    async def run(self) -> list[str]:
        return [await workflow.execute_activity(first_step, start_to_close_timeout=STEP),
                await workflow.execute_activity(second_step, start_to_close_timeout=STEP)]


@workflow.defn(name="ReplayProbe")
class ProbeReorderedUnpatched:
    @workflow.run
    async def run(self) -> list[str]:
        return [await workflow.execute_activity(second_step, start_to_close_timeout=STEP),
                await workflow.execute_activity(first_step, start_to_close_timeout=STEP)]


@workflow.defn(name="ReplayProbe")
class ProbeReorderedPatched:
    @workflow.run
    async def run(self) -> list[str]:
        if workflow.patched("reorder"):
            return [await workflow.execute_activity(second_step, start_to_close_timeout=STEP),
                    await workflow.execute_activity(first_step, start_to_close_timeout=STEP)]
        return [await workflow.execute_activity(first_step, start_to_close_timeout=STEP),
                await workflow.execute_activity(second_step, start_to_close_timeout=STEP)]


async def run_probe(client: Client, version: type) -> str:
    task_queue = f"probe-{uuid.uuid4().hex[:8]}"
    workflow_id = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[version], activities=[first_step, second_step],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        await client.execute_workflow(version.run, id=workflow_id, task_queue=task_queue)
    return workflow_id


async def test_an_unpatched_reordering_fails_replay_and_the_patched_one_passes(temporal_env):
    client = temporal_env.client
    recorded = await run_probe(client, ProbeA)
    run_id = (await client.get_workflow_handle(recorded).describe()).run_id

    unpatched = await replay.replay(client, pydantic_data_converter, workflow_ids=[recorded],
                                    workflows=[ProbeReorderedUnpatched])
    assert [(o.workflow_id, o.run_id) for o in unpatched] == [(recorded, run_id)]
    assert unpatched[0].failure == ("[TMPRL1100] Nondeterminism error: Activity type of scheduled event "
                                    "'first_step' does not match activity type of activity command 'second_step'")
    out = io.StringIO()
    assert replay.report(unpatched, out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"NONDETERMINISTIC {recorded} {run_id}: ")
    assert lines[1] == "replayed 1 workflow histories: 0 ok, 1 nondeterministic"

    patched = await replay.replay(client, pydantic_data_converter, workflow_ids=[recorded],
                                  workflows=[ProbeReorderedPatched])
    assert patched == [replay.Outcome(recorded, run_id)]
    assert replay.report(patched, io.StringIO()) == 0

    # And the patched version's own new runs replay on it too (the patch marker is in their history).
    new = await run_probe(client, ProbeReorderedPatched)
    assert [o.failure for o in await replay.replay(client, pydantic_data_converter, workflow_ids=[new],
                                                   workflows=[ProbeReorderedPatched])] == [None]


def test_the_visibility_query_names_the_worker_types_and_defaults_to_running_ones():
    assert replay.visibility_query([ProbeA]) == "WorkflowType IN ('ReplayProbe') AND ExecutionStatus='Running'"
    since = replay.parse_since("2026-11-01T10:00:00+01:00")
    assert replay.visibility_query([ProbeA], since, "ProjectId='p'") == (
        "WorkflowType IN ('ReplayProbe') AND StartTime > '2026-11-01T09:00:00.000000Z' AND (ProjectId='p')")
    assert replay.parse_since("2026-11-01T10:00:00") == datetime(2026, 11, 1, 10, tzinfo=UTC)


async def test_encrypted_histories_replay_with_the_configured_key(temporal_env, sqlite_app):
    from tests.workflows.conftest import Chains
    from tests.workflows.test_payload_codec import new_key
    from workers.worker import build_worker
    from workflows.client import connect

    address = temporal_env.client.service_client.config.target_host
    settings = Settings(temporal_address=address, payload_key=new_key())
    client = await connect(settings)
    task_queue = f"replay-codec-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, sqlite_app, task_queue):
        handle, _ = await Chains(client, sqlite_app, task_queue).submit()
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
    run_id = (await handle.describe()).run_id

    out = io.StringIO()
    assert await replay.run(settings, workflow_ids=[handle.id], out=out) == 0
    assert out.getvalue().splitlines()[0] == f"ok  {handle.id} {run_id}"

    without_key = io.StringIO()
    assert await replay.run(Settings(temporal_address=address), workflow_ids=[handle.id], out=without_key) == 1
    assert without_key.getvalue().splitlines() == [
        f"FAILED {handle.id} {run_id}: Failed decoding arguments: 'Unknown payload encoding binary/encrypted'",
        "replayed 1 workflow histories: 0 ok, 0 nondeterministic, 1 failed"]


def test_a_checked_in_history_has_an_escalation_a_request_for_changes_and_a_revision():
    """The replay test in CI (test_approval_chain.py) covers those paths: approval_chain_search_attributes.json
    escalated (level 1), had changes requested and was approved on revision 2. (approval_chain.json only
    reminded: its escalation timer was cancelled by the first decision.)"""
    from temporalio.client import WorkflowHistory

    from tests.workflows.test_payload_codec import payloads_in

    path = Path(__file__).parent / "histories" / "approval_chain_search_attributes.json"
    history = WorkflowHistory.from_json("recorded-chain", path.read_text())
    data = b" ".join(p.data for event in history.events for p in payloads_in(event))
    assert b'"escalation_level":1' in data and b'"verdict":"request_changes"' in data and b'"revision":2' in data


# The approval chain itself, reordered: a deadline is recorded as soon as it is the next one and only
# then waited for, where the chain waits for it first (two steps swapped: a change a reviewer could
# let through, and one that breaks every running chain without a patch).
async def record_then_wait(chain: ApprovalChainWorkflow, view: ChainView) -> None:
    deadline = view.next_deadline(frozenset(chain.fired))
    if deadline is None or view.stage is None:
        await workflow.wait_condition(lambda: chain.view is None or chain.view.version != view.version)
        return
    async with chain.lock:
        command_id = view.deadline_id(deadline)
        chain.fired.add(command_id)
        await chain._record(ChainActivities.record_deadline, FireDeadline(
            stage_index=view.stage.index, opened_at=view.stage.opened_at.isoformat(), kind=deadline.kind,
            level=deadline.level), command_id)
    wait = (deadline.due_at - workflow.now()).total_seconds()
    if wait > 0:
        try:
            await workflow.wait_condition(lambda: chain.view is None or chain.view.version != view.version,
                                          timeout=wait)
        except TimeoutError:
            pass


@workflow.defn(name="ApprovalChainWorkflow")
class ChainRecordsThenWaits(ApprovalChainWorkflow):
    @workflow.run
    async def run(self, input: ChainInput) -> ChainView | None:
        return await super().run(input)

    async def _wait_for_change_or_deadline(self, view: ChainView) -> None:
        await record_then_wait(self, view)


@workflow.defn(name="ApprovalChainWorkflow")
class ChainRecordsThenWaitsPatched(ApprovalChainWorkflow):
    @workflow.run
    async def run(self, input: ChainInput) -> ChainView | None:
        return await super().run(input)

    async def _wait_for_change_or_deadline(self, view: ChainView) -> None:
        if workflow.patched("record-then-wait"):
            await record_then_wait(self, view)
        else:  # histories made before the change keep their order
            await super()._wait_for_change_or_deadline(view)


async def test_the_chain_reordered_without_a_patch_fails_replay_and_with_one_passes(chains):
    workflow_id = await run_chain_with_escalation_and_revision(chains)
    client = chains.client
    [unpatched] = await replay.replay(client, pydantic_data_converter, workflow_ids=[workflow_id],
                                      workflows=[ChainRecordsThenWaits])
    assert unpatched.failure is not None and unpatched.failure.startswith("[TMPRL1100] Nondeterminism error")
    out = io.StringIO()
    assert replay.report([unpatched], out) == 1
    assert out.getvalue().startswith(f"NONDETERMINISTIC {workflow_id} ")
    [patched] = await replay.replay(client, pydantic_data_converter, workflow_ids=[workflow_id],
                                    workflows=[ChainRecordsThenWaitsPatched])
    assert patched.failure is None
