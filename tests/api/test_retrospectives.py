"""Retrospectives and what-ifs over HTTP (issue 11 items 3 and 4), on a scripted project recorded through
the real stack: the served API, a real worker and Temporal dev server, the audit projector. Counts are
asserted exactly; times within the scheduling jitter of second-scale deadlines."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.builders import revision

JITTER = 1.5  # seconds: a deadline fires, a decision round-trips through Temporal, within this

POLICY = {
    "stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "sla": "PT3S",
         "escalation": [{"after": "PT2S", "notify": ["pm"]}]},
        {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2, "sla": "PT30S",
         "escalation": []},
        {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"},
    ],
    "on_revision": "restart",
}


async def state_of(api, did: str) -> dict[str, Any]:
    r = await api.http.get(f"/api/deliverables/{did}", headers=api.auth("paula", "pmo"))
    assert r.status_code == 200, r.text
    return r.json()


async def wait_for(api, did: str, test: Any, seconds: float = 30) -> dict[str, Any]:
    for _ in range(int(seconds / 0.1)):
        state = await state_of(api, did)
        if test(state):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {state}")


def sla_done(state: dict[str, Any]) -> bool:
    stage = state["stage"]
    return stage is not None and any(d["kind"] == "sla" and d["done"] for d in stage["deadlines"])


async def ok(response: Any) -> Any:
    response = await response
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
async def scripted(api) -> dict[str, Any]:
    """Four deliverables and a dependency with known timings:
    d2: changes requested at once, revision 2, approved by design and carol, rejected by erin;
    d3: withdrawn at once (both well within the 2 s before design escalates);
    d1: design waits 3.5 s (escalation at 2 s, SLA breached at 3 s), engineering 2.5 s, then approved;
    d4: left in design (escalated, SLA breached) to the end;
    a dependency that stalls after 1 s, gets progress later, and is resolved."""
    project_id = await api.project()
    policy = await api.policy(POLICY)
    ids = {}

    async def submit(name: str) -> str:
        r = await api.submit(project_id, policy)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
        return ids[name]

    d2, d3 = await submit("d2"), await submit("d3")
    r = await api.http.post(f"/api/deliverables/{d3}/withdraw", headers=api.auth("alice"), json={"reason": "dup"})
    assert r.status_code == 200, r.text
    assert (await api.decide(d2, "bob", "request_changes", comment="logo too small")).status_code == 200
    r = await api.http.post(f"/api/deliverables/{d2}/revisions", headers=api.auth("alice"), json=revision("v2"))
    assert r.status_code == 200, r.text
    for user, verdict in (("bob", "approve"), ("carol", "approve"), ("erin", "reject")):
        r = await api.decide(d2, user, verdict, revision=2, comment="not this quarter" if verdict == "reject" else "")
        assert r.status_code == 200, r.text
    d1, d4 = await submit("d1"), await submit("d4")
    dependency = await api.http.post("/api/dependencies", headers=api.auth("alice"), json={
        "project_id": project_id, "title": "Sandbox credentials", "owner": {"role": "eng"},
        "needed_by": (datetime.now(UTC) + timedelta(days=30)).isoformat(), "stall_after": "PT1S", "escalation": []})
    assert dependency.status_code == 201, dependency.text
    dep = dependency.json()["id"]
    await wait_for(api, d1, sla_done)
    await asyncio.sleep(0.5)
    assert (await api.decide(d1, "bob")).status_code == 200
    await asyncio.sleep(2.5)
    for user in ("carol", "dan", "sam"):
        assert (await api.decide(d1, user)).status_code == 200
    await wait_for(api, d4, sla_done)
    r = await api.http.post(f"/api/dependencies/{dep}/progress", headers=api.auth("carol"), json={"note": "asked"})
    assert r.status_code == 200 and r.json()["stalled"] is False, r.text
    r = await api.http.post(f"/api/dependencies/{dep}/resolve", headers=api.auth("carol"), json={"note": "sent"})
    assert r.status_code == 200, r.text
    return {"project_id": project_id, "policy": policy, "dependency": dep, **ids,
            "until": (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()}


def near(value: float | None, expected: float, jitter: float = JITTER) -> bool:
    return value is not None and expected <= value <= expected + jitter


async def test_the_retrospective_of_a_scripted_project(api, scripted):
    s = scripted
    await asyncio.sleep(0.3)  # `until` has passed
    retro = await ok(api.http.get(f"/api/retrospectives/{s['project_id']}", params={"until": s["until"]},
                                  headers=api.auth("alice")))
    d1, d2, d3, d4 = s["d1"], s["d2"], s["d3"], s["d4"]
    counts = retro["deliverables"]
    assert {k: counts[k] for k in ("submitted", "approved", "rejected", "withdrawn", "open")} == {
        "submitted": 4, "approved": 1, "rejected": 1, "withdrawn": 1, "open": 1}
    assert set(counts["ids"]) == {d1, d2, d3, d4}
    cycle = retro["cycle_time_s"]
    assert cycle["count"] == 3 and set(cycle["ids"]) == {d1, d2, d3}
    assert cycle["open"]["count"] == 1 and cycle["open"]["ids"] == [d4]
    assert near(cycle["p90"], 6.0, 2 * JITTER)  # d1: 3.5 s in design + 2.5 s in engineering + decisions
    design, engineering, sponsor = (retro["per_stage"][n] for n in ("design", "engineering", "sponsor"))
    assert list(retro["per_stage"]) == ["design", "engineering", "sponsor"]
    assert (design["openings"], design["closed"], design["still_open"]) == (5, 4, 1)
    assert design["sla_breach_rate"] == 0.4 and set(design["sla_breach_ids"]) == {d1, d4}
    assert design["changes_requested"] == 1 and design["changes_requested_ids"] == [d2]
    bob = design["per_approver"]["bob"]
    assert (bob["decisions"], bob["last_waited_on"]) == (3, 3)
    assert near(design["p90_open_s"], 3.5)  # d1's design: the longest closed opening
    assert (engineering["openings"], engineering["closed"], engineering["sla_breach_rate"]) == (2, 2, 0.0)
    people = engineering["per_approver"]
    assert {p: (f["decisions"], f["last_waited_on"]) for p, f in people.items()} == {
        "carol": (2, 0), "dan": (1, 1), "erin": (1, 1)}
    assert near(people["dan"]["p50_response_s"], 2.5)
    assert (sponsor["openings"], sponsor["per_approver"]["sam"]["decisions"]) == (1, 1)
    rework = retro["rework"]
    assert (rework["revisions_mean"], rework["revisions_max"], rework["first_pass_yield"]) == (1.25, 2, 0.3333)
    assert rework["reworked_ids"] == [d2] and rework["first_pass_ids"] == [d1]
    assert rework["changes_requested_by_stage"] == {"design": 1}
    escalations = retro["escalations"]
    assert (escalations["total"], escalations["by_level"], escalations["by_stage"]) == (2, {"1": 2}, {"design": 2})
    assert set(escalations["ids"]) == {d1, d4}
    assert retro["sla_breach_rate"]["overall"] == round(2 / 7, 4)  # 5 design + 2 engineering openings with an SLA
    dep = retro["dependencies"]
    assert (dep["opened"], dep["resolved"], dep["stalled"], dep["overdue"]) == (1, 1, 1, 0)
    assert dep["stalled_ids"] == [s["dependency"]] and dep["stalled_s"] > 0
    assert retro["gates"]["phases"] == [] and retro["gates"]["note"]
    # The window: since after everything was submitted leaves nothing; the same call twice, the same answer.
    again = await ok(api.http.get(f"/api/retrospectives/{s['project_id']}", params={"until": s["until"]},
                                  headers=api.auth("alice")))
    assert again == retro
    empty = await ok(api.http.get(f"/api/retrospectives/{s['project_id']}",
                                  params={"since": s["until"], "until": datetime.now(UTC).isoformat()},
                                  headers=api.auth("bob")))
    assert empty["deliverables"]["submitted"] == 0 and empty["dependencies"]["opened"] == 0


async def test_what_if(api, scripted):
    s = scripted
    await asyncio.sleep(0.3)
    url = f"/api/retrospectives/{s['project_id']}/what-if"
    body = {"until": s["until"], "policy": s["policy"]}
    same = await ok(api.http.post(url, headers=api.auth("alice"), json={**body, "changes": {}}))
    assert same["what_if"] == same["actual"] and same["deliverables"] == []
    retro = await ok(api.http.get(f"/api/retrospectives/{s['project_id']}", params={"until": s["until"]},
                                  headers=api.auth("alice")))
    assert same["actual"] == retro

    # A shorter SLA and an escalation in engineering: d1 waited 2.5 s there, d2 well under 2 s.
    shorter = {**body, "changes": {"stages": {"engineering": {"sla": "PT2S",
                                                              "escalation": [{"after": "PT2S", "notify": ["pmo"]}]}}}}
    answer = await ok(api.http.post(url, headers=api.auth("alice"), json=shorter))
    assert answer == await ok(api.http.post(url, headers=api.auth("alice"), json=shorter))  # deterministic
    assert answer["actual"] == retro
    imagined = answer["what_if"]
    assert imagined["escalations"]["total"] == 3 and imagined["escalations"]["by_stage"] == {"design": 2,
                                                                                            "engineering": 1}
    assert imagined["per_stage"]["engineering"]["sla_breach_rate"] == 0.5
    assert imagined["per_stage"]["engineering"]["sla_breach_ids"] == [s["d1"]]
    assert answer["difference"]["escalations"]["total"] == 1
    [story] = answer["deliverables"]
    assert story["id"] == s["d1"]
    assert any(line.startswith("an escalation to level 1 at ") and "would have fired in engineering (notifying paula)"
               in line for line in story["changes"]), story
    assert "the SLA of engineering would have been breached" in story["changes"]

    # Any one engineer closes engineering: d1 closes on carol's approval, dan's never happens.
    lighter = await ok(api.http.post(url, headers=api.auth("alice"), json={
        **body, "changes": {"stages": {"engineering": {"rule": "any"}}}}))
    d1 = next(d for d in lighter["deliverables"] if d["id"] == s["d1"])
    assert any("engineering would have closed at" in line and "on carol's approval instead of" in line
               for line in d1["changes"]), d1
    assert any(line.startswith("dan's approval on engineering at") for line in d1["changes"]), d1
    assert lighter["what_if"]["per_stage"]["engineering"]["per_approver"]["dan"]["decisions"] == 0
    assert lighter["what_if"]["deliverables"]["approved"] == 1  # sam still approved d1 (at his recorded time)


async def test_who_may_ask(api, scripted):
    s = scripted
    project = s["project_id"]
    for user, roles, status in (("alice", (), 200), ("mallory", (), 404), ("paula", ("pmo",), 200),
                                ("root", ("admin",), 200)):
        r = await api.http.get(f"/api/retrospectives/{project}", headers=api.auth(user, *roles))
        assert r.status_code == status, (user, r.text)
        r = await api.http.post(f"/api/retrospectives/{project}/what-if", headers=api.auth(user, *roles),
                                json={"policy": s["policy"]})
        assert r.status_code == status, (user, r.text)
    for user, roles, status in (("alice", (), 403), ("paula", ("pmo",), 200), ("root", ("admin",), 200)):
        r = await api.http.get("/api/retrospectives", headers=api.auth(user, *roles))
        assert r.status_code == status, (user, r.text)
        if status == 403:
            assert r.headers["content-type"] == "application/problem+json"
    portfolio = (await api.http.get("/api/retrospectives", headers=api.auth("paula", "pmo"),
                                    params={"until": s["until"]})).json()
    assert portfolio["projects"] >= 1 and portfolio["deliverables"]["submitted"] >= 4
    assert (await api.http.get("/api/retrospectives/00000000-0000-0000-0000-000000000000",
                               headers=api.auth("paula", "pmo"))).status_code == 404
    bad = [({"policy": s["policy"], "changes": {"stages": {"nope": {"sla": "PT1S"}}}}, "stages"),
           ({"policy": s["policy"], "changes": {"stages": {"design": {"rule": "n_of_m"}}}}, "n"),
           ({"policy": s["policy"], "changes": {"stages": {"design": {"sla": "soon"}}}}, "sla"),
           ({"policy": s["policy"], "since": "2026-01-01T00:00:00"}, "since")]
    for body, word in bad:
        r = await api.http.post(f"/api/retrospectives/{project}/what-if", headers=api.auth("alice"), json=body)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", (body, r.text)
    r = await api.http.post(f"/api/retrospectives/{project}/what-if", headers=api.auth("alice"),
                            json={"policy": "no-such-policy"})
    assert r.status_code == 404, r.text
