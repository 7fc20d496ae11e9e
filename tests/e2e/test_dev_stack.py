"""`signoff dev` as a user starts it: sign off through two stages, stop, start again, all still there."""

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

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(60) == 0
        self.log.close()
        # Every child went with it: nothing is left in the process group.
        try:
            os.killpg(self.proc.pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive, "signoff dev left processes behind"


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
        stack.stop()

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
