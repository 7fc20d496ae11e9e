"""`signoff dev` as a user starts it, on free ports, for the e2e tests: start, find its children,
read its log, call its API, kill it, stop it with Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.auth import mint_token
from tests.api.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-secret-that-is-long-enough-for-hs256"


class DevStack:
    def __init__(self, data_dir: Path, demo: bool = False):
        self.data_dir = data_dir
        self.demo = demo
        self.ports = {"--port": free_port(), "--temporal-port": free_port(), "--ui-port": free_port()}
        self.url = f"http://127.0.0.1:{self.ports['--port']}"
        self.proc: subprocess.Popen | None = None

    def launch(self) -> None:
        """Start it, without waiting for anything."""
        args = [str(Path(sys.executable).parent / "signoff"), "dev", "--data-dir", str(self.data_dir),
                *([] if self.demo else ["--no-demo"])]
        for flag, port in self.ports.items():
            args += [flag, str(port)]
        env = {**os.environ, "SIGNOFF_JWT_SECRET": SECRET}
        self.log = open(self.data_dir.parent / "dev.log", "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def start(self) -> None:
        self.launch()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.data_dir.parent / "dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError("signoff dev did not become ready")

    def descendants(self) -> list[int]:
        """Every process below the supervisor (the dev server, the worker, the API)."""
        assert self.proc is not None
        found, frontier = [], [self.proc.pid]
        while frontier:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(frontier.pop())], capture_output=True, text=True)
            children = [int(pid) for pid in out.stdout.split()]
            found += children
            frontier += children
        return found

    def child(self, name: str) -> int:
        """The pid of the supervisor's child `temporal`, `worker`, `projector` or `api`, found by its command line."""
        assert self.proc is not None
        marks = {"temporal": "server start-dev", "worker": "workers.cli worker", "api": "workers.cli api",
                 "projector": "workers.cli projector"}
        out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        found = [int(line.split()[0]) for line in out.stdout.splitlines() if marks[name] in line]
        assert len(found) == 1, out.stdout
        return found[0]

    def command_line(self, pid: int) -> list[str]:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "dev.log"

    def log_mark(self) -> int:
        """Where the log ends now, so a later wait looks only at what came after."""
        return self.log_path.stat().st_size

    def wait_for_log(self, text: str, since: int = 0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log_path.read_bytes()[since:].decode(errors="replace"):
            assert time.monotonic() < deadline, f"{text!r} not in the log: " + self.log_path.read_text()[-3000:]
            time.sleep(0.2)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not answer /readyz"
            time.sleep(0.2)

    def stop(self, within: float = 60) -> float:
        """Ctrl-C, as a user stops it: it exits cleanly and leaves no process behind within `within`
        seconds; how long that took."""
        assert self.proc is not None
        children = self.descendants()
        assert len(children) >= 3, children
        began = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(within) == 0
        while any(alive(pid) for pid in children) and time.monotonic() - began < within:
            time.sleep(0.05)
        took = time.monotonic() - began
        self.log.close()
        assert [pid for pid in children if alive(pid)] == [], "signoff dev left processes behind"
        return took

    def kill(self) -> None:
        """kill -9 of every process at once, as a crash or a pulled plug would."""
        assert self.proc is not None
        everyone = [self.proc.pid, *self.descendants()]
        for pid in everyone:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it ended between the listing and the kill
        self.proc.wait(30)
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in everyone):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        self.log.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not read its status yet.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def call(stack: DevStack, method: str, path: str, user: str, roles=(), **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {mint_token(SECRET, user, list(roles))}"}
    return httpx.request(method, stack.url + path, headers=headers, timeout=30, **kwargs)
