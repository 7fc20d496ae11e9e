"""Record the workflow histories that the replay test checks new code against.

Run it only when a workflow change is meant to break replay (and ship it with workflow.patched()
for running chains): `.venv/bin/python -m tests.workflows.record_histories`.
"""

import asyncio
import tempfile
import uuid
from pathlib import Path

from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.storage import open_application
from tests.builders import make_policy, make_project, revision
from workers.devstack import temporal_binary
from workers.worker import build_worker
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.messages import ChainInput, DecideInput, RevisionInput, chain_workflow_id

HISTORIES = Path(__file__).parent / "histories"
SPEC = {"stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "reminders": ["PT0.5S"],
     "escalation": [{"after": "PT1S", "notify": ["pm"]}]},
    {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2, "escalation": []}],
    "on_revision": "resume"}


async def record() -> Path:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                data_converter=pydantic_data_converter)
    with tempfile.TemporaryDirectory() as tmp:
        app = open_application(f"sqlite:///{tmp}/events.sqlite")
        chain = ChainInput(deliverable_id=str(uuid.uuid4()), project_id=make_project(app), title="Homepage mockups",
                           submitter="alice", policy=make_policy(app, SPEC), revision=revision())
        async with build_worker(env.client, app, "record"):
            start = WithStartWorkflowOperation(ApprovalChainWorkflow.run, chain,
                                               id=chain_workflow_id(chain.deliverable_id), task_queue="record",
                                               id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
            await env.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                               start_workflow_operation=start)
            handle = await start.workflow_handle()
            await asyncio.sleep(1.5)  # the reminder and the escalation fire
            for actor, verdict, comment in (("bob", "approve", ""), ("carol", "request_changes", "add dark mode")):
                await handle.execute_update(ApprovalChainWorkflow.decide,
                                            DecideInput(actor=actor, verdict=verdict, comment=comment, revision=1))
            await handle.execute_update(ApprovalChainWorkflow.submit_revision,
                                        RevisionInput(actor="alice", **revision("v2")))
            for actor in ("carol", "dan"):
                await handle.execute_update(ApprovalChainWorkflow.decide,
                                            DecideInput(actor=actor, verdict="approve", revision=2))
            await handle.result()
            history = await handle.fetch_history()
        app.close()
    await env.shutdown()
    path = HISTORIES / "approval_chain.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    print(asyncio.run(record()))
