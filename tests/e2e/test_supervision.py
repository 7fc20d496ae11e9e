"""`signoff dev` supervises its children: a child killed with -9 is restarted (the log names it and its
exit code) and the stack serves again; Ctrl-C stops every process within 10 s even while a recording
hangs on a locked event store."""

import os
import signal
import sqlite3
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.builders import MEMBERS, revision
from tests.e2e.stack import DevStack, call


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """One stack for the three kill tests: starting one costs seconds."""
    stack = DevStack(tmp_path_factory.mktemp("supervised") / "data")
    stack.data_dir.mkdir()
    stack.start()
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            stack.stop()


@pytest.fixture(scope="module")
def project(stack: DevStack) -> str:
    return _project(stack)


def _project(stack: DevStack) -> str:
    r = call(stack, "POST", "/api/projects", "paula", ["pmo"], json={"name": "Supervised", "members": MEMBERS})
    assert r.status_code == 201, r.text
    policy = call(stack, "PUT", "/api/policies/two-step", "paula", ["pmo"], json={"stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"},
        {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]})
    assert policy.status_code in (200, 201), policy.text
    return r.json()["id"]


def submit(stack: DevStack, project: str, title: str) -> str:
    r = call(stack, "POST", "/api/deliverables", "alice", json={
        "project_id": project, "title": title, "policy": "two-step", "revision": revision(title)})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def decide(stack: DevStack, deliverable: str, user: str) -> httpx.Response:
    return call(stack, "POST", f"/api/deliverables/{deliverable}/decisions", user,
                json={"verdict": "approve", "revision": 1})


def kill_child(stack: DevStack, name: str) -> None:
    """kill -9 one child; the supervisor says so with its exit code and starts a new one."""
    pid, mark = stack.child(name), stack.log_mark()
    os.kill(pid, signal.SIGKILL)
    stack.wait_for_log(f"{name} exited with exit code -9 (SIGKILL)", since=mark)
    stack.wait_for_log(f"{name} restarted", since=mark)
    assert stack.child(name) != pid


def test_a_killed_worker_is_restarted_and_decisions_go_through(stack, project):
    kill_child(stack, "worker")
    deliverable = submit(stack, project, "after-worker-kill")
    r = decide(stack, deliverable, "bob")
    assert r.status_code == 200, r.text
    assert r.json()["stage"]["name"] == "sponsor"


def test_a_killed_api_is_restarted_and_answers(stack, project):
    kill_child(stack, "api")
    stack.wait_ready(timeout=30)
    assert call(stack, "GET", f"/api/projects/{project}", "paula", ["pmo"]).status_code == 200


def test_a_killed_temporal_is_restarted_on_its_file_and_chains_complete(stack, project):
    waiting = submit(stack, project, "before-temporal-kill")
    assert decide(stack, waiting, "bob").json()["stage"]["name"] == "sponsor"
    database = str(stack.data_dir / "temporal.sqlite")
    assert database in stack.command_line(stack.child("temporal"))

    mark = stack.log_mark()
    kill_child(stack, "temporal")
    stack.wait_for_log("Temporal answers again", since=mark)
    assert database in stack.command_line(stack.child("temporal"))

    # The chain that was waiting for its sponsor lived in that file, and finishes now.
    r = decide(stack, waiting, "sam")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    # And a chain started afterwards runs start to end.
    fresh = submit(stack, project, "after-temporal-kill")
    assert decide(stack, fresh, "bob").status_code == 200
    assert decide(stack, fresh, "sam").json()["status"] == "approved"


def test_ctrl_c_stops_everything_within_10_s_while_a_recording_hangs(tmp_path):
    stack = DevStack(tmp_path / "data")
    stack.data_dir.mkdir()
    stack.start()
    lock = None
    try:
        deliverable = submit(stack, _project(stack), "stuck")
        # A second connection holds the event store's write lock: the worker's recording of the
        # decision below waits for it (and retries), and the API waits for the recording.
        lock = sqlite3.connect(stack.data_dir / "events.sqlite", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        pending = threading.Thread(target=_decide_ignoring_errors, args=(stack, deliverable), daemon=True)
        pending.start()
        pending.join(3)
        assert pending.is_alive(), "the decision was not held up by the lock"

        assert stack.stop(within=10) < 10
    finally:
        if lock is not None:
            lock.close()
        if stack.proc.poll() is None:
            stack.kill()


def _decide_ignoring_errors(stack: DevStack, deliverable: str) -> None:
    try:
        decide(stack, deliverable, "bob")
    except httpx.HTTPError:
        pass  # the stack went away under it, as the test intends
