"""Child processes kept alive: one that dies is restarted with exponential backoff, and all of them
stop within a fixed budget.

Each child leads its own process group, so a Ctrl-C in the terminal reaches only the supervisor, and
stopping a child stops whatever it started. On Linux each child also gets SIGTERM if the supervisor
itself dies, so nothing is left behind even after a `kill -9` of the supervisor.
"""

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

RESTART_FIRST = 1.0  # seconds before the first restart; doubles with each quick death
RESTART_CAP = 30.0
STABLE_AFTER = 60.0  # a child that ran this long was healthy: its next death waits RESTART_FIRST again

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _in_child() -> None:
    # The supervisor blocks the stop signals while it forks (see Child.start); exec keeps the mask.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name, self.argv, self.env = name, argv, env
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.quick_deaths = 0  # deaths in a row, each before the child ran `stable_after` seconds
        self.restart_at: float | None = None
        self.last_exit: int | None = None

    def start(self) -> None:
        # A Ctrl-C between the fork and the assignment would leave a process nobody stops.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            self.process = subprocess.Popen(self.argv, env=self.env, process_group=0, preexec_fn=_in_child)
            self.started = time.monotonic()
            self.restart_at = None
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)  # the child leads its own group (process_group=0)
        except ProcessLookupError:
            pass


class Supervisor:
    def __init__(self, say: Callable[[str], None], first: float = RESTART_FIRST, cap: float = RESTART_CAP,
                 stable_after: float = STABLE_AFTER):
        self.say = say
        self.first, self.cap, self.stable_after = first, cap, stable_after
        self.children: dict[str, Child] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = self.children[name] = Child(name, argv, env)
        child.start()
        return child

    def poll(self) -> list[str]:
        """Notice deaths, schedule their restarts, carry out those that are due; the names restarted."""
        now = time.monotonic()
        restarted = []
        for child in self.children.values():
            process = child.process
            if child.restart_at is None and process is not None and process.poll() is not None:
                self._schedule_restart(child, process.returncode, now)
            if child.restart_at is not None and now >= child.restart_at:
                child.start()
                self.say(f"{child.name} restarted (pid {child.process.pid})")
                restarted.append(child.name)
        return restarted

    def _schedule_restart(self, child: Child, code: int, now: float) -> None:
        ran = now - child.started
        if ran >= self.stable_after:
            child.quick_deaths = 0
        delay = min(self.first * 2 ** child.quick_deaths, self.cap)
        child.quick_deaths += 1
        child.last_exit = code
        child.restart_at = now + delay
        self.say(f"{child.name} exited with {describe_exit(code)} after {ran:.1f} s; restarting it in {delay:g} s")

    def restart_now(self, name: str) -> None:
        """A child waiting for its restart starts at the next poll, its backoff forgotten."""
        child = self.children.get(name)
        if child is not None and child.restart_at is not None:
            child.restart_at = time.monotonic()
            child.quick_deaths = 0

    def stop(self, names: list[str], budget: float) -> None:
        """SIGTERM these children's groups, give them `budget` seconds in all, then SIGKILL the rest."""
        live = [self.children[n] for n in names if n in self.children and self.children[n].running()]
        for child in live:
            child.restart_at = None
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + budget
        for child in live:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop within {budget:.0f} s; killing it")
                child.signal(signal.SIGKILL)
                child.process.wait()
        for name in names:
            if name in self.children:
                self.children[name].restart_at = None
