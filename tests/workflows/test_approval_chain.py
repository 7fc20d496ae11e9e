import asyncio
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.commands import Decide
from workflows.approval_chain import ApprovalChainWorkflow


def update_error_type(err: WorkflowUpdateFailedError) -> str:
    assert isinstance(err.cause, ApplicationError)
    return err.cause.type


async def test_chain_runs_through_every_stage_to_approved(chains):
    handle, state = await chains.submit()
    assert (state.status, state.stage.name, state.stage.approvers) == ("in_review", "design", ["bob"])
    state = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve",
                                                                             revision=1))
    assert state.stage.name == "engineering"
    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="carol", verdict="approve", revision=1))
    state = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="erin", verdict="approve",
                                                                             revision=1))
    assert state.stage.name == "sponsor"
    state = await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="sam", verdict="approve",
                                                                             revision=1))
    assert state.status == "approved" and state.stage is None
    result = await handle.result()
    assert result.status == "approved"
    assert chains.app.get_deliverable(state.id).status == "approved"


async def test_submitter_and_outsiders_are_refused_before_history(chains):
    handle, _ = await chains.submit()
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="alice", verdict="approve", revision=1))
    assert update_error_type(err.value) == "SelfApproval"
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="carol", verdict="approve", revision=1))
    assert update_error_type(err.value) == "NotEligible"
    assert [h["type"] for h in chains.app.deliverable_history((await handle.query(ApprovalChainWorkflow.current)).id)] == [
        "Submitted", "StageOpened"]


async def test_a_command_past_its_deadline_is_refused(chains):
    from datetime import datetime, timedelta, timezone

    handle, _ = await chains.submit()
    late = datetime.now(timezone.utc) - timedelta(seconds=1)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor="bob", verdict="approve", revision=1, expires_at=late))
    assert update_error_type(err.value) == "CommandExpired"
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    view = await handle.execute_update(ApprovalChainWorkflow.decide,
                                       Decide(actor="bob", verdict="approve", revision=1, expires_at=soon))
    assert view.stage.name == "engineering"


async def test_concurrent_any_stage_one_wins(chains):
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "any"},
                       {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]}
    handle, _ = await chains.submit(spec)
    results = await asyncio.gather(
        *[handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor=a, verdict="approve", revision=1))
          for a in ("carol", "dan")], return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and update_error_type(failures[0]) == "StageClosed"


TIMED_HISTORIES = {"approval_chain", "approval_chain_search_attributes", "dependency_watch"}


@pytest.mark.parametrize("recorded", sorted((Path(__file__).parent / "histories").glob("*.json")),
                         ids=lambda path: path.stem)
async def test_recorded_history_replays_deterministically(recorded: Path):
    """Chains and dependency watches recorded by earlier versions of the code must replay on this
    one: a change that breaks running workflows fails here before a deploy does (see record_histories.py)."""
    from temporalio.client import WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    history = WorkflowHistory.from_json("recorded-chain", recorded.read_text())
    kinds = {e.WhichOneof("attributes") for e in history.events}
    assert {"marker_recorded_event_attributes", "workflow_execution_update_completed_event_attributes"} <= kinds
    if recorded.stem in TIMED_HISTORIES:  # these were recorded with deadlines firing: their replay covers timers
        assert "timer_fired_event_attributes" in kinds
    from workflows.dependency_watch import DependencyWatchWorkflow

    replayer = Replayer(workflows=[ApprovalChainWorkflow, DependencyWatchWorkflow],
                        data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_long_chain_continues_as_new_and_keeps_going(chains):
    spec = {"stages": [{"name": f"stage-{i}", "approvers": {"roles": ["eng"]}, "rule": "any"} for i in range(6)]}
    handle, state = await chains.submit(spec, max_history=20)
    first_run = (await handle.describe()).run_id
    for i in range(6):
        approver = ("carol", "dan", "erin")[i % 3]
        state = await handle.execute_update(ApprovalChainWorkflow.decide,
                                            Decide(actor=approver, verdict="approve", revision=1))
    assert state.status == "approved"
    assert (await chains.client.get_workflow_handle(handle.id).result())["status"] == "approved"
    assert (await chains.client.get_workflow_handle(handle.id).describe()).run_id != first_run
    assert [d.stage_index for d in chains.app.get_deliverable(state.id).decisions] == list(range(6))
