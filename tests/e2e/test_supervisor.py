"""The supervisor beneath `signoff dev`, with real processes and short delays: a child that keeps
crashing is restarted with doubling delays up to the cap and never disturbs its siblings; one that ran
stably starts again from the first delay; stop() kills what ignores SIGTERM once its budget is spent."""

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from workers.supervisor import Supervisor

# Runs quickly (exit 3) as often as the counter file allows, then once for 3 s, then exits 3.
CRASHES_THEN_RUNS = """
import pathlib, sys, time
counter = pathlib.Path(sys.argv[1])
runs = int(counter.read_text() or 0) if counter.exists() else 0
counter.write_text(str(runs + 1))
if runs == int(sys.argv[2]):
    time.sleep(3)
sys.exit(3)
"""


def poll_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the supervisor did not get there in time"
        supervisor.poll()
        time.sleep(0.02)


def delays(said: list[str], name: str) -> list[float]:
    return [float(re.search(r"restarting it in (\S+) s", m).group(1)) for m in said if m.startswith(f"{name} exited")]


def test_a_crashing_child_backs_off_up_to_the_cap_and_leaves_the_others_alone():
    said: list[str] = []
    supervisor = Supervisor(said.append, first=0.1, cap=0.4)
    steady = supervisor.start("steady", [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
    supervisor.start("crashy", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    pid = steady.process.pid
    try:
        poll_until(supervisor, lambda: len(delays(said, "crashy")) >= 5)
        assert delays(said, "crashy")[:5] == [0.1, 0.2, 0.4, 0.4, 0.4]
        assert all("exit code 3 " in m for m in said if m.startswith("crashy exited"))
        assert sum(m.startswith("crashy restarted") for m in said) >= 4
        assert steady.running() and steady.process.pid == pid
        assert not any(m.startswith("steady") for m in said)
    finally:
        supervisor.stop(["steady", "crashy"], budget=5)
    assert not steady.running()


def test_a_child_that_ran_stably_restarts_after_the_first_delay_again(tmp_path: Path):
    said: list[str] = []
    supervisor = Supervisor(said.append, first=0.1, cap=0.4, stable_after=2.0)
    argv = [sys.executable, "-c", CRASHES_THEN_RUNS, str(tmp_path / "runs"), "3"]
    supervisor.start("flaky", argv, dict(os.environ))
    try:
        poll_until(supervisor, lambda: len(delays(said, "flaky")) >= 5)
        # Three quick deaths double the delay; the fourth run lasted 3 s, so its death starts over.
        assert delays(said, "flaky")[:5] == [0.1, 0.2, 0.4, 0.1, 0.2]
    finally:
        supervisor.stop(["flaky"], budget=5)


def test_stop_kills_a_child_that_ignores_sigterm_once_its_budget_is_spent(tmp_path: Path):
    said: list[str] = []
    supervisor = Supervisor(said.append)
    ready = tmp_path / "ignoring"
    stubborn = supervisor.start("stubborn", [sys.executable, "-c", (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"), str(ready)], dict(os.environ))
    poll_until(supervisor, ready.exists)
    began = time.monotonic()
    supervisor.stop(["stubborn"], budget=1)
    assert time.monotonic() - began < 5  # the budget, not the child's 60 s
    assert stubborn.process.returncode == -9
    assert said == ["stubborn did not stop within 1 s; killing it"]
    supervisor.poll()
    assert not stubborn.running(), "a stopped child must not be restarted"


def test_restart_now_cuts_a_long_backoff_short():
    said: list[str] = []
    supervisor = Supervisor(said.append, first=10, cap=40)  # as when Temporal was down a long while
    crashy = supervisor.start("crashy", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    try:
        poll_until(supervisor, lambda: crashy.restart_at is not None)
        supervisor.restart_now("crashy")
        supervisor.restart_now("not-started-yet")  # Temporal may come back before the others exist
        poll_until(supervisor, lambda: any(m.startswith("crashy restarted") for m in said), timeout=10)
        poll_until(supervisor, lambda: len(delays(said, "crashy")) >= 2)
        assert delays(said, "crashy")[:2] == [10, 10]  # not 20: the backoff began again
    finally:
        supervisor.stop(["crashy"], budget=5)
