"""The store/Temporal agreement check sees a disagreement when there is one, not only agreement."""

import uuid

import pytest
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from domain.commands import Decide
from store.events import open_application
from tests.builders import make_policy, make_project, submission
from tests.faults.agreement import (
    Disagreement,
    assert_store_and_temporal_agree,
    disagreements,
)
from workers.worker import build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, chain_workflow_id


async def test_agreement_check_finds_what_either_side_lacks(temporal_env, sqlite_app, tmp_path):
    client, task_queue = temporal_env.client, f"agree-{uuid.uuid4().hex[:8]}"
    chain = ChainInput(submission=submission(make_project(sqlite_app), make_policy(sqlite_app)))
    workflow_id = chain_workflow_id(chain.deliverable_id)
    async with build_worker(client, sqlite_app, task_queue):
        start = WithStartWorkflowOperation(ApprovalChainWorkflow.run, chain, id=workflow_id, task_queue=task_queue,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        await client.execute_update_with_start_workflow(ApprovalChainWorkflow.open, start_workflow_operation=start)
        handle = await start.workflow_handle()
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor="bob", verdict="approve", revision=1))

        await assert_store_and_temporal_agree(client, sqlite_app, [chain.deliverable_id])

        # A store that lacks what Temporal accepted: the submission and the decision.
        empty = open_application(f"sqlite:///{tmp_path / 'other.sqlite'}")
        try:
            lacking = await disagreements(client, empty, chain.deliverable_id)
        finally:
            empty.close()
        assert len(lacking) == 2 and all("the update succeeded, yet the store holds it 0 times" in p for p in lacking)

        # A recording Temporal never accepted, as a worker killed at the wrong moment would leave.
        sqlite_app.change_deliverable(Decide(deliverable_id=chain.deliverable_id, actor="carol", verdict="approve",
                                             comment="", revision=1, command_id=f"{workflow_id}:update:never-sent"))
        with pytest.raises(Disagreement, match="never-sent: in the store"):
            await assert_store_and_temporal_agree(client, sqlite_app, [chain.deliverable_id])
        await handle.terminate()
