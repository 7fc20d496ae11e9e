"""PATCH /api/projects/{id}: a pmo changes who works on a project, where it escalates and its phases,
saying why; every change is an event on the project, and the lists show it."""

from typing import Any

from store.events import open_application
from tests.builders import MEMBERS

PMO = ("paula", "pmo")


async def patch(api, project_id: str, body: dict[str, Any], *who: str) -> Any:
    return await api.http.patch(f"/api/projects/{project_id}", headers=api.auth(*(who or PMO)), json=body)


def charter_events(api, project_id: str) -> list[Any]:
    store = open_application(api.settings.event_store_url())
    try:
        return list(store.events.get(store.get_project(project_id).id))
    finally:
        store.close()


async def test_adding_a_member_lets_them_see_the_project_and_the_lists_show_it(api):
    project_id = await api.project()
    assert (await api.http.get(f"/api/projects/{project_id}", headers=api.auth("ethan"))).status_code == 404
    members = [*MEMBERS, {"user": "ethan", "roles": ["design-lead"]}]
    r = await patch(api, project_id, {"members": members, "reason": "ethan joins design"})
    assert r.status_code == 200, r.text
    assert r.json()["members"][-1] == {"user": "ethan", "roles": ["design-lead"]}
    assert (await api.http.get(f"/api/projects/{project_id}", headers=api.auth("ethan"))).json() == r.json()
    [listed] = (await api.http.get("/api/projects", headers=api.auth("ethan"))).json()["items"]
    assert listed == r.json()
    [*_, changed] = charter_events(api, project_id)
    assert (type(changed).__name__, changed.actor, changed.reason) == ("CharterChanged", "paula", "ethan joins design")
    assert changed.escalation_path is None and changed.phases is None  # only what changed


async def test_a_removed_member_no_longer_sees_or_decides_but_running_chains_keep_their_approvers(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    assert (await api.decide(did, "bob")).status_code == 200  # design done; engineering: carol, dan, erin
    without_carol = [m for m in MEMBERS if m["user"] != "carol"]
    r = await patch(api, project_id, {"members": without_carol, "reason": "carol left the agency"})
    assert r.status_code == 200, r.text
    carol = api.auth("carol")
    for path in (f"/api/projects/{project_id}", f"/api/deliverables/{did}", f"/api/deliverables/{did}/history",
                 f"/api/deliverables?project_id={project_id}"):
        assert (await api.http.get(path, headers=carol)).status_code == 404, path
    assert (await api.http.get("/api/projects", headers=carol)).json()["items"] == []
    assert (await api.http.get("/api/inbox", headers=carol)).json()["items"] == []
    r = await api.decide(did, "carol")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", r.text
    state = (await api.http.get(f"/api/deliverables/{did}", headers=api.auth("alice"))).json()
    assert "carol" in state["stage"]["waiting_on"]  # the stage keeps the approvers it resolved
    history = (await api.http.get(f"/api/deliverables/{did}/history", headers=api.auth("alice"))).json()["items"]
    assert [h["actor"] for h in history if h["type"] == "DecisionRecorded"] == ["bob"]
    for user in ("dan", "erin"):  # the members who stay settle the stage
        assert (await api.decide(did, user)).status_code == 200
    assert (await api.http.get(f"/api/deliverables/{did}", headers=api.auth("alice"))).json()["stage"]["name"] == "sponsor"


async def test_changing_the_escalation_path_and_phases(api):
    project_id = await api.project(escalation_path=[{"after": "P1D", "notify": ["pm"]}])
    path = [{"after": "PT4H", "notify": ["pm"], "grant": []}, {"after": "P2D", "notify": ["sponsor"], "grant": ["pmo"]}]
    phases = [{"name": "Discovery", "planned_start": "2026-12-01", "planned_end": "2027-01-15"}]
    r = await patch(api, project_id, {"escalation_path": path, "phases": phases, "reason": "the client wants faster answers"},
                    "root", "admin")
    assert r.status_code == 200, r.text
    assert (r.json()["escalation_path"], r.json()["phases"], r.json()["members"]) == (path, phases, MEMBERS)
    [listed] = (await api.http.get("/api/projects", headers=api.auth("alice"))).json()["items"]
    assert listed == r.json()
    assert charter_events(api, project_id)[-1].actor == "root"


async def test_only_pmo_or_admin_and_only_a_project_that_exists(api):
    project_id = await api.project()
    r = await patch(api, project_id, {"phases": [], "reason": "tidy"}, "pete")  # a member, even the pm
    assert r.status_code == 403 and r.json()["type"] == "/problems/forbidden"
    r = await patch(api, "0b6f5c1e-4a1d-4f7e-9c55-2d8e7a3b9f10", {"phases": [], "reason": "tidy"})
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    assert len(charter_events(api, project_id)) == 1


async def test_invalid_changes_are_422_and_record_nothing(api):
    project_id = await api.project()
    for body, loc in [({"members": MEMBERS}, ["body", "reason"]),
                      ({"members": MEMBERS, "reason": ""}, ["body", "reason"]),
                      ({"members": [], "reason": "empty"}, ["body", "members"]),
                      ({"name": "Renamed", "reason": "no such part"}, ["body", "name"]),
                      ({"calendar": {"timezone": "Europe/Berlin", "country": "XX"}, "reason": "typo"},
                       ["body", "calendar", "country"])]:
        r = await patch(api, project_id, body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["loc"] == loc, (body, r.json())
    twice = [*MEMBERS, {"user": "alice", "roles": ["pm"]}]
    r = await patch(api, project_id, {"members": twice, "reason": "alice twice"})
    assert r.status_code == 422 and r.json()["type"] == "/problems/invalid", r.text
    assert len(charter_events(api, project_id)) == 1


async def test_a_change_that_changes_nothing_records_nothing(api):
    project_id = await api.project(escalation_path=[{"after": "P1D", "notify": ["pm"]}])
    before = (await api.http.get(f"/api/projects/{project_id}", headers=api.auth(*PMO))).json()
    for body in ({"reason": "nothing"}, {"members": MEMBERS, "escalation_path": before["escalation_path"],
                                          "phases": [], "reason": "the same again"}):
        r = await patch(api, project_id, body)
        assert r.status_code == 200 and r.json() == before, r.text
    assert [type(e).__name__ for e in charter_events(api, project_id)] == ["Created"]
