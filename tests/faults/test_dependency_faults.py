"""Dependency watches through crashes, in the production topology (a dev server on its SQLite file,
two `signoff worker` processes, the event store on PostgreSQL): a Temporal restart with a stall timer
pending fires the stall once, and a worker killed (-9) right after recording an escalation leaves it
recorded once; in both the later escalation levels still fire once each and the watch goes on.

The watches are opened and driven through the Temporal client (workflows/dependency_client.py), as
the API does, without the API itself; the record is read from the event store."""

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from domain.dependency_commands import OpenDependency, Resolve
from tests.builders import MEMBERS
from tests.faults.topology import Topology, production_topology
from workflows.dependency_client import open_watch, send_to_watch
from workflows.dependency_watch import DependencyWatchWorkflow
from workflows.messages import watch_workflow_id

PROVIDERS = [{"user": "omar", "roles": ["eng"]}, {"user": "pia", "roles": ["pm"]}, {"user": "vic", "roles": ["vp"]}]
# Working time all day, every day: the wall-clock runs count on a calendar without changing a second.
ALWAYS = {"timezone": "UTC", "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
          "working_hours": ["00:00", "24:00"]}
STALL = 2.0  # stall_after, seconds; the escalation steps follow the stall by 1 s and 2 s
PATH = [{"after": "PT1S", "notify": ["pm"]}, {"after": "PT2S", "notify": ["vp", "pmo"]}]
WATCH_THEN_RESOLVE = ["Opened", "Stalled", "Escalated", "Escalated", "Resolved"]
KILL_MARK = "kill-after-dependency-deadline:escalation"  # tests/fault_worker.py


class Dependencies:
    """Two projects in the topology's store, and watches between them opened through Temporal."""

    def __init__(self, topology: Topology):
        self.topology = topology
        app = topology.app
        self.requesting = str(app.create_project("Northwind website relaunch", MEMBERS, PATH, [], "paula",
                                                 calendar=ALWAYS).id)
        self.providing = str(app.create_project("Platform team", PROVIDERS, [], [], "paula").id)

    @staticmethod
    def deadline() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=10)

    async def open(self) -> str:
        """A dependency that stalls after STALL seconds; needed_by is far beyond the test."""
        opening = OpenDependency(
            actor="alice", dependency_id=str(uuid.uuid4()), project_id=self.requesting,
            providing_project_id=self.providing, title="Sandbox credentials", owner={"user": "omar"},
            needed_by=datetime.now(UTC) + timedelta(hours=1), stall_after=f"PT{STALL:g}S")
        view = await open_watch(self.topology.client, self.topology.settings.task_queue, opening, self.deadline())
        assert view.status == "open", view
        return opening.dependency_id

    async def resolve(self, dependency_id: str) -> None:
        view = await send_to_watch(self.topology.client, Resolve(actor="omar", dependency_id=dependency_id,
                                                                 note="sent by 1Password"), self.deadline())
        assert view.status == "resolved", view
        handle = self.topology.client.get_workflow_handle_for(DependencyWatchWorkflow.run,
                                                               watch_workflow_id(dependency_id))
        assert (await asyncio.wait_for(handle.result(), 20)).status == "resolved"
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    def history(self, dependency_id: str) -> list[dict[str, Any]]:
        return self.topology.app.dependency_history(dependency_id)

    def count(self, dependency_id: str, kind: str) -> int:
        return sum(1 for e in self.history(dependency_id) if e["type"] == kind)

    def assert_each_step_once(self, dependency_id: str) -> list[dict[str, Any]]:
        """Opened, one stall, escalation levels 1 and 2 in order, each under its own command id, each
        at or after the due time the watch recorded, the levels counted from when the stall was due
        (not from its recording, which a restart made late)."""
        history = self.history(dependency_id)
        assert [e["type"] for e in history] == WATCH_THEN_RESOLVE[:4], history
        stalled, *escalations = history[1:]
        assert [e["level"] for e in escalations] == [1, 2], escalations
        ids = Counter(e["command_id"] for e in history if e.get("command_id"))
        assert all(n == 1 for n in ids.values()), ids
        for entry in [stalled, *escalations]:
            assert datetime.fromisoformat(entry["at"]) >= datetime.fromisoformat(entry["due_at"]), entry
        stalled_at = datetime.fromisoformat(stalled["due_at"])
        assert [datetime.fromisoformat(e["due_at"]) - stalled_at for e in escalations] == [
            timedelta(seconds=1), timedelta(seconds=2)]
        return history


async def until(predicate, timeout: float, what: str, topology: Topology) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not reached within {timeout:.0f} s: {what}\n{topology.log_tail()}"
        await asyncio.sleep(0.1)


async def test_temporal_restart_with_stall_timers_pending_fires_each_once(tmp_path, pg_schema_url):
    async with production_topology(tmp_path, pg_schema_url, api=False) as topology:
        dependencies = Dependencies(topology)
        ids = await asyncio.gather(*(dependencies.open() for _ in range(3)))
        opened = time.monotonic()

        topology.kill_temporal()
        assert [dependencies.count(d, "Stalled") for d in ids] == [0, 0, 0], \
            "a stall fell due before Temporal was killed: the test proves nothing"
        # Down past every stall's due time, then back on the same file.
        await asyncio.sleep(max(0.0, opened + STALL + 1.0 - time.monotonic()))
        assert [dependencies.count(d, "Stalled") for d in ids] == [0, 0, 0], "recorded with Temporal down"
        restarted_at = datetime.now(UTC)
        await topology.start_temporal()

        await until(lambda: all(dependencies.count(d, "Escalated") == 2 for d in ids), 30,
                    "every stall and both escalation levels after the restart", topology)
        await asyncio.sleep(2.0)  # a stall or escalation fired twice would be recorded by now
        for dependency_id in ids:
            history = dependencies.assert_each_step_once(dependency_id)
            stalled = history[1]
            # It was pending across the restart: due while the server was down, recorded after it came back.
            assert datetime.fromisoformat(stalled["due_at"]) < restarted_at <= datetime.fromisoformat(stalled["at"])

        # The watches go on: resolve ends each, and nothing more was recorded.
        for dependency_id in ids:
            await dependencies.resolve(dependency_id)
            assert [e["type"] for e in dependencies.history(dependency_id)] == WATCH_THEN_RESOLVE


async def test_worker_killed_right_after_recording_an_escalation_records_it_once(tmp_path, pg_schema_url):
    async with production_topology(tmp_path, pg_schema_url, api=False, faults=KILL_MARK) as topology:
        dependencies = Dependencies(topology)
        dependency_id = await dependencies.open()

        # Whichever worker holds the watch records escalation level 1 and dies (-9) before Temporal hears.
        await until(lambda: any(w.poll() is not None for w in topology.workers), 20,
                    "a worker killed right after recording the escalation", topology)
        first = next(i for i, w in enumerate(topology.workers) if w.poll() is not None)
        assert topology.workers[first].returncode == -9, topology.log_tail()
        assert dependencies.count(dependency_id, "Escalated") == 1
        # The other one is armed too (it would die the same way on the retry): kill it as well, as
        # test_workers_killed does, and start both again without the fault.
        topology.kill_worker(1 - first)
        await asyncio.gather(topology.start_worker(0), topology.start_worker(1))

        # Temporal retries the workflow task whose result was lost: the repeated recording is a
        # no-op, and level 2 (due meanwhile) fires once.
        await until(lambda: dependencies.count(dependency_id, "Escalated") == 2, 30,
                    "escalation level 2 after the restart", topology)
        await asyncio.sleep(2.0)  # a repeat would be recorded by now
        dependencies.assert_each_step_once(dependency_id)
        handle = topology.client.get_workflow_handle(watch_workflow_id(dependency_id))
        lost = [e for e in (await handle.fetch_history()).events
                if e.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)]
        assert lost, "no workflow task was lost: the kill did not hit the recording's task"

        await dependencies.resolve(dependency_id)
        assert [e["type"] for e in dependencies.history(dependency_id)] == WATCH_THEN_RESOLVE
