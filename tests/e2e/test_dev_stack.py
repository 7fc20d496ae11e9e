"""`signoff dev` as a user starts it: sign off through two stages, kill -9 everything, start again,
find it all still there, and stop with Ctrl-C leaving nothing behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.auth import mint_token
from tests.api.conftest import free_port
from tests.builders import MEMBERS, revision

ROOT = Path(__file__).resolve().parents[2]
SECRET = "e2e-secret-that-is-long-enough-for-hs256"


class DevStack:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.ports = {"--port": free_port(), "--temporal-port": free_port(), "--ui-port": free_port()}
        self.url = f"http://127.0.0.1:{self.ports['--port']}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        args = [str(Path(sys.executable).parent / "signoff"), "dev", "--data-dir", str(self.data_dir), "--no-demo"]
        for flag, port in self.ports.items():
            args += [flag, str(port)]
        env = {**os.environ, "SIGNOFF_JWT_SECRET": SECRET}
        self.log = open(self.data_dir.parent / "dev.log", "ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
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

    def stop(self) -> None:
        """Ctrl-C, as a user stops it: it exits cleanly and leaves no process behind."""
        assert self.proc is not None
        children = self.descendants()
        assert len(children) >= 3, children
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(60) == 0
        self.log.close()
        assert [pid for pid in children if alive(pid)] == [], "signoff dev left processes behind"

    def kill(self) -> None:
        """kill -9 of every process at once, as a crash or a pulled plug would."""
        assert self.proc is not None
        everyone = [self.proc.pid, *self.descendants()]
        for pid in everyone:
            os.kill(pid, signal.SIGKILL)
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


def test_sign_off_survives_a_restart(tmp_path):
    stack = DevStack(tmp_path / "data")
    stack.data_dir.mkdir()
    stack.start()
    try:
        project = call(stack, "POST", "/api/projects", "paula", ["pmo"], json={
            "name": "Contoso product launch", "members": MEMBERS}).json()
        assert call(stack, "PUT", "/api/policies/two-step", "paula", ["pmo"], json={"stages": [
            {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"},
            {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]}).status_code == 201
        r = call(stack, "POST", "/api/deliverables", "alice", json={
            "project_id": project["id"], "title": "Launch asset pack", "policy": "two-step", "revision": revision()})
        assert r.status_code == 201, r.text
        did = r.json()["id"]
        assert call(stack, "POST", f"/api/deliverables/{did}/decisions", "bob",
                    json={"verdict": "approve", "revision": 1}).json()["stage"]["name"] == "sponsor"
        pending = call(stack, "POST", "/api/deliverables", "alice", json={
            "project_id": project["id"], "title": "Press release", "policy": "two-step",
            "revision": revision("pr1")}).json()["id"]
        approved = call(stack, "POST", f"/api/deliverables/{did}/decisions", "sam",
                        json={"verdict": "approve", "comment": "go", "revision": 1}).json()
        assert approved["status"] == "approved"
    finally:
        stack.kill()

    stack.start()
    try:
        got = call(stack, "GET", f"/api/deliverables/{did}", "alice").json()
        assert got["status"] == "approved"
        assert [d["actor"] for d in got["decisions"]] == ["bob", "sam"]
        listed = call(stack, "GET", f"/api/deliverables?project_id={project['id']}", "alice").json()
        assert sorted(d["title"] for d in listed) == ["Launch asset pack", "Press release"]
        # The chain that was still running goes on where it stood.
        r = call(stack, "POST", f"/api/deliverables/{pending}/decisions", "bob", json={"verdict": "approve", "revision": 1})
        assert r.status_code == 200 and r.json()["stage"]["name"] == "sponsor"
    finally:
        stack.stop()
