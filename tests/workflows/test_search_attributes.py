"""What a Temporal operator sees: chains found by their search attributes (on the dev server's
visibility store, eventually consistent), the deliverable's title as the workflow's summary, and
each deadline's timer named in the history."""

import asyncio
import json
import subprocess
from datetime import datetime, timezone

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from domain.commands import Decide, SubmitRevision
from domain.deliverable_state import Deadline
from tests.builders import make_policy, make_project, revision, submission
from workers.devstack import temporal_binary
from workflows import search
from workflows.approval_chain import ApprovalChainWorkflow, timer_summary
from workflows.messages import ChainInput, chain_workflow_id

ONE_STAGE = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}],
             "on_revision": "restart"}


async def listed(client: Client, query: str, expected: list[str], timeout: float = 10.0) -> list[str]:
    """The ids `query` lists, once they are `expected` (visibility lags the workflow a little)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [wf.id async for wf in client.list_workflows(query)]
        if found == expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def cli_listed(client: Client, query: str, expected: list[str], timeout: float = 10.0) -> list[str]:
    """The same, through `temporal workflow list --query`, as the README has an operator run it."""
    argv = [temporal_binary(), "workflow", "list", "--address", client.service_client.config.target_host,
            "--namespace", client.namespace, "--query", query, "-o", "json"]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
        found = [wf["execution"]["workflowId"] for wf in json.loads(out or "[]")]
        if found == expected or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


def ours(attributes) -> dict[str, str]:
    return {pair.key.name: pair.value for pair in attributes if pair.key in search.KEYS}


async def test_an_operator_finds_a_chain_by_project_status_stage_and_submitter(chains):
    handle, view = await chains.submit(ONE_STAGE)
    project = chains.app.get_deliverable(view.id).project_id
    by_project = f"ProjectId='{project}'"
    assert await listed(chains.client, f"{by_project} AND DeliverableStatus='in_review'", [handle.id]) == [handle.id]
    described = await handle.describe()
    assert await described.static_summary() == "Homepage mockups"
    assert ours(described.typed_search_attributes) == {
        "ProjectId": project, "DeliverableStatus": "in_review", "Submitter": "alice", "StageName": "design"}

    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="request_changes",
                                                                     comment="tighter grid", revision=1))
    query = f"{by_project} AND DeliverableStatus='changes_requested' AND StageName='design' AND Submitter='alice'"
    assert await listed(chains.client, query, [handle.id]) == [handle.id]
    assert await listed(chains.client, f"{by_project} AND DeliverableStatus='in_review'", []) == []

    await handle.execute_update(ApprovalChainWorkflow.submit_revision, SubmitRevision(actor="alice", **revision("v2")))
    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=2))
    await handle.result()
    described = await handle.describe()
    assert described.typed_search_attributes.get(search.STAGE_NAME) is None  # no stage open any more
    query = f"{by_project} AND DeliverableStatus='approved'"
    assert await cli_listed(chains.client, query, [handle.id]) == [handle.id]


async def test_a_deadline_timer_carries_its_summary(chains):
    spec = {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "sla": "PT3S",
                        "escalation": []}]}
    handle, _ = await chains.submit(spec)
    history = await handle.fetch_history()
    converter = chains.client.data_converter.payload_converter
    summaries = [converter.from_payload(e.user_metadata.summary, str) for e in history.events
                 if e.HasField("timer_started_event_attributes")]
    assert summaries == ["design SLA"]
    await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
    now = datetime.now(timezone.utc)
    assert timer_summary("engineering", Deadline(kind="escalation", level=2, due_at=now)) == \
        "engineering escalation level 2"
    assert timer_summary("design", Deadline(kind="reminder", level=1, due_at=now)) == "design reminder 1"


async def test_a_chain_started_without_search_attributes_gets_them_on_its_first_task(chains):
    """As a run continued from a chain that began before search attributes does."""
    chain = ChainInput(submission=submission(make_project(chains.app), make_policy(chains.app)))
    start = WithStartWorkflowOperation(ApprovalChainWorkflow.run, chain, id=chain_workflow_id(chain.deliverable_id),
                                       task_queue=chains.task_queue,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    await chains.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open, start_workflow_operation=start)
    attributes = (await (await start.workflow_handle()).describe()).typed_search_attributes
    assert ours(attributes) == {
        "ProjectId": chain.submission.project_id, "DeliverableStatus": "in_review", "Submitter": "alice",
        "StageName": "design"}
