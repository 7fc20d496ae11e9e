"""The rules that must hold, asserted over HTTP against a real worker and dev server."""

import asyncio

from tests.builders import revision

PROBLEM = "application/problem+json"


async def history_types(api, did):
    r = await api.http.get(f"/api/deliverables/{did}/history", headers=api.auth("paula", "pmo"))
    return [h["type"] for h in r.json()["items"]]


async def test_authentication_errors_are_401_problems(api):
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic YWxpY2U6eA=="}):
        r = await api.http.get("/api/projects", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, r.text
        assert r.json()["status"] == 401 and r.json()["title"] == "Unauthorized"
    from datetime import timedelta

    from api.auth import mint_token

    expired = mint_token(api.settings.jwt_secret, "alice", [], ttl=timedelta(seconds=-5))
    r = await api.http.get("/api/projects", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and "expired" in r.json()["detail"].lower()
    forged = mint_token("some-other-secret-that-is-long-enough-for-hs256", "paula", ["admin"])
    assert (await api.http.get("/api/projects", headers={"Authorization": f"Bearer {forged}"})).status_code == 401


async def test_bad_input_is_refused_and_records_nothing(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    before = await history_types(api, did)
    cases = [
        {"verdict": "maybe", "revision": 1},
        {"verdict": "approve"},
        {"verdict": "approve", "revision": 1, "actor": "sam"},  # the actor comes from the token only
        {"verdict": "reject", "revision": 1, "comment": ""},
    ]
    for body in cases:
        r = await api.http.post(f"/api/deliverables/{did}/decisions", headers=api.auth("bob"), json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (body, r.text)
    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers={**api.auth("bob"),
                            "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422
    big = {"verdict": "approve", "revision": 1, "comment": "x" * (1024 * 1024 + 1)}
    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers=api.auth("bob"), json=big)
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

    async def chunks():
        for _ in range(17):
            yield b"x" * 65536

    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers=api.auth("bob"), content=chunks())
    assert r.status_code == 413
    bad_sha = {**revision(), "sha256": "nothex"}
    assert (await api.submit(project_id, policy, revision=bad_sha)).status_code == 422
    assert await history_types(api, did) == before


async def test_unknown_ids_are_404(api):
    for path in ("/api/deliverables/6f1c9a34-5d2e-4f7b-9a1c-2b3d4e5f6a7b", "/api/deliverables/not-a-uuid",
                 "/api/projects/6f1c9a34-5d2e-4f7b-9a1c-2b3d4e5f6a7b", "/api/policies/no-such-policy"):
        r = await api.http.get(path, headers=api.auth("paula", "pmo"))
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, (path, r.text)
    r = await api.decide("6f1c9a34-5d2e-4f7b-9a1c-2b3d4e5f6a7b", "bob")
    assert r.status_code == 404


async def test_outsiders_see_nothing(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    for path in (f"/api/deliverables/{did}", f"/api/deliverables/{did}/history", f"/api/projects/{project_id}",
                 f"/api/deliverables?project_id={project_id}"):
        assert (await api.http.get(path, headers=api.auth("mallory"))).status_code == 404, path
    assert (await api.decide(did, "mallory")).status_code == 404
    assert (await api.http.get("/api/deliverables", headers=api.auth("mallory"))).json()["items"] == []
    assert (await api.http.get("/api/projects", headers=api.auth("mallory"))).json()["items"] == []
    assert (await api.http.get(f"/api/deliverables/{did}", headers=api.auth("olga", "pmo"))).status_code == 200
    r = await api.http.post("/api/projects", headers=api.auth("alice"), json={"name": "x", "members": [{"user": "alice"}]})
    assert r.status_code == 403


async def test_stale_revision_closed_stage_and_finished_chain_are_409(api):
    project_id = await api.project()
    policy = await api.policy({"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"},
                                          {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "any"}],
                               "on_revision": "resume"})
    did = (await api.submit(project_id, policy)).json()["id"]
    await api.decide(did, "bob")
    r = await api.decide(did, "carol", "request_changes", comment="API spec is missing")
    assert r.json()["status"] == "changes_requested"
    assert (await api.decide(did, "dan")).status_code == 409  # no stage is open
    r = await api.http.post(f"/api/deliverables/{did}/revisions", headers=api.auth("alice"), json=revision("v2"))
    assert r.status_code == 200 and r.json()["stage"]["name"] == "engineering" and r.json()["revision"] == 2
    r = await api.decide(did, "dan", revision=1)
    assert r.status_code == 409 and r.json()["type"] == "/problems/stale-revision"
    assert (await api.decide(did, "dan", revision=2)).json()["status"] == "approved"
    r = await api.decide(did, "erin", revision=2)
    assert r.status_code == 409 and r.json()["type"] == "/problems/chain-finished"
    r = await api.http.post(f"/api/deliverables/{did}/withdraw", headers=api.auth("alice"), json={})
    assert r.status_code == 409


async def test_two_approvers_race_on_an_any_stage(api):
    project_id = await api.project()
    policy = await api.policy({"stages": [{"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "any"},
                                          {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]})
    for _ in range(3):
        did = (await api.submit(project_id, policy)).json()["id"]
        results = await asyncio.gather(api.decide(did, "carol"), api.decide(did, "dan"))
        assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
        assert (await history_types(api, did)).count("DecisionRecorded") == 1


async def test_idempotency_key_returns_the_same_deliverable(api):
    project_id, policy = await api.project(), await api.policy()
    headers = {"headers": {"Idempotency-Key": "upload-42"}}
    first = await api.submit(project_id, policy, **headers)
    again = await api.submit(project_id, policy, headers={"Idempotency-Key": "upload-42"})
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    other = await api.submit(project_id, policy, revision=revision("v9"), headers={"Idempotency-Key": "upload-42"})
    assert other.status_code == 409
    # The policy changes afterwards; a retry still answers what the first request made.
    r = await api.http.put(f"/api/policies/{policy}", headers=api.auth("paula", "pmo"), json={
        "stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 9}]})
    assert r.json()["version"] == 2
    later = await api.submit(project_id, policy, headers={"Idempotency-Key": "upload-42"})
    assert later.status_code == 201 and later.json()["id"] == first.json()["id"]
    listed = (await api.http.get(f"/api/deliverables?project_id={project_id}", headers=api.auth("alice"))).json()
    assert len(listed["items"]) == 1


async def test_withdraw_and_reassign(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    body = {"approvers": ["pete"], "reason": "bob is on leave"}
    r = await api.http.post(f"/api/deliverables/{did}/reassign", headers=api.auth("carol"), json=body)
    assert r.status_code == 403
    r = await api.http.post(f"/api/deliverables/{did}/reassign", headers=api.auth("paula"), json=body)
    assert r.status_code == 200 and r.json()["stage"]["approvers"] == ["pete"]
    assert (await api.decide(did, "bob")).status_code == 403
    r = await api.http.post(f"/api/deliverables/{did}/withdraw", headers=api.auth("bob"), json={})
    assert r.status_code == 403
    r = await api.http.post(f"/api/deliverables/{did}/withdraw", headers=api.auth("alice"), json={"reason": "paused"})
    assert r.json()["status"] == "withdrawn"


async def test_inbox_shows_what_waits(api):
    project_id = await api.project(escalation_path=[{"after": "PT1S", "notify": ["pm"]}])
    policy = await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    inbox = (await api.http.get("/api/inbox", headers=api.auth("bob"))).json()["items"]
    assert [(i["kind"], i["deliverable"]["id"]) for i in inbox] == [("decision", did)]
    assert (await api.http.get("/api/inbox", headers=api.auth("carol"))).json()["items"] == []
    for _ in range(50):
        inbox = (await api.http.get("/api/inbox", headers=api.auth("pete"))).json()["items"]
        if inbox:
            break
        await asyncio.sleep(0.1)
    assert [(i["kind"], i["deliverable"]["id"]) for i in inbox] == [("escalation", did)]
    await api.decide(did, "bob", "request_changes", comment="logo too small")
    inbox = (await api.http.get("/api/inbox", headers=api.auth("alice"))).json()["items"]
    assert [(i["kind"], i["deliverable"]["id"]) for i in inbox] == [("revision", did)]
    assert (await api.http.get("/api/inbox", headers=api.auth("bob"))).json()["items"] == []


async def test_policies_are_versioned(api):
    name = await api.policy()
    r = await api.http.put(f"/api/policies/{name}", headers=api.auth("paula", "pmo"),
                           json={"stages": [{"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}]})
    assert r.status_code == 200 and r.json()["version"] == 2
    # As pmo: a version naming users (sam) is hidden from members of projects that do not use it.
    v1 = (await api.http.get(f"/api/policies/{name}?version=1", headers=api.auth("paula", "pmo"))).json()
    assert [s["name"] for s in v1["stages"]] == ["design", "engineering", "sponsor"]
    spec = {"stages": v1["stages"], "on_revision": v1["on_revision"]}
    r = await api.http.put(f"/api/policies/{name}", headers=api.auth("alice"), json=spec)
    assert r.status_code == 403
    r = await api.http.put(f"/api/policies/{name}", headers=api.auth("paula", "pmo"), json=spec)
    assert r.status_code == 200 and r.json()["version"] == 3
    again = await api.http.put(f"/api/policies/{name}", headers=api.auth("paula", "pmo"), json=spec)
    assert again.status_code == 200 and again.json()["version"] == 3  # the same stages make no new version
    r = await api.http.put("/api/policies/Bad%20Name", headers=api.auth("paula", "pmo"), json=spec)
    assert r.status_code == 422


async def test_a_policy_the_project_cannot_satisfy_is_refused_without_a_trace(api):
    project_id = await api.project()
    policy = await api.policy({"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 5}]})
    r = await api.submit(project_id, policy, headers={"Idempotency-Key": "too-few"})
    assert r.status_code == 422 and "cannot be satisfied" in r.json()["detail"]
    assert (await api.http.get(f"/api/deliverables?project_id={project_id}",
                               headers=api.auth("alice"))).json()["items"] == []


async def test_ids_of_other_kinds_and_other_spellings(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    for path in (f"/api/deliverables/{project_id}", f"/api/deliverables/{project_id}/history",
                 f"/api/projects/{did}"):
        r = await api.http.get(path, headers=api.auth("paula", "pmo"))
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, (path, r.text)
    r = await api.http.post("/api/deliverables", headers=api.auth("alice"), json={
        "project_id": did, "title": "x", "policy": policy, "revision": revision()})
    assert r.status_code == 404
    r = await api.decide(did.upper(), "bob")
    assert r.status_code == 200 and r.json()["stage"]["name"] == "engineering"
    r = await api.decide(did.replace("-", ""), "carol")
    assert r.status_code == 200 and r.json()["stage"]["approvals"] == ["carol"]
    listed = await api.http.get(f"/api/deliverables?project_id={project_id.upper()}", headers=api.auth("alice"))
    assert [d["id"] for d in listed.json()["items"]] == [did]


async def test_control_characters_are_refused(api):
    r = await api.http.post("/api/projects", headers=api.auth("paula", "pmo"),
                            json={"name": "Northwind\u0000", "members": [{"user": "alice"}]})
    assert r.status_code == 422
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    r = await api.decide(did, "bob", comment="fine\u0000")
    assert r.status_code == 422


async def test_idempotency_key_compares_the_whole_request(api):
    first_project, second_project, policy = await api.project(), await api.project(), await api.policy()
    headers = {"Idempotency-Key": "assets-7"}
    assert (await api.submit(first_project, policy, headers=headers)).status_code == 201
    r = await api.submit(second_project, policy, headers=headers)
    assert r.status_code == 409 and r.json()["type"] == "/problems/idempotency-key-reused"


async def test_refused_commands_leave_no_trace_in_the_workflow_history(api, temporal_env):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    handle = temporal_env.client.get_workflow_handle(f"deliverable-{did}")
    before = len([e async for e in handle.fetch_history_events()])
    refused = [
        ("withdraw", "bob", {}), ("revisions", "bob", revision("v2")), ("revisions", "alice", revision()),
        ("reassign", "paula", {"approvers": ["alice"], "reason": "x"}),
        ("reassign", "paula", {"approvers": ["mallory"], "reason": "x"}), ("decisions", "carol",
                                                                            {"verdict": "approve", "revision": 1}),
    ]
    for action, user, body in refused:
        r = await api.http.post(f"/api/deliverables/{did}/{action}", headers=api.auth(user), json=body)
        assert r.status_code in (403, 409, 422), (action, user, r.text)
    assert len([e async for e in handle.fetch_history_events()]) == before


async def test_no_worker_means_503_not_a_hang(temporal_env, tmp_path):
    from tests.api.conftest import serve_api

    async with serve_api(temporal_env, tmp_path, with_worker=False, command_timeout_seconds=1) as api:
        project_id, policy = await api.project(), await api.policy()
        r = await api.submit(project_id, policy, headers={"Idempotency-Key": "k1"})
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert "Idempotency-Key" in r.json()["detail"]


async def test_a_submission_and_its_idempotent_replay_both_say_where_it_is(api):
    project_id, policy = await api.project(), await api.policy()
    first = await api.submit(project_id, policy, headers={"Idempotency-Key": "brief-9"})
    again = await api.submit(project_id, policy, headers={"Idempotency-Key": "brief-9"})
    assert first.status_code == again.status_code == 201
    assert first.headers["location"] == again.headers["location"] == f"/api/deliverables/{first.json()['id']}"
