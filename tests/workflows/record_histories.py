"""Record the workflow histories that the replay test checks new code against.

Run it only when a workflow change is meant to break replay (and ship it with workflow.patched()
for running chains), or when a new workflow type first runs: `.venv/bin/python -m
tests.workflows.record_histories NAME`, NAME one of approval_chain, record_is_truth,
search_attributes, dependency_watch (one at a time, never all).
Keep the older files: each is a chain that ran on an earlier version and must still replay.
"""

import asyncio
import contextlib
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.commands import Decide, SubmitRevision
from store.events import open_application
from tests.builders import STANDARD, make_policy, make_project, revision, submission
from workers.devstack import temporal_binary
from workers.worker import build_worker
from workflows import search
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import start_operation
from workflows.messages import ChainInput

HISTORIES = Path(__file__).parent / "histories"
SPEC = {"stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "reminders": ["PT0.5S"],
     "escalation": [{"after": "PT1S", "notify": ["pm"]}]},
    {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2, "escalation": []}],
    "on_revision": "resume"}


@contextlib.asynccontextmanager
async def recording_chain(spec: dict[str, Any], **chain_fields: Any) -> AsyncIterator[tuple[Any, ChainInput, Any]]:
    """A fresh dev server, store and worker with one chain opened under `spec`: (app, chain, handle)."""
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                data_converter=pydantic_data_converter, search_attributes=search.KEYS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = open_application(f"sqlite:///{tmp}/events.sqlite")
            chain = ChainInput(submission=submission(make_project(app), make_policy(app, spec), **chain_fields))
            try:
                async with build_worker(env.client, app, "record"):
                    start = start_operation(chain, "record")
                    await env.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                       start_workflow_operation=start)
                    yield app, chain, await start.workflow_handle()
            finally:
                app.close()
    finally:
        await env.shutdown()


async def save(handle: Any, name: str) -> Path:
    await handle.result()
    path = HISTORIES / f"{name}.json"
    if path.exists():  # the old file is what running chains of its time did: a new one needs a new name
        raise SystemExit(f"{path} exists; record a new history under a new name, never over an old one")
    path.write_text((await handle.fetch_history()).to_json())
    return path


async def record() -> Path:
    async with recording_chain(SPEC) as (_, _, handle):
        await asyncio.sleep(1.5)  # the reminder and the escalation fire
        for actor, verdict, comment in (("bob", "approve", ""), ("carol", "request_changes", "add dark mode")):
            await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor=actor, verdict=verdict, comment=comment, revision=1))
        await handle.execute_update(ApprovalChainWorkflow.submit_revision,
                                    SubmitRevision(actor="alice", **revision("v2")))
        for actor in ("carol", "dan"):
            await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor=actor, verdict="approve", revision=2))
        return await save(handle, "approval_chain")


async def record_record_is_truth() -> Path:
    """A chain through the paths of the RECORD_IS_TRUTH patch: commands with deadlines, one refused
    as expired by the record, one refused by a record ahead of the workflow (whose view it adopts),
    a refresh and an abandoned update."""
    soon = lambda: datetime.now(timezone.utc) + timedelta(seconds=30)  # noqa: E731
    async with recording_chain(STANDARD, expires_at=soon()) as (app, chain, handle):
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor="bob", verdict="approve", revision=1, expires_at=soon()))
        late = datetime.now(timezone.utc) - timedelta(seconds=1)
        with contextlib.suppress(WorkflowUpdateFailedError):  # refused by the record: expired
            await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor="carol", verdict="approve", revision=1, expires_at=late))
        app.change_deliverable(Decide(deliverable_id=chain.deliverable_id, actor="carol", verdict="approve", comment="",
                                      revision=1, command_id="answer-lost"))
        app.change_deliverable(Decide(deliverable_id=chain.deliverable_id, actor="dan", verdict="approve", comment="",
                                      revision=1, command_id="answer-lost-too"))
        with contextlib.suppress(WorkflowUpdateFailedError):  # refused by the record, whose view it takes
            await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor="erin", verdict="approve", revision=1))
        await handle.execute_update(ApprovalChainWorkflow.refresh)
        await handle.signal(ApprovalChainWorkflow.abandon, "an-update-whose-caller-left")
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor="sam", verdict="approve", revision=1, expires_at=soon()))
        return await save(handle, "approval_chain_record_is_truth")


async def record_search_attributes() -> Path:
    """A chain through the paths of the SEARCH_ATTRIBUTES patch: started with its search attributes
    and title, timers with summaries (reminder, escalation, SLA), a stage that moves (upsert), a
    decision that moves nothing (no upsert), changes requested and resumed, and the end (stage unset)."""
    spec = {"stages": [
        {**SPEC["stages"][0], "sla": "PT2S"},
        SPEC["stages"][1]], "on_revision": "resume"}
    async with recording_chain(spec) as (_, _, handle):
        await asyncio.sleep(2.5)  # the reminder, the escalation and the SLA fire
        await handle.execute_update(ApprovalChainWorkflow.decide, Decide(actor="bob", verdict="approve", revision=1))
        await handle.execute_update(ApprovalChainWorkflow.decide,
                                    Decide(actor="carol", verdict="request_changes", comment="add dark mode",
                                           revision=1))
        await handle.execute_update(ApprovalChainWorkflow.submit_revision,
                                    SubmitRevision(actor="alice", **revision("v2")))
        for actor in ("carol", "dan"):
            await handle.execute_update(ApprovalChainWorkflow.decide,
                                        Decide(actor=actor, verdict="approve", revision=2))
        return await save(handle, "approval_chain_search_attributes")


async def record_dependency_watch() -> Path:
    """A dependency watch through its paths: opened with a reminder, stalled, escalated, a refusal
    by the record (not the owner), an abandoned update, acknowledged (clock restarts), progress,
    a re-assignment by pmo, stalled again, and resolved."""
    from domain.dependency_commands import Acknowledge, OpenDependency, ReassignOwner, ReportProgress, Resolve
    from tests.builders import MEMBERS
    from workflows.dependency_client import start_operation as watch_start
    from workflows.dependency_watch import DependencyWatchWorkflow
    from workflows.messages import WatchInput

    providers = [{"user": "omar", "roles": ["eng"]}, {"user": "olga", "roles": ["eng"]}, {"user": "pia", "roles": ["pm"]}]
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                data_converter=pydantic_data_converter, search_attributes=search.KEYS)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = open_application(f"sqlite:///{tmp}/events.sqlite")
            try:
                requesting = app.create_project("Northwind website relaunch", MEMBERS,
                                                [{"after": "PT0.5S", "notify": ["pm"], "grant": ["pm"]}], [], "paula")
                providing = app.create_project("Platform team", providers, [], [], "paula")
                opening = OpenDependency(
                    actor="alice", dependency_id=str(uuid.uuid4()), project_id=str(requesting.id),
                    providing_project_id=str(providing.id), title="Sandbox credentials", owner={"user": "omar"},
                    needed_by=datetime.now(timezone.utc) + timedelta(seconds=60), stall_after="PT1S",
                    remind_before="PT59.5S")
                async with build_worker(env.client, app, "record"):
                    start = watch_start(WatchInput(opening=opening), "record")
                    await env.client.execute_update_with_start_workflow(DependencyWatchWorkflow.open,
                                                                       start_workflow_operation=start)
                    handle = await start.workflow_handle()
                    await asyncio.sleep(2.0)  # the reminder, the stall and the escalation fire
                    with contextlib.suppress(WorkflowUpdateFailedError):  # refused by the record: not the owner
                        await handle.execute_update(DependencyWatchWorkflow.resolve, Resolve(actor="carol"))
                    await handle.signal(DependencyWatchWorkflow.abandon, "an-update-whose-caller-left")
                    await handle.execute_update(DependencyWatchWorkflow.acknowledge, Acknowledge(actor="omar"))
                    await handle.execute_update(DependencyWatchWorkflow.progress,
                                                ReportProgress(actor="omar", note="ticket filed", percent=30))
                    await handle.execute_update(DependencyWatchWorkflow.reassign, ReassignOwner(
                        actor="paula", actor_roles=("pmo",), owner={"user": "olga"}, reason="omar is on leave"))
                    await asyncio.sleep(1.5)  # stalled again under the new owner
                    await handle.execute_update(DependencyWatchWorkflow.resolve,
                                                Resolve(actor="olga", note="credentials in the vault"))
                    return await save(handle, "dependency_watch")
            finally:
                app.close()
    finally:
        await env.shutdown()


# A history is recorded once, by the code of its time, and then only replayed: recording one again
# with today's code would hide exactly the incompatibility its replay is there to catch. So one is
# named each time, never all at once.
RECORDERS = {"approval_chain": record, "record_is_truth": record_record_is_truth,
             "search_attributes": record_search_attributes, "dependency_watch": record_dependency_watch}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in RECORDERS:
        sys.exit(f"usage: python -m tests.workflows.record_histories {{{'|'.join(RECORDERS)}}}\n"
                 "(each recorded history is made once, by the code that introduced it; do not re-record old ones)")
    print(asyncio.run(RECORDERS[sys.argv[1]]()))
