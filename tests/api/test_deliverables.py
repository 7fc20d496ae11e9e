


async def test_sign_off_through_every_stage(api):
    project_id, policy = await api.project(), await api.policy()
    r = await api.submit(project_id, policy)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["revision"], body["stage"]["index"], body["stage"]["name"]) == (
        "in_review", 1, 0, "design")
    did = body["id"]
    for user in ("bob", "carol", "dan"):
        r = await api.decide(did, user)
        assert r.status_code == 200, r.text
    assert r.json()["stage"]["name"] == "sponsor"
    r = await api.decide(did, "sam", comment="ship it")
    assert r.json()["status"] == "approved" and r.json()["stage"] is None
    got = (await api.http.get(f"/api/deliverables/{did}", headers=api.auth("alice"))).json()
    assert got["status"] == "approved"
    history = (await api.http.get(f"/api/deliverables/{did}/history", headers=api.auth("alice"))).json()["items"]
    decisions = [h for h in history if h["type"] == "DecisionRecorded"]
    assert [(h["actor"], h["verdict"], h["revision"]) for h in decisions] == [
        ("bob", "approve", 1), ("carol", "approve", 1), ("dan", "approve", 1), ("sam", "approve", 1)]
    listed = (await api.http.get(f"/api/deliverables?project_id={project_id}&status=approved",
                                 headers=api.auth("pete"))).json()
    assert [d["id"] for d in listed["items"]] == [did]


async def test_separation_of_duties_and_one_vote(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    r = await api.decide(did, "alice")
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert (await api.decide(did, "carol")).status_code == 403
    await api.decide(did, "bob")
    assert (await api.decide(did, "carol")).status_code == 200
    r = await api.decide(did, "carol")
    assert r.status_code == 409, r.text
    history = (await api.http.get(f"/api/deliverables/{did}/history", headers=api.auth("alice"))).json()["items"]
    assert [h["actor"] for h in history if h["type"] == "DecisionRecorded"] == ["bob", "carol"]


async def test_health_and_metrics(api):
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    assert (await api.http.get("/readyz")).json() == {"status": "ready"}
    await api.http.get("/api/projects")  # a 401
    await api.http.request("MADEUP", "/api/projects")
    await api.http.post("/api/projects", content=b"x" * (2 * 1024 * 1024), headers=api.auth("paula"))
    text = (await api.http.get("/metrics")).text
    assert 'signoff_http_requests_total{method="GET",route="/api/projects",status="401"} 1.0' in text
    assert 'method="OTHER"' in text and "MADEUP" not in text
    assert 'status="413"' in text


async def test_project_list_shows_what_a_single_read_shows(api):
    project_id = await api.project(escalation_path=[{"after": "P1D", "notify": ["pm"]}])
    one = (await api.http.get(f"/api/projects/{project_id}", headers=api.auth("alice"))).json()
    [listed] = (await api.http.get("/api/projects", headers=api.auth("alice"))).json()["items"]
    assert listed == one and one["escalation_path"][0]["notify"] == ["pm"] and one["created_by"] == "paula"
