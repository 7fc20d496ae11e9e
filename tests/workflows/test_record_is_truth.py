"""The event store is the truth: a workflow whose view fell behind the record catches up, and a
command past its deadline is never recorded, wherever it was held up."""

import asyncio
import sqlite3
import threading
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.commands import Decide
from domain.errors import NotFound
from tests.workflows.test_approval_chain import update_error_type
from tests.workflows.test_deadlines_and_faults import crashing_chain, wait_for
from workflows.approval_chain import ApprovalChainWorkflow

TWO_STAGES = {"stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "escalation": []},
    {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "any",
     "escalation": [{"after": "PT1S", "notify": ["pm"]}]}]}


def soon(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


async def test_a_recording_whose_answer_was_lost_past_its_deadline_still_moves_the_chain(temporal_env, tmp_path):
    async with crashing_chain(temporal_env, tmp_path, "kill-after-record:KILL-ME", TWO_STAGES) as crash:
        did, expires_at = crash.chain.deliverable_id, soon(2)
        decision = asyncio.create_task(crash.handle.execute_update(ApprovalChainWorkflow.decide, Decide(
            actor="bob", verdict="approve", comment="KILL-ME", revision=1, expires_at=expires_at)))
        await asyncio.to_thread(crash.doomed.wait, 30)
        assert crash.doomed.returncode == -9
        assert [d.actor for d in crash.app.get_deliverable(did).decisions] == ["bob"]
        # The worker stays down past the command's deadline: the retried task finds the decision
        # already recorded and takes the record's view, rather than refusing it as expired.
        await asyncio.sleep((expires_at - datetime.now(timezone.utc)).total_seconds() + 1)
        crash.start_survivor()
        view = await asyncio.wait_for(decision, timeout=60)
        assert view.stage.name == "engineering"
        # The next stage's timer was set and fires.
        await wait_for(lambda: [e.stage_name for e in crash.app.get_deliverable(did).escalations] == ["engineering"])
        view = await crash.handle.execute_update(ApprovalChainWorkflow.decide,
                                                 Decide(actor="carol", verdict="approve", revision=1))
        assert view.status == "approved"
        assert (await asyncio.wait_for(crash.handle.result(), 10)).status == "approved"
        assert [d.actor for d in crash.app.get_deliverable(did).decisions] == ["bob", "carol"]


async def test_a_refusal_by_the_record_gives_the_workflow_the_records_view(chains):
    handle, state = await chains.submit(TWO_STAGES)
    # Recorded without the workflow hearing of it: its view still says design.
    chains.app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                         revision=1, command_id="answer-lost"))
    assert (await handle.query(ApprovalChainWorkflow.current)).stage.name == "design"
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve",
                                                                              revision=1))
    assert update_error_type(err.value) == "StageClosed"
    assert (await handle.query(ApprovalChainWorkflow.current)).stage.name == "engineering"
    await wait_for(lambda: len(chains.app.get_deliverable(state.id).escalations) == 1)
    view = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="dan", verdict="approve",
                                                                                 revision=1))
    assert view.status == "approved"


async def test_refresh_takes_the_records_view(chains):
    handle, state = await chains.submit(TWO_STAGES)
    chains.app.change_deliverable(Decide(deliverable_id=state.id, actor="bob", verdict="approve", comment="",
                                         revision=1, command_id="answer-lost"))
    view = await handle.execute_update(ApprovalChainWorkflow.refresh)
    assert view.stage.name == "engineering" and view.version == chains.app.chain_view(state.id).version


async def test_a_command_held_up_by_a_locked_store_past_its_deadline_is_never_recorded(chains, tmp_path):
    handle, state = await chains.submit(TWO_STAGES)
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(tmp_path / "events.sqlite", isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(30)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait(10)
    try:
        decision = asyncio.create_task(handle.execute_update(ApprovalChainWorkflow.decide, Decide(
            actor="bob", verdict="approve", revision=1, expires_at=soon(1))))
        await asyncio.sleep(5)  # the store's lock timeout passes, the recording retries past the deadline
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await asyncio.wait_for(decision, 30)
    assert update_error_type(err.value) == "CommandExpired"
    assert chains.app.get_deliverable(state.id).decisions == []
    # The chain goes on: a command in time is recorded.
    view = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(
        actor="bob", verdict="approve", revision=1, expires_at=soon(20)))
    assert view.stage.name == "engineering"


async def test_a_chain_whose_opening_never_came_fails_after_its_deadline(chains):
    from temporalio.client import WorkflowFailureError

    from tests.builders import make_policy, make_project, submission
    from workflows.messages import ChainInput, chain_workflow_id

    # Started, but the `open` update was lost (a server restart, a cancelled request).
    chain = ChainInput(submission=submission(make_project(chains.app), make_policy(chains.app),
                                             deliverable_id="0d8b5f1e-3c1a-4f0e-9b7a-6a2f4c9e8d11",
                                             expires_at=soon(1)))
    handle = await chains.client.start_workflow(ApprovalChainWorkflow.run, chain,
                                                id=chain_workflow_id(chain.deliverable_id),
                                                task_queue=chains.task_queue)
    with pytest.raises(WorkflowFailureError) as err:
        await asyncio.wait_for(handle.result(), 30)
    assert err.value.cause.type == "SubmissionRefused"
    with pytest.raises(NotFound):
        chains.app.get_deliverable(chain.deliverable_id)
