"""The past over HTTP (issue 11 items 1 and 2): `?as_of=` on every record, the project snapshot, and the
timelines of deliverables and dependencies, on the real stack (served API, worker, Temporal dev server).

Moments are taken from what the API itself answered (a record's `updated_at`, a history entry's `at`),
so the tests never depend on the test's own clock agreeing with the server's to the microsecond.
"""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.builders import MEMBERS, revision

PROVIDERS = [{"user": "omar", "roles": ["eng"]}, {"user": "olga", "roles": ["eng"]}]
OUTSIDER = "mallory"  # a member of no project
LONG_AGO = "2000-01-01T00:00:00Z"


async def get(api, path: str, user: str = "paula", **params: Any) -> Any:
    roles = ("pmo",) if user == "paula" else ()
    return await api.http.get(path, headers=api.auth(user, *roles), params=params)


def moment(text: str, **delta: float) -> str:
    return (datetime.fromisoformat(text) + timedelta(**delta)).isoformat()


def bare(interval: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in interval.items() if k not in ("from", "to", "duration_s")}


async def open_dependency(api, project_id: str, providing: str) -> dict[str, Any]:
    r = await api.http.post("/api/dependencies", headers=api.auth("alice"), json={
        "project_id": project_id, "providing_project_id": providing, "title": "Sandbox credentials",
        "owner": {"user": "omar"}, "needed_by": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "stall_after": "P2D"})
    assert r.status_code == 201, r.text
    return r.json()


def assert_no_gaps(timeline: dict[str, Any]) -> None:
    intervals = timeline["intervals"]
    assert intervals[0]["from"] == timeline["started_at"]
    for before, after in itertools.pairwise(intervals):
        assert before["to"] == after["from"], (before, after)
        assert before["duration_s"] == (datetime.fromisoformat(before["to"])
                                        - datetime.fromisoformat(before["from"])).total_seconds() >= 0
    assert intervals[-1]["to"] == timeline["ended_at"]


async def test_every_record_answers_as_of_a_moment(api):
    project_id = await api.project()
    created = (await get(api, f"/api/projects/{project_id}")).json()["created_at"]
    without_erin = [m for m in MEMBERS if m["user"] != "erin"]
    r = await api.http.patch(f"/api/projects/{project_id}", headers=api.auth("paula", "pmo"),
                             json={"members": without_erin, "reason": "erin moves to another team"})
    assert r.status_code == 200, r.text
    # The project: as it stood when created, and now.
    then = await get(api, f"/api/projects/{project_id}", as_of=created)
    assert then.status_code == 200 and then.json()["members"] == MEMBERS, then.text
    assert (await get(api, f"/api/projects/{project_id}", "alice", as_of=created)).json()["members"] == MEMBERS
    assert (await get(api, f"/api/projects/{project_id}")).json()["members"] == without_erin
    before = await get(api, f"/api/projects/{project_id}", as_of=moment(created, microseconds=-1))
    assert before.status_code == 404 and "did not exist yet" in before.json()["detail"], before.text
    assert before.headers["content-type"] == "application/problem+json"
    naive = await get(api, f"/api/projects/{project_id}", as_of="2026-11-27T10:00:00")
    assert naive.status_code == 422 and naive.json()["errors"][0]["loc"] == ["query", "as_of"], naive.text

    # The policy: the version that was the latest then.
    name = await api.policy()
    spec = (await get(api, f"/api/policies/{name}")).json()
    r = await api.http.put(f"/api/policies/{name}", headers=api.auth("paula", "pmo"),
                           json={"stages": spec["stages"], "on_revision": "resume"})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    published = [e["at"] for e in (await get(api, f"/api/policies/{name}/history")).json()["items"]
                 if e["type"] == "VersionPublished"]
    first = await get(api, f"/api/policies/{name}", as_of=published[0])
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["latest_version"], first.json()["on_revision"]) == (1, 1, "restart")
    second = (await get(api, f"/api/policies/{name}", as_of=moment(published[1], seconds=1))).json()
    assert (second["version"], second["on_revision"]) == (2, "resume")
    assert (await get(api, f"/api/policies/{name}", as_of=LONG_AGO)).status_code == 404
    assert (await get(api, f"/api/policies/{name}", as_of="2026-11-27T10:00")).status_code == 422
    # A version asked for as of a moment: one published by then, else a 404.
    assert (await get(api, f"/api/policies/{name}", version=1, as_of=published[1])).json()["version"] == 1
    unborn = await get(api, f"/api/policies/{name}", version=2, as_of=published[0])
    assert unborn.status_code == 404 and "no version 2" in unborn.json()["detail"], unborn.text

    # The deliverable and the dependency.
    deliverable = (await api.submit(project_id, name)).json()
    assert (await api.decide(deliverable["id"], "bob")).status_code == 200
    then = await get(api, f"/api/deliverables/{deliverable['id']}", "alice", as_of=deliverable["updated_at"])
    assert then.status_code == 200 and then.json()["stage"]["name"] == "design", then.text
    assert (await get(api, f"/api/deliverables/{deliverable['id']}")).json()["stage"]["name"] == "engineering"
    early = await get(api, f"/api/deliverables/{deliverable['id']}", as_of=moment(deliverable["created_at"],
                                                                                  microseconds=-1))
    assert early.status_code == 404 and "did not exist yet" in early.json()["detail"]
    assert (await get(api, f"/api/deliverables/{deliverable['id']}", as_of="2026-11-27T10:00")).status_code == 422
    providing = await api.project(members=PROVIDERS)
    dependency = await open_dependency(api, project_id, providing)
    r = await api.http.post(f"/api/dependencies/{dependency['id']}/acknowledge", headers=api.auth("omar"))
    assert r.status_code == 200, r.text
    then = await get(api, f"/api/dependencies/{dependency['id']}", "omar", as_of=dependency["updated_at"])
    assert then.status_code == 200 and then.json()["status"] == "open", then.text
    assert (await get(api, f"/api/dependencies/{dependency['id']}", as_of=LONG_AGO)).status_code == 404


async def test_a_policy_as_of_is_hidden_where_its_get_is(api):
    project_id = await api.project()
    spec = {"stages": [{"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]}
    name = await api.policy(spec)
    now = datetime.now(UTC).isoformat()
    # Nobody has submitted under it: only pmo and admin may read a version naming people.
    assert (await get(api, f"/api/policies/{name}", as_of=now)).status_code == 200
    hidden = await get(api, f"/api/policies/{name}", "alice", as_of=now)
    early = await get(api, f"/api/policies/{name}", "alice", as_of=LONG_AGO)
    assert hidden.status_code == early.status_code == 404
    assert hidden.json()["detail"] == early.json()["detail"] == f"no policy {name!r}"  # tells nothing
    assert (await api.submit(project_id, name)).status_code == 201
    assert (await get(api, f"/api/policies/{name}", "alice", as_of=datetime.now(UTC).isoformat())).status_code == 200


async def test_a_snapshot_shows_the_whole_project_at_two_moments(api):
    project_id = await api.project()
    providing = await api.project(members=PROVIDERS)
    name = await api.policy()
    first = (await api.submit(project_id, name)).json()
    dependency = await open_dependency(api, project_id, providing)
    t1 = max(first["updated_at"], dependency["updated_at"])
    assert (await api.decide(first["id"], "bob")).status_code == 200
    second = (await api.submit(project_id, name, revision=revision("other"))).json()
    assert (await api.http.post(f"/api/dependencies/{dependency['id']}/acknowledge",
                                headers=api.auth("omar"))).status_code == 200

    r = await get(api, f"/api/projects/{project_id}/snapshot", "alice", as_of=t1)
    assert r.status_code == 200, r.text
    then = r.json()
    assert datetime.fromisoformat(then["as_of"]) == datetime.fromisoformat(t1)
    assert then["project"]["id"] == project_id and then["project"]["members"] == MEMBERS
    assert [(d["id"], d["stage"]["name"], d["version"]) for d in then["deliverables"]] == [
        (first["id"], "design", first["version"])]
    assert [(d["id"], d["status"]) for d in then["dependencies"]] == [(dependency["id"], "open")]

    now = (await get(api, f"/api/projects/{project_id}/snapshot", "alice")).json()
    assert [(d["id"], d["stage"]["name"]) for d in now["deliverables"]] == [(first["id"], "engineering"),
                                                                           (second["id"], "design")]
    assert [(d["id"], d["status"]) for d in now["dependencies"]] == [(dependency["id"], "in_progress")]
    assert now["deliverables"][0] == (await get(api, f"/api/deliverables/{first['id']}")).json()
    # The providing project sees the dependency it owes, and none of the requester's deliverables.
    owed = (await get(api, f"/api/projects/{providing}/snapshot", "omar")).json()
    assert ([d["id"] for d in owed["dependencies"]], owed["deliverables"]) == ([dependency["id"]], [])

    created = (await get(api, f"/api/projects/{project_id}")).json()["created_at"]
    early = await get(api, f"/api/projects/{project_id}/snapshot", as_of=moment(created, microseconds=-1))
    assert early.status_code == 404 and "did not exist yet" in early.json()["detail"]
    assert (await get(api, f"/api/projects/{project_id}/snapshot", as_of="2026-11-27T10:00")).status_code == 422
    assert (await get(api, f"/api/projects/{project_id}/snapshot", "omar")).status_code == 404


async def test_a_deliverable_timeline_waits_on_fewer_after_each_decision(api):
    project_id = await api.project()
    name = await api.policy()
    did = (await api.submit(project_id, name)).json()["id"]
    path = f"/api/deliverables/{did}/timeline"
    waited = []
    for user, verdict in (("bob", "approve"), ("carol", "approve"), ("dan", "request_changes")):
        r = await api.decide(did, user, verdict, comment="logo too small" if verdict != "approve" else "")
        assert r.status_code == 200, r.text
        waited.append([bare(i) for i in (await get(api, path, "alice")).json()["intervals"]][-1])
    r = await api.http.post(f"/api/deliverables/{did}/revisions", headers=api.auth("alice"), json=revision("v2"))
    assert r.status_code == 200, r.text

    timeline = (await get(api, path, "alice")).json()
    assert_no_gaps(timeline)
    assert [(i["state"], i["stage"], i["revision"], i["waiting_on"]) for i in timeline["intervals"]] == [
        ("in_review", "design", 1, ["bob"]),
        ("in_review", "engineering", 1, ["carol", "dan", "erin"]),  # bob approved: design passed
        ("in_review", "engineering", 1, ["dan", "erin"]),  # carol approved
        ("changes_requested", None, 1, ["alice"]),  # dan asked for changes: alice's turn
        ("in_review", "design", 2, ["bob"]),  # the new revision restarts the chain
    ]
    assert waited == [bare(i) for i in timeline["intervals"][1:4]]  # what each decision's moment showed
    assert timeline["intervals"][-1]["to"] is None and timeline["ended_at"] is None
    assert timeline["status"] == "in_review" and timeline["id"] == did
    decisions = [(p["actor"], p["verdict"], p["stage"], p["revision"]) for p in timeline["points"]
                 if p["kind"] == "decision"]
    assert decisions == [("bob", "approve", "design", 1), ("carol", "approve", "engineering", 1),
                         ("dan", "request_changes", "engineering", 1)]
    assert [p["kind"] for p in timeline["points"]][-2:] == ["revision", "stage_opened"]
    # Each interval holds what GET ?as_of= answers at its start.
    for interval in timeline["intervals"][1:]:
        state = (await get(api, f"/api/deliverables/{did}", as_of=interval["from"])).json()
        assert (state["status"], state["revision"]) == (interval["state"], interval["revision"])
        assert (state["stage"]["waiting_on"] if state["stage"]["open"] else ["alice"]) == interval["waiting_on"]

    r = await api.http.post(f"/api/deliverables/{did}/withdraw", headers=api.auth("alice"), json={"reason": "paused"})
    assert r.status_code == 200, r.text
    ended = (await get(api, path, "alice")).json()
    assert_no_gaps(ended)
    assert ended["status"] == "withdrawn" and ended["ended_at"] == ended["points"][-1]["at"]
    assert ended["points"][-1]["kind"] == "withdrawal" and len(ended["intervals"]) == 5
    assert (await get(api, path, OUTSIDER)).status_code == 404
    assert (await get(api, f"/api/deliverables/{uuid.uuid4()}/timeline")).status_code == 404


async def test_a_dependency_timeline_runs_from_opening_to_resolution(api):
    project_id = await api.project()
    providing = await api.project(members=PROVIDERS)
    did = (await open_dependency(api, project_id, providing))["id"]
    for action, body in (("acknowledge", None), ("progress", {"note": "filed", "percent": 40}),
                         ("resolve", {"note": "in the vault"})):
        r = await api.http.post(f"/api/dependencies/{did}/{action}", headers=api.auth("omar"), json=body)
        assert r.status_code == 200, r.text
    timeline = (await get(api, f"/api/dependencies/{did}/timeline", "omar")).json()
    assert_no_gaps(timeline)
    # Progress on an in-progress dependency changes nothing an interval holds: it is a point only.
    assert [(i["state"], i["stalled"], i["overdue"], i["waiting_on"]) for i in timeline["intervals"]] == [
        ("open", False, False, ["omar"]), ("in_progress", False, False, ["omar"])]
    assert timeline["status"] == "resolved" and timeline["ended_at"] is not None
    assert [p["kind"] for p in timeline["points"]] == ["opening", "acknowledgement", "progress", "resolution"]
    assert timeline["points"][2]["percent"] == 40
    assert (await get(api, f"/api/dependencies/{did}/timeline", OUTSIDER)).status_code == 404


async def test_non_members_read_no_past(api):
    project_id = await api.project()
    now = datetime.now(UTC).isoformat()
    for path in (f"/api/projects/{project_id}", f"/api/projects/{project_id}/snapshot"):
        r = await get(api, path, OUTSIDER, as_of=now)
        assert r.status_code == 404 and r.json()["detail"] == f"no project {project_id}", r.text
    assert (await get(api, f"/api/projects/{uuid.uuid4()}/snapshot")).status_code == 404
