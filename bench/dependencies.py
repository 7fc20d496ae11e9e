"""Dependency watches: many stall timers falling due in the same second on one worker.

    .venv/bin/python bench/dependencies.py [--count N] [--store sqlite|postgresql] [--concurrency C]

A Temporal dev server of its own and one `signoff worker` process (as bench/scale.py starts them).
N dependencies are opened straight through the Temporal client (`workflows.dependency_client.open_watch`,
as the API does, at most C at once), all due to stall at one instant after all N are open: by default
(`--clock calendar`) the requesting project's working time starts at that instant's whole minute and
`stall_after` is PT1S, so every clock, started outside working time, runs out one second into it;
with `--clock wall` each `stall_after` is what is left to the instant when it is sent, less the recent
opening latency. `needed_by` is a month away, and one escalation step follows each stall by a second.
Reported: dependencies opened per second, the
worker's resident memory before and after (VmRSS from /proc, with its peak VmHWM), from the event
store the lateness of each Stalled and Escalated event (its `at` minus the `due_at` the watch
recorded) p50/p99/max, stalls and escalations recorded per second, and the total wall time.
Checked (exit 1 when one fails; timing figures never fail the run): every dependency opened, each has
exactly one Stalled and one Escalated event, and every watch is still running. See bench/README.md.
"""

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from decisions import (
    connect_when_ready,
    cpu_seconds,
    percentile,
    spawn_worker,
    start_dev_server,
    stop_process,
)
from eventsourcing.utils import get_topic
from scale import OPEN_FAILURES, rss_mb
from stores import store_url
from temporalio.client import Client

from domain.application import Signoff
from domain.dependency import Dependency
from domain.dependency_commands import OpenDependency
from store.events import open_application
from workflows.dependency_client import open_watch

MEMBERS = [{"user": "alice", "roles": ["author"]}, {"user": "pete", "roles": ["pm"]}]
PROVIDERS = [{"user": "omar", "roles": ["eng"]}]
ESCALATION = [{"after": "PT1S", "notify": ["pm"]}]  # one step, a second after the stall
FAR = "PT6H"  # the warm-up's stall: beyond the run
ESCALATED = get_topic(Dependency.Escalated)
OPEN_TIMEOUT = 60.0  # seconds an opening may take before it counts as failed


@dataclass
class Opener:
    client: Client
    task_queue: str
    requesting: str
    providing: str
    errors: list[str] = field(default_factory=list)
    # Seconds from sending an opening to its recording (when its stall clock starts), a moving average.
    latency: float = 0.0

    async def open(self, stall_after: str) -> str:
        sent = time.time()
        opening = OpenDependency(
            actor="alice", dependency_id=str(uuid.uuid4()), project_id=self.requesting,
            providing_project_id=self.providing, title="Bench dependency", owner={"user": "omar"},
            needed_by=datetime.now(UTC) + timedelta(days=30), stall_after=stall_after, escalation=ESCALATION)
        view = await open_watch(self.client, self.task_queue, opening,
                                datetime.now(UTC) + timedelta(seconds=OPEN_TIMEOUT))
        if view.status != "open":
            raise RuntimeError(f"dependency {opening.dependency_id} opened as {view.status}")
        self.latency = 0.8 * self.latency + 0.2 * (view.clock_started_at.timestamp() - sent)
        return opening.dependency_id

    async def many(self, count: int, concurrency: int, stall_after: Any) -> tuple[list[str], float]:
        """`count` dependencies, at most `concurrency` in flight; `stall_after()` is asked right before each."""
        gate, opened = asyncio.Semaphore(concurrency), []

        async def one() -> None:
            async with gate:
                try:
                    opened.append(await self.open(stall_after()))
                except OPEN_FAILURES as exc:  # a check, reported at the end
                    self.errors.append(f"{type(exc).__name__}: {exc}")

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return opened, time.perf_counter() - started


def working_from(moment: datetime) -> dict[str, Any]:
    """A calendar whose working time starts at `moment` (a whole minute) and runs to midnight, every
    day: a clock started before it counts from `moment`, so `PT1S` from any of them is `moment` + 1 s.
    Its time zone keeps `moment` away from midnight, so the escalation after the stall stays that day."""
    zone = "UTC" if 1 <= moment.hour <= 22 else "Etc/GMT+12"  # (POSIX sign: UTC-12)
    local = moment.astimezone(ZoneInfo(zone))
    return {"timezone": zone, "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "working_hours": [local.strftime("%H:%M"), "24:00"]}


def next_minute(epoch: float) -> datetime:
    return datetime.fromtimestamp((int(epoch) // 60 + 1) * 60, UTC)


def due_at(target: float, latency: float) -> str:
    """The stall_after that makes a clock run out at `target` (epoch seconds), to the ms: the clock
    starts when the opening is recorded, `latency` seconds after it is sent (as the last ones took)."""
    return f"PT{max(target - time.time() - latency, 1.0):.3f}S"


@dataclass
class Fired:
    lateness: list[float] = field(default_factory=list)
    dues: list[datetime] = field(default_factory=list)
    ats: list[datetime] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        due, at = datetime.fromisoformat(entry["due_at"]), datetime.fromisoformat(entry["at"])
        self.lateness.append((at - due).total_seconds())
        self.dues.append(due)
        self.ats.append(at)


def recorded(app: Signoff, ids: list[str]) -> tuple[Fired, Fired, list[str], datetime]:
    """Each dependency's Stalled and Escalated events from its history; problems; the last opening."""
    stalls, escalations, problems, opened = Fired(), Fired(), [], []
    for dependency_id in ids:
        history = app.dependency_history(dependency_id)
        opened.append(datetime.fromisoformat(history[0]["at"]))
        for kind, fired in (("Stalled", stalls), ("Escalated", escalations)):
            entries = [e for e in history if e["type"] == kind]
            if len(entries) != 1:
                problems.append(f"{dependency_id}: {len(entries)} {kind} events, expected 1")
            for entry in entries:
                fired.add(entry)
    return stalls, escalations, problems, max(opened)


async def wait_for_burst(app: Signoff, start: int, wanted: int, timeout: float) -> None:
    """Until `wanted` Escalated events follow notification `start` (or `timeout`, monotonic): the
    notification log is read once a second by topic, which costs the worker's store next to nothing."""
    position, seen = start, 0
    while seen < wanted and time.monotonic() < timeout:
        await asyncio.sleep(1)
        while batch := await asyncio.to_thread(app.recorder.select_notifications, position + 1, 1000,
                                               topics=[ESCALATED]):
            seen += len(batch)
            position = batch[-1].id


async def count_running(client: Client, task_queue: str, expected: int) -> int:
    for _ in range(10):  # visibility lags the workflows a little
        count = (await client.count_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'")).count
        if count == expected:
            break
        await asyncio.sleep(1)
    return count


def rate_line(name: str, fired: Fired) -> str:
    if not fired.ats:
        return f"{name}: none recorded"
    span = max((max(fired.ats) - min(fired.dues)).total_seconds(), 1e-3)
    busiest = max(Counter(int(at.timestamp()) for at in fired.ats).values())
    return (f"{name} recorded: {len(fired.ats)} in {span:.1f} s from the first due_at to the last recorded "
            f"= {len(fired.ats) / span:.1f}/s (busiest second: {busiest})")


async def run(n: int, c: int, url: str, store: str, clock: str, tmp: Path) -> list[str]:
    began = time.monotonic()
    problems: list[str] = []
    server, address = start_dev_server(tmp)
    worker = None
    app = open_application(url)
    try:
        client = await connect_when_ready(address, server)
        task_queue = f"bench-dependencies-{uuid.uuid4().hex[:8]}"
        worker = spawn_worker(tmp, url, address, task_queue)
        requesting = str(app.create_project("Bench warm-up", MEMBERS, [], [], "paula").id)
        providing = str(app.create_project("Bench providing", PROVIDERS, [], [], "paula").id)
        opener = Opener(client, task_queue, requesting, providing)

        # Warm-up: C dependencies whose stall is hours away; they measure how fast openings go.
        first, _ = await opener.many(1, 1, lambda: FAR)  # answered once the worker is up
        warm, warm_seconds = await opener.many(c, c, lambda: FAR)
        warm += first
        rss_before, hwm_before = rss_mb(worker.pid), rss_mb(worker.pid, "VmHWM")
        rate = len(warm) / warm_seconds if warm_seconds else 1.0
        # Lead: twice what N openings take at the warm-up's pace, plus 15 s: all open before the first is due.
        lead = 2 * n / max(rate, 1.0) + 15
        if clock == "calendar":
            # Every clock starts outside working time, so every stall is due one second into it.
            starts = next_minute(time.time() + lead)
            calendar = working_from(starts)
            target = starts.timestamp() + 1
            opener.requesting = str(app.create_project("Bench requesting", MEMBERS, [], [], "paula",
                                                       calendar=calendar).id)
            stall_after = lambda: "PT1S"
        else:
            # Wall time: each stall_after is what is left to the target when it is sent, less the
            # latency of the last openings; the stalls fall due within about that latency's spread.
            target, calendar = time.time() + lead, None
            stall_after = lambda: due_at(target, opener.latency)
        print(f"  warm-up: {len(warm)} at {rate:.1f}/s; opening {n}, all due in {target - time.time():.0f} s"
              f" ({clock} clock: {calendar})", file=sys.stderr, flush=True)
        start_position = app.recorder.max_notification_id() or 0
        ids, seconds = await opener.many(n, c, stall_after)
        open_rate = len(ids) / seconds if seconds else 0.0
        print(f"  {len(ids)} opened in {seconds:.1f} s, {target - time.time():.1f} s before they fall due",
              file=sys.stderr, flush=True)
        await asyncio.sleep(max(0.0, target - time.time()))
        burst_began, cpu_before = time.monotonic(), (cpu_seconds(worker.pid), cpu_seconds(server.pid))
        await wait_for_burst(app, start_position, len(ids), time.monotonic() + 300)
        burst_wall = time.monotonic() - burst_began
        cpu = (cpu_seconds(worker.pid) - cpu_before[0], cpu_seconds(server.pid) - cpu_before[1])
        await asyncio.sleep(2)  # anything doubled would be recorded by now
        rss_after, hwm_after = rss_mb(worker.pid), rss_mb(worker.pid, "VmHWM")

        stalls, escalations, missing, last_opened = recorded(app, ids)
        problems += missing[:5] + opener.errors[:5]
        if len(missing) > 5:
            problems.append(f"... {len(missing)} problems with the events in all")
        if opener.errors:
            problems.append(f"{len(opener.errors)} dependencies failed to open")
        running = await count_running(client, task_queue, len(ids) + len(warm))
        if running != len(ids) + len(warm):
            problems.append(f"{running} watches running on the task queue, expected {len(ids) + len(warm)}")

        print(f"{n} dependencies with stall timers due together, one signoff worker, event store: {store}, "
              f"{clock} clock")
        print(f"opening (update-with-start of open, concurrency {c}): {open_rate:.1f} dependencies/s "
              f"({len(ids)} in {seconds:.1f} s)")
        print(f"{'worker resident memory':34}{'VmRSS MB':>10}{'VmHWM MB':>10}")
        print(f"{f'before ({len(warm)} warm-up watches open)':34}{rss_before:>10.0f}{hwm_before:>10.0f}")
        print(f"{f'after ({len(ids) + len(warm)} open, burst over)':34}{rss_after:>10.0f}{hwm_after:>10.0f}")
        if stalls.dues:
            spread = (max(stalls.dues) - min(stalls.dues)).total_seconds()
            before = "all open" if last_opened < min(stalls.dues) else "NOT all open"
            print(f"stalls due within {spread:.2f} s of each other; {before} before the first fell due")
        print(f"{'lateness (at - due_at)':24}{'p50 s':>9}{'p99 s':>9}{'max s':>9}{'min s':>9}")
        for name, fired in (("stall", stalls), ("escalation", escalations)):
            if fired.lateness:
                late = fired.lateness
                print(f"{name:24}{percentile(late, 0.5):>9.2f}{percentile(late, 0.99):>9.2f}"
                      f"{max(late):>9.2f}{min(late):>9.2f}")
        print(rate_line("stalls", stalls))
        print(rate_line("escalations", escalations))
        print(f"CPU while the burst drained ({burst_wall:.1f} s): worker {cpu[0]:.1f} s, dev server {cpu[1]:.1f} s "
              f"= {cpu[0] * 1000 / max(len(ids), 1):.1f} and {cpu[1] * 1000 / max(len(ids), 1):.1f} ms per dependency "
              f"(a stall and an escalation each)")
        print(f"total wall time: {time.monotonic() - began:.1f} s")
        return problems
    finally:
        if worker is not None:
            stop_process(worker)
        stop_process(server)
        app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", "-n", type=int, default=1_000, help="dependencies whose stalls fall due together")
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite",
                        help="the event store (postgresql: a fresh schema at 127.0.0.1:5432, dropped afterwards)")
    parser.add_argument("--concurrency", "-c", type=int, default=32, help="openings in flight at once")
    parser.add_argument("--clock", choices=["calendar", "wall"], default="calendar",
                        help="calendar: the requesting project's working time starts at one whole minute, so "
                             "every stall (PT1S) is due at the same instant; wall: stall_after per dependency, "
                             "so they fall due within the spread of the opening latency")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="signoff-dependencies-"))
    url, drop = store_url(args.store, tmp)
    try:
        problems = asyncio.run(run(args.count, args.concurrency, url, args.store, args.clock, tmp))
    finally:
        drop()
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print(f"CHECK FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
