"""`signoff dev` as a user starts it: sign off through two stages, kill -9 everything, start again,
find it all still there (the audit trail too), and stop with Ctrl-C leaving nothing behind."""

from tests.builders import MEMBERS, revision
from tests.e2e.stack import DevStack, call


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
        listed = call(stack, "GET", f"/api/deliverables?project_id={project['id']}", "alice").json()["items"]
        assert sorted(d["title"] for d in listed) == ["Launch asset pack", "Press release"]
        # The chain that was still running goes on where it stood.
        r = call(stack, "POST", f"/api/deliverables/{pending}/decisions", "bob", json={"verdict": "approve", "revision": 1})
        assert r.status_code == 200 and r.json()["stage"]["name"] == "sponsor"
        # The audit projector came back too: the trail holds every decision and verifies against the store.
        trail = call(stack, "GET", f"/api/audit?subject_id={did}&order=asc", "paula", ["pmo"]).json()["items"]
        assert [r["actor"] for r in trail if r["action"] == "deliverable.decision.approved"] == ["bob", "sam"]
        verified = call(stack, "GET", "/api/audit/verify", "paula", ["pmo"]).json()
        assert verified["ok"] is True and verified["checkpoints"]["verified"] >= 1, verified
    finally:
        stack.stop()
