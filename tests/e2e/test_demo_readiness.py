"""`signoff dev` with its demo, as a user (or a script waiting on /readyz) meets it on a first start:
/readyz says ready only once the whole demo is there, and the demo holds a deliverable in every state."""

import time

import httpx

from tests.e2e.stack import DevStack, call
from workers.demo import BERLIN, DELIVERABLES, DEPENDENCIES, POLICIES, PROJECTS

EVERY_STATE = {"in_review", "changes_requested", "approved", "rejected", "withdrawn"}


def test_ready_only_once_the_demo_is_in(tmp_path):
    stack = DevStack(tmp_path / "data", demo=True)
    stack.data_dir.mkdir()
    stack.launch()
    try:
        said: list[str] = []  # each problem type /readyz answered before it said ready
        deadline = time.monotonic() + 120
        while True:
            assert stack.proc.poll() is None, stack.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, f"never ready; said {sorted(set(said))}"
            try:
                answer = httpx.get(f"{stack.url}/readyz", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if answer.status_code == 200:
                break
            assert answer.status_code == 503 and answer.headers["retry-after"], answer.text
            said.append(answer.json()["type"])
            if said[-1] == "/problems/starting":  # HEAD, as a load balancer probes, says the same
                assert httpx.head(f"{stack.url}/readyz", timeout=5).status_code in (503, 200)
            time.sleep(0.05)

        # The moment it says ready, everything the demo loads is visible through the API.
        listed = call(stack, "GET", "/api/deliverables", "paula", ["pmo"]).json()["items"]
        assert sorted(d["title"] for d in listed) == sorted(d[1] for d in DELIVERABLES)
        assert {d["status"] for d in listed} == EVERY_STATE
        # ...including the last steps of every chain: each ends where its last action left it.
        by_title = {d["title"]: d["status"] for d in listed}
        assert by_title["Launch-day email campaign"] == "rejected"
        assert by_title["First release plan"] == "withdrawn"
        projects = call(stack, "GET", "/api/projects", "paula", ["pmo"]).json()["items"]
        assert sorted(p["name"] for p in projects) == sorted(PROJECTS)
        for name in POLICIES:
            assert call(stack, "GET", f"/api/policies/{name}", "paula", ["pmo"]).status_code == 200
        northwind = next(p for p in projects if p["name"] == "Northwind website relaunch")
        assert northwind["calendar"] == BERLIN
        dependencies = call(stack, "GET", "/api/dependencies", "paula", ["pmo"]).json()["items"]
        assert sorted(d["title"] for d in dependencies) == sorted(d[2] for d in DEPENDENCIES)
        taken_up = next(d for d in dependencies if d["title"] == "Load test of the checkout API")
        assert (taken_up["status"], taken_up["percent"]) == ("in_progress", 40)
        assert (stack.data_dir / "demo-loaded").exists()
        # Before that it said why: the demo was loading (the API was up, not merely unreachable).
        assert "/problems/starting" in said, said
        assert httpx.head(f"{stack.url}/readyz", timeout=5).status_code == 200
        assert httpx.head(f"{stack.url}/healthz", timeout=5).status_code == 200
        # A newcomer sees an escalation within a minute of the demo being in: the demo-paced
        # dependency stalls and escalates to the project managers of both sides, in their inbox.
        stalled_id = next(d["id"] for d in dependencies if d["title"] == "Design-system components for the app")
        until = time.monotonic() + 60
        while not call(stack, "GET", f"/api/dependencies/{stalled_id}", "paula", ["pmo"]).json()["escalations"]:
            assert time.monotonic() < until, "no escalation within a minute"
            time.sleep(1)
        state = call(stack, "GET", f"/api/dependencies/{stalled_id}", "priya").json()
        assert state["stalled"] and sorted(state["escalations"][0]["notified"]) == ["mike", "priya"]
        inbox = call(stack, "GET", "/api/inbox", "priya").json()["items"]
        assert any(i["kind"] == "escalation" and (i.get("dependency") or {}).get("id") == stalled_id for i in inbox)
    finally:
        stack.stop()
