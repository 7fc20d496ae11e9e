"""DependencyWatchWorkflow on the real dev server, with second-scale durations: reminder, stall,
escalation levels in order, progress restarts the clock, resolve ends the watch, overdue; and a
refusal records nothing anywhere."""

import asyncio
import base64
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.application import Signoff
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    OpenDependency,
    ReportProgress,
    Resolve,
)
from domain.errors import DependencyClosed, Forbidden
from tests.builders import MEMBERS
from workers.devstack import temporal_binary
from workers.worker import build_worker
from workflows import search
from workflows.dependency_client import open_watch, send_to_watch, start_operation
from workflows.dependency_watch import DependencyWatchWorkflow
from workflows.messages import WatchInput, watch_workflow_id

PROVIDERS = [{"user": "omar", "roles": ["eng"]}, {"user": "olga", "roles": ["eng"]},
             {"user": "pia", "roles": ["pm"]}, {"user": "vic", "roles": ["vp"]}]
# Working time all day, every day: the wall-clock runs count on a calendar without changing a second.
ALWAYS = {"timezone": "UTC", "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "working_hours": ["00:00", "24:00"]}
PATH = [{"after": "PT1S", "notify": ["pm"]}, {"after": "PT2S", "notify": ["vp", "pmo"], "grant": ["pm"]}]


class Watches:
    def __init__(self, client: Any, app: Signoff, task_queue: str):
        self.client, self.app, self.task_queue = client, app, task_queue
        requesting = app.create_project("Northwind website relaunch", MEMBERS, PATH, [], "paula", calendar=ALWAYS)
        providing = app.create_project("Platform team", PROVIDERS, [], [], "paula")
        self.requesting, self.providing = str(requesting.id), str(providing.id)

    def deadline(self, seconds: float = 10) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=seconds)

    async def open(self, **fields: Any) -> tuple[str, WorkflowHandle]:
        body = {"project_id": self.requesting, "providing_project_id": self.providing,
                "title": "Sandbox credentials", "owner": {"user": "omar"},
                "needed_by": datetime.now(UTC) + timedelta(seconds=30), "stall_after": "PT2S", **fields}
        opening = OpenDependency(actor="alice", dependency_id=str(uuid.uuid4()), **body)
        await open_watch(self.client, self.task_queue, opening, self.deadline())
        return opening.dependency_id, self.client.get_workflow_handle_for(DependencyWatchWorkflow.run,
                                                                         watch_workflow_id(opening.dependency_id))

    async def send(self, command: type, dependency_id: str, actor: str = "omar", **fields: Any) -> Any:
        return await send_to_watch(self.client, command(actor=actor, dependency_id=dependency_id, **fields),
                                   self.deadline())

    def events(self, dependency_id: str) -> list[str]:
        return [e["type"] for e in self.app.dependency_history(dependency_id)]


@pytest.fixture
async def watches(temporal_env, sqlite_app):
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(temporal_env.client, sqlite_app, task_queue):
        yield Watches(temporal_env.client, sqlite_app, task_queue)


async def until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def test_stall_then_escalation_levels_in_order_each_recorded_once_with_its_due_time(watches):
    dependency_id, handle = await watches.open(remind_before="PT29S")
    await until(lambda: watches.events(dependency_id).count("Escalated") == 2, 15, "two escalations")
    history = watches.app.dependency_history(dependency_id)
    kinds = [e["type"] for e in history]
    assert kinds[:5] == ["Opened", "ReminderSent", "Stalled", "Escalated", "Escalated"], kinds
    stalled = next(e for e in history if e["type"] == "Stalled")
    escalations = [e for e in history if e["type"] == "Escalated"]
    assert [e["level"] for e in escalations] == [1, 2]
    # Each deadline records the due time the watch computed; it fired at or after it, never before.
    for entry in [stalled, *escalations]:
        assert datetime.fromisoformat(entry["at"]) >= datetime.fromisoformat(entry["due_at"])
    stalled_at = datetime.fromisoformat(stalled["due_at"])  # the steps count from when the clock ran out
    assert datetime.fromisoformat(escalations[0]["due_at"]) == stalled_at + timedelta(seconds=1)
    assert datetime.fromisoformat(escalations[1]["due_at"]) == stalled_at + timedelta(seconds=2)
    state = watches.app.get_dependency(dependency_id)
    assert state.stalled and [e.notified for e in state.escalations] == [["pete", "pia"], ["vic", "paula"]]
    assert state.escalations[1].granted == ["pete", "pia"]
    # The stall told the owner and the requester.
    assert stalled["told"] == ["omar", "alice"]


async def test_progress_restarts_the_clock_and_resolve_ends_the_watch(watches):
    dependency_id, handle = await watches.open(stall_after="PT3S")
    await asyncio.sleep(1.5)
    view = await watches.send(ReportProgress, dependency_id, note="request filed with IT", percent=20)
    assert view.status == "in_progress"
    await asyncio.sleep(2.0)  # 3.5 s after opening, 2 s after progress: a clock not restarted would have stalled
    assert "Stalled" not in watches.events(dependency_id)
    await until(lambda: "Stalled" in watches.events(dependency_id), 5, "the restarted clock's stall")
    await watches.send(ReportProgress, dependency_id, note="credentials generated", percent=80)
    state = watches.app.get_dependency(dependency_id)
    assert not state.stalled and state.status == "in_progress"
    await watches.send(Resolve, dependency_id, note="sent by 1Password")
    assert (await handle.result()).status == "resolved"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    with pytest.raises(DependencyClosed):
        await watches.send(Acknowledge, dependency_id)


async def test_an_unresolved_dependency_becomes_overdue_at_needed_by_and_cancel_ends_it(watches):
    needed_by = datetime.now(UTC) + timedelta(seconds=2)
    dependency_id, handle = await watches.open(needed_by=needed_by, stall_after="PT1M")
    await until(lambda: "BecameOverdue" in watches.events(dependency_id), 8, "overdue")
    entry = next(e for e in watches.app.dependency_history(dependency_id) if e["type"] == "BecameOverdue")
    assert datetime.fromisoformat(entry["due_at"]) == needed_by and entry["told"] == ["alice"]
    assert watches.app.get_dependency(dependency_id).overdue
    await watches.send(Cancel, dependency_id, actor="alice", reason="bought a managed sandbox instead")
    assert (await handle.result()).status == "cancelled"


async def test_a_refused_command_records_nothing_in_the_store_or_in_temporal(watches):
    dependency_id, handle = await watches.open(stall_after="PT1M")
    await watches.send(Resolve, dependency_id, note="done")
    before = [e.event_type for e in (await handle.fetch_history()).events]
    with pytest.raises(DependencyClosed):
        await watches.send(ReportProgress, dependency_id, note="late")
    assert [e.event_type for e in (await handle.fetch_history()).events] == before
    assert watches.events(dependency_id) == ["Opened", "Resolved"]


async def test_the_record_refuses_what_the_watch_cannot_judge(watches):
    dependency_id, handle = await watches.open(stall_after="PT1M")
    with pytest.raises(Forbidden):  # who may resolve needs the projects: the record asks
        await watches.send(Resolve, dependency_id, actor="carol", note="not mine to say")
    assert watches.events(dependency_id) == ["Opened"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_a_long_watch_continues_as_new_and_keeps_its_clock(watches):
    opening = OpenDependency(actor="alice", dependency_id=str(uuid.uuid4()), project_id=watches.requesting,
                             providing_project_id=watches.providing, title="Sandbox credentials",
                             owner={"user": "omar"}, needed_by=datetime.now(UTC) + timedelta(minutes=5),
                             stall_after="PT3S")
    start = start_operation(WatchInput(opening=opening, max_history=20), watches.task_queue)
    await watches.client.execute_update_with_start_workflow(DependencyWatchWorkflow.open,
                                                           start_workflow_operation=start)
    handle = watches.client.get_workflow_handle_for(DependencyWatchWorkflow.run, watch_workflow_id(opening.dependency_id))
    first_run = (await handle.describe()).run_id
    for percent in range(10, 90, 10):
        await watches.send(ReportProgress, opening.dependency_id, note=f"{percent}% done", percent=percent)
    assert (await handle.describe()).run_id != first_run
    # The new run keeps the clock: it stalls 3 s after the last progress, once.
    await until(lambda: "Stalled" in watches.events(opening.dependency_id), 8, "the stall after continue-as-new")
    await asyncio.sleep(0.5)
    assert watches.events(opening.dependency_id).count("Stalled") == 1
    assert watches.events(opening.dependency_id).count("ProgressReported") == 8


async def test_an_operator_reads_each_timer_and_its_due_time_with_the_temporal_cli(watches):
    dependency_id, handle = await watches.open(stall_after="PT1M", remind_before="PT10S")
    argv = [temporal_binary(), "workflow", "show", "--address", watches.client.service_client.config.target_host,
            "--namespace", watches.client.namespace, "--workflow-id", handle.id, "-o", "json"]
    history = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout)
    summaries = [base64.b64decode(e["userMetadata"]["summary"]["data"]).decode() for e in history["events"]
                 if e.get("timerStartedEventAttributes")]
    due = next(d for d in watches.app.dependency_watch(dependency_id).deadlines if d.kind == "reminder").due_at
    assert summaries == [json.dumps(f"reminder due {due.isoformat()}")]


async def test_an_operator_finds_a_projects_watches_by_its_id(watches):
    _, handle = await watches.open(stall_after="PT1M")
    described = await handle.describe()
    assert described.typed_search_attributes.get(search.PROJECT_ID) == watches.requesting
    assert await described.static_summary() == "Sandbox credentials"
