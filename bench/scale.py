"""Scale: many open approval chains on one worker, then a burst of timers falling due together.

    .venv/bin/python bench/scale.py [--chains N] [--due M] [--store sqlite|postgresql] [--concurrency C]

1. N chains are opened straight through the Temporal client (update-with-start of `open`, as the
   workflow tests do), each under a one-stage policy whose SLA is six hours away, so every one stays
   open and waits on a timer. Reported: chains opened per second, and the resident memory of the one
   `signoff worker` process and of the Temporal dev server, before and after.
2. M more chains are opened whose stage escalates after a delay chosen at submission so that all M
   escalations fall due in the same second or two, after all of them are open. Reported, from the
   event store (each Escalated event's `at` against the deadline's `due_at` in StageOpened):
   lateness p50/p99/max and escalations recorded per second. Checked: every one of the M was
   escalated exactly once, nothing else was, and all N + M chains are still running.
Exits non-zero when a check fails, never because of a timing figure. See bench/README.md.
"""

import argparse
import asyncio
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from decisions import (
    connect_when_ready,
    percentile,
    spawn_worker,
    start_dev_server,
    stop_process,
)
from eventsourcing.utils import get_topic
from stores import store_url
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from domain.application import Signoff
from domain.commands import SubmitDeliverable
from domain.deliverable import Deliverable
from domain.policy_spec import PolicySpec
from store.events import open_application
from workflows.approval_chain import ApprovalChainWorkflow
from workflows.client import start_operation
from workflows.messages import ChainInput

MEMBERS = [{"user": "alice", "roles": ["author"]}, {"user": "carol", "roles": ["eng"]},
           {"user": "dan", "roles": ["eng"]}, {"user": "pete", "roles": ["pm"]}]
REVISION = {"uri": "https://files.example/scale.pdf", "sha256": "0" * 64, "note": "scale"}
SLA = "PT6H"  # far beyond the run: every chain stays open, waiting on this timer
ESCALATED = get_topic(Deliverable.Escalated)
SLA_BREACHED = get_topic(Deliverable.SlaBreached)
STICKY_CACHE = 1000  # temporalio Worker(max_cached_workflows=) default, which workers/worker.py keeps
OPEN_FAILURES = (RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, RuntimeError)


def stage(escalate_after: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "review", "rule": "all", "approvers": {"roles": ["eng"]}, "sla": SLA}
    if escalate_after is not None:
        spec["escalation"] = [{"after": f"PT{escalate_after}S", "notify": ["pm"]}]
    return spec


# ---- memory -----------------------------------------------------------------------------------

def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(child) for child in (task / "children").read_text().split()]
            except OSError:
                pass
    return pids


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of a process and all its descendants (VmHWM: the peak of each)."""
    return sum(status_kb(p, key) for p in process_tree(pid)) / 1024


@dataclass
class Memory:
    worker_pid: int
    server_pid: int
    samples: list[tuple[str, int, float, float]] = field(default_factory=list)  # label, chains open, MB, MB

    def sample(self, label: str, chains: int, key: str = "VmRSS") -> None:
        self.samples.append((label, chains, rss_mb(self.worker_pid, key), rss_mb(self.server_pid, key)))


# ---- opening chains ---------------------------------------------------------------------------

@dataclass
class Opener:
    client: Client
    task_queue: str
    project_id: str
    errors: list[str] = field(default_factory=list)

    async def open(self, policy: dict[str, Any]) -> str:
        """One chain, opened exactly as the API opens it (`workflows.client.start_operation`)."""
        deliverable_id = str(uuid.uuid4())
        chain = ChainInput(submission=SubmitDeliverable(
            deliverable_id=deliverable_id, actor="alice", project_id=self.project_id, title="Scale deliverable",
            policy=policy, revision=REVISION))
        start = start_operation(chain, self.task_queue)
        view = await self.client.execute_update_with_start_workflow(ApprovalChainWorkflow.open,
                                                                   start_workflow_operation=start)
        if view.status != "in_review":
            raise RuntimeError(f"chain {deliverable_id} opened as {view.status}")
        return deliverable_id

    async def many(self, count: int, concurrency: int, policy: Callable[[], dict[str, Any]],
                   progress: Callable[[int], None] = lambda done: None) -> tuple[list[str], float]:
        """`count` chains, at most `concurrency` in flight; `policy()` is asked right before each."""
        gate, opened = asyncio.Semaphore(concurrency), []

        async def one() -> None:
            async with gate:
                try:
                    opened.append(await self.open(policy()))
                except OPEN_FAILURES as exc:  # a check, reported at the end
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                progress(len(opened))

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return opened, time.perf_counter() - started


# ---- the burst ------------------------------------------------------------------------------

class Policies:
    """One policy per whole number of seconds to the escalation: a chain submitted `s` seconds before
    the target gets the one that escalates after ceil(s), so all fall due within about a second."""

    def __init__(self, app: Signoff, longest: int):
        self.by_after = {after: app.put_policy(f"scale-due-{after}-{uuid.uuid4().hex[:6]}",
                                               PolicySpec.model_validate({"stages": [stage(after)]}).model_dump(),
                                               "paula")[0]
                         for after in range(1, longest + 1)}

    def escalating_at(self, target: float) -> dict[str, Any]:
        after = math.ceil(target - time.time())
        return self.by_after[min(max(after, 1), len(self.by_after))]


async def escalations_since(app: Signoff, start: int, wanted: int, timeout: float) -> list[Any]:
    """Escalated notifications after `start`, polled until `wanted` are in or `timeout` (monotonic)."""
    seen: list[Any] = []
    position = start
    while True:
        batch = await asyncio.to_thread(app.recorder.select_notifications, position + 1, 1000,
                                        topics=[ESCALATED])
        seen += batch
        if batch:
            position = batch[-1].id
        if len(seen) >= wanted and not batch or time.monotonic() > timeout:
            return seen
        if not batch:
            await asyncio.sleep(1)


@dataclass
class Burst:
    lateness: list[float]  # seconds past due_at, one per escalated chain
    last_opened: datetime
    first_due: datetime
    last_at: datetime
    peak_per_second: int


def burst_figures(app: Signoff, ids: list[str]) -> tuple[Burst | None, list[str]]:
    """Lateness from each chain's own history: the Escalated `at` against the deadline's `due_at`."""
    problems, lateness, dues, ats, opens = [], [], [], [], []
    for deliverable_id in ids:
        events = list(app.events.get(uuid.UUID(deliverable_id)))
        opened = [e for e in events if type(e).__name__ == "StageOpened"]
        escalated = [e for e in events if type(e).__name__ == "Escalated"]
        if len(escalated) != 1:
            problems.append(f"{deliverable_id}: {len(escalated)} escalations recorded, expected 1")
            continue
        due = next(datetime.fromisoformat(d["due_at"]) for d in opened[-1].deadlines if d["kind"] == "escalation")
        at = datetime.fromisoformat(escalated[0].at)
        lateness.append((at - due).total_seconds())
        dues.append(due)
        ats.append(at)
        opens.append(datetime.fromisoformat(opened[-1].at))
    if not lateness:
        return None, problems
    per_second = Counter(int(at.timestamp()) for at in ats)
    return Burst(lateness, max(opens), min(dues), max(ats), max(per_second.values())), problems


# ---- the run --------------------------------------------------------------------------------

@dataclass
class Figures:
    n: int
    m: int
    open_rate: float
    open_seconds: float
    memory: Memory
    lead: float
    due_rate: float
    burst: Burst | None


async def count_running(client: Client, task_queue: str, expected: int) -> int:
    """Running chains on the task queue; visibility lags the workflows a little, so ask a few times."""
    for _ in range(10):
        count = (await client.count_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'")).count
        if count == expected:
            break
        await asyncio.sleep(1)
    return count


async def run(n: int, m: int, c: int, store_url: str, tmp: Path) -> tuple[Figures, list[str]]:
    problems: list[str] = []
    server, address = start_dev_server(tmp)
    worker = None
    app = open_application(store_url)
    try:
        client = await connect_when_ready(address, server)
        task_queue = f"scale-{uuid.uuid4().hex[:8]}"
        worker = spawn_worker(tmp, store_url, address, task_queue)
        project_id = str(app.create_project("Scale", MEMBERS, [], [], "paula").id)
        waiting = app.put_policy(f"scale-sla-{uuid.uuid4().hex[:6]}",
                                 PolicySpec.model_validate({"stages": [stage()]}).model_dump(), "paula")[0]
        opener = Opener(client, task_queue, project_id)
        memory = Memory(worker.pid, server.pid)

        # Phase 1: N chains waiting on a timer hours away (the first C warm the worker up, untimed).
        warm = min(c, n)
        await opener.many(warm, c, lambda: waiting)
        memory.sample("worker started, warmed up", warm)
        # Each quarter, and 1,000: as many workflows as the worker keeps cached (max_cached_workflows).
        marks = {n * q // 4 for q in (1, 2, 3)} | {STICKY_CACHE}

        def progress(done: int) -> None:
            if warm + done in marks and warm < warm + done < n:
                marks.discard(warm + done)
                memory.sample(f"{warm + done} chains open", warm + done)
                print(f"  {warm + done} chains open", file=sys.stderr, flush=True)

        opened, seconds = await opener.many(n - warm, c, lambda: waiting, progress)
        await asyncio.sleep(5)  # let the worker settle (its task slots drain, the collector runs)
        memory.sample(f"{n} chains open", n)
        print(f"  phase 1 done: {n} chains in {seconds:.0f} s", file=sys.stderr, flush=True)

        # Phase 2: M chains whose escalations fall due together once all are open: lead time is
        # twice what M openings took per chain in phase 1, plus 15 s.
        open_rate = len(opened) / seconds if seconds else 0.0
        lead = 2 * m / max(open_rate, 1.0) + 15
        policies = Policies(app, math.ceil(lead) + 1)
        start_position = app.recorder.max_notification_id() or 0
        target = time.time() + lead
        due_ids, due_seconds = await opener.many(m, c, lambda: policies.escalating_at(target))
        print(f"  phase 2: {len(due_ids)} chains opened in {due_seconds:.0f} s, due in {target - time.time():.0f} s",
              file=sys.stderr, flush=True)
        await asyncio.sleep(max(0.0, target - time.time()))
        notes = await escalations_since(app, start_position, len(due_ids), time.monotonic() + 300)
        memory.sample(f"{n + m} chains open, burst over", n + m)
        memory.sample("peak of the run (VmHWM)", n + m, "VmHWM")

        burst, missing = burst_figures(app, due_ids)
        problems += missing + opener.errors[:5]
        if opener.errors:
            problems.append(f"{len(opener.errors)} chains failed to open")
        strays = {str(note.originator_id) for note in notes} - set(due_ids)
        if strays:
            problems.append(f"{len(strays)} chains escalated that were not due: {sorted(strays)[:3]}")
        if len(notes) != len(due_ids):
            problems.append(f"{len(notes)} Escalated events recorded for {len(due_ids)} due chains")
        breaches = app.recorder.select_notifications(1, 10, topics=[SLA_BREACHED])
        if breaches:
            problems.append(f"an SLA six hours away was recorded as breached ({len(breaches)})")
        running = await count_running(client, task_queue, n + m)
        if running != n + m:
            problems.append(f"{running} chains running on the task queue, expected {n + m}")
        figures = Figures(n, m, open_rate, seconds, memory, lead, len(due_ids) / due_seconds if due_seconds else 0.0,
                          burst)
        return figures, problems
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)
        app.close()


def report(f: Figures, store: str) -> None:
    print(f"{f.n} waiting chains + {f.m} due together, one signoff worker, event store: {store}")
    print(f"opening (update-with-start of open, {f.n} chains): {f.open_rate:.1f} chains/s")
    print(f"{'resident memory':36}{'worker MB':>10}{'server MB':>10}   KB per chain opened since the row above")
    previous = None
    for label, chains, worker, server in f.memory.samples:
        growth = ""
        if previous and chains > previous[0]:
            added = chains - previous[0]
            growth = f"   worker {(worker - previous[1]) * 1024 / added:.1f}, server {(server - previous[2]) * 1024 / added:.1f}"
        print(f"{label:36}{worker:>10.0f}{server:>10.0f}{growth}")
        if not label.startswith("peak"):
            previous = (chains, worker, server)
    if f.burst is None:
        return
    b = f.burst
    before = "all open" if b.last_opened < b.first_due else "NOT all open"
    print(f"burst: {f.m} escalations due together (opened at {f.due_rate:.1f}/s, {f.lead:.0f} s lead; "
          f"{before} before the first fell due)")
    span = max((b.last_at - b.first_due).total_seconds(), 1e-3)
    print(f"{'':14}{'p50 s':>9}{'p99 s':>9}{'max s':>9}{'min s':>9}")
    print(f"{'lateness':14}{percentile(b.lateness, 0.5):>9.2f}{percentile(b.lateness, 0.99):>9.2f}"
          f"{max(b.lateness):>9.2f}{min(b.lateness):>9.2f}")
    print(f"escalations recorded: {len(b.lateness)} in {span:.1f} s from the first due_at to the last recorded "
          f"= {len(b.lateness) / span:.1f}/s (busiest second: {b.peak_per_second})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", "-n", type=int, default=10_000, help="chains waiting on a far timer (N)")
    parser.add_argument("--due", "-m", type=int, default=1_000, help="chains whose escalations fall due together (M)")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite", help="the event store")
    parser.add_argument("--concurrency", "-c", type=int, default=32, help="openings in flight at once (C)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="signoff-scale-"))
    url, drop = store_url(args.store, tmp)
    try:
        figures, problems = asyncio.run(run(args.chains, args.due, args.concurrency, url, tmp))
        report(figures, args.store)
    finally:
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
