"""Hostile or careless input over HTTP: a 4xx problem that names the field, and nothing recorded
(issue 5, items 7 and 8)."""

import asyncio
import json
import uuid

from tests.builders import MEMBERS, STANDARD, revision

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


def assert_refused(r, status: int, *field: str | int) -> dict:
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    body = r.json()
    assert body["status"] == status and body["type"].startswith("/problems/")
    if field:
        where = ".".join(str(p) for p in field)
        assert where in body["detail"], (where, body)
    return body


async def recorded(api, did: str) -> list[str]:
    r = await api.http.get(f"/api/deliverables/{did}/history", headers=api.auth("paula", "pmo"))
    return [h["type"] for h in r.json()["items"]]


async def projects(api) -> list[str]:
    return [p["id"] for p in (await api.http.get("/api/projects", headers=api.auth("paula", "pmo"))).json()["items"]]


async def deliverables(api, project_id: str) -> list[dict]:
    return (await api.http.get(f"/api/deliverables?project_id={project_id}",
                               headers=api.auth("paula", "pmo"))).json()["items"]


async def test_duplicate_json_keys_are_refused_everywhere(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    before = await recorded(api, did)

    raw = b'{"verdict": "reject", "comment": "no", "verdict": "approve", "revision": 1}'
    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers={**api.auth("bob"), **JSON}, content=raw)
    body = assert_refused(r, 422, "body", "verdict")
    assert body["type"] == "/problems/validation-error" and body["errors"][0]["loc"] == ["body", "verdict"]

    # nested, and in another resource: the path to the key is named
    spec = json.dumps(STANDARD).replace('"rule": "any"', '"rule": "all", "rule": "any"', 1).encode()
    name = f"dup-{uuid.uuid4().hex[:8]}"
    r = await api.http.put(f"/api/policies/{name}", headers={**api.auth("paula", "pmo"), **JSON}, content=spec)
    assert_refused(r, 422, "body", "stages", 0, "rule")
    assert (await api.http.get(f"/api/policies/{name}", headers=api.auth("paula", "pmo"))).status_code == 404

    known = await projects(api)
    raw = json.dumps({"name": "Twice", "members": MEMBERS})[:-1].encode() + b', "name": "Thrice"}'
    r = await api.http.post("/api/projects", headers={**api.auth("paula", "pmo"), **JSON}, content=raw)
    assert_refused(r, 422, "body", "name")
    assert await projects(api) == known
    assert await recorded(api, did) == before

    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers={**api.auth("bob"), **JSON},
                            content=b"[" * 100_000 + b"]" * 100_000)
    assert_refused(r, 422, "body")
    assert await recorded(api, did) == before

    # the same bodies without the duplicate are fine
    r = await api.http.post(f"/api/deliverables/{did}/decisions", headers={**api.auth("bob"), **JSON},
                            content=b'{"verdict": "approve", "revision": 1}')
    assert r.status_code == 200, r.text


async def test_numbers_are_strict(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    before = await recorded(api, did)
    for revision_value in ("1", 1.0, True):
        r = await api.http.post(f"/api/deliverables/{did}/decisions", headers=api.auth("bob"),
                                json={"verdict": "approve", "revision": revision_value})
        assert_refused(r, 422, "body", "revision")
    spec = {"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": "2"}]}
    r = await api.http.put("/api/policies/strict-n", headers=api.auth("paula", "pmo"), json=spec)
    assert_refused(r, 422, "body", "stages", 0, "n")
    assert await recorded(api, did) == before
    # query parameters are text by nature and stay as they are
    assert (await api.http.get(f"/api/policies/{policy}?version=1", headers=api.auth("paula", "pmo"))).status_code == 200


async def test_durations_and_lists_are_bounded(api):
    stage = {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}
    cases = [
        ({**stage, "sla": "P999999999D"}, ("stages", 0, "sla")),
        ({**stage, "sla": "P9999999999D"}, ("stages", 0, "sla")),  # was a 500
        ({**stage, "reminders": ["PT1H"] * 30_000}, ("stages", 0, "reminders")),
        ({**stage, "escalation": [{"after": "P99999999D", "notify": ["pm"]}]}, ("stages", 0, "escalation", 0, "after")),
        ({**stage, "approvers": {"users": [f"u{i}" for i in range(500)]}}, ("stages", 0, "approvers", "users")),
    ]
    for bad, field in cases:
        name = f"bounded-{uuid.uuid4().hex[:8]}"
        r = await api.http.put(f"/api/policies/{name}", headers=api.auth("paula", "pmo"), json={"stages": [bad]})
        assert_refused(r, 422, "body", *field)
        assert (await api.http.get(f"/api/policies/{name}", headers=api.auth("paula", "pmo"))).status_code == 404
    r = await api.http.put("/api/policies/many-stages", headers=api.auth("paula", "pmo"),
                           json={"stages": [{**stage, "name": f"s{i}"} for i in range(100)]})
    assert_refused(r, 422, "body", "stages")

    known = await projects(api)
    for extra, field in [
        ({"escalation_path": [{"after": "P999999999D", "notify": ["pm"]}]}, ("escalation_path", 0, "after")),
        ({"escalation_path": [{"after": "PT1H"}] * 100}, ("escalation_path",)),
        ({"members": [{"user": f"u{i}"} for i in range(1000)]}, ("members",)),
        ({"phases": [{"name": f"p{i}"} for i in range(1000)]}, ("phases",)),
    ]:
        r = await api.http.post("/api/projects", headers=api.auth("paula", "pmo"),
                                json={"name": "Bounded", "members": MEMBERS, **extra})
        assert_refused(r, 422, "body", *field)
    assert await projects(api) == known


async def test_titles_uris_and_comments_refuse_what_readers_cannot_see(api):
    project_id, policy = await api.project(), await api.policy()
    for title in ("\u202eexe.sgnikcom", "Home\u200bpage", "   ", "tab\there"):
        r = await api.http.post("/api/deliverables", headers=api.auth("alice"),
                                json={"project_id": project_id, "title": title, "policy": policy, "revision": revision()})
        assert_refused(r, 422, "body", "title")
    for uri in ("javascript:alert(document.cookie)", "https://", "data:text/html,hi", "https://files.example/\u202ex"):
        r = await api.submit(project_id, policy, revision={**revision(), "uri": uri})
        assert_refused(r, 422, "body", "revision", "uri")
    assert await deliverables(api, project_id) == []

    r = await api.http.post("/api/deliverables", headers=api.auth("alice"), json={
        "project_id": project_id, "title": "  Homepage mockups  ", "policy": policy, "revision": revision()})
    assert r.status_code == 201, r.text
    did = r.json()["id"]
    assert r.json()["title"] == "Homepage mockups"
    before = await recorded(api, did)
    for comment in ("bell\x07", "\x1b[2Jcleared", "\u2066isolated\u2069"):
        r = await api.decide(did, "bob", "reject", comment=comment)
        assert_refused(r, 422, "body", "comment")
    assert await recorded(api, did) == before
    comment = "Two points:\n\t1. contrast\n\t2. logo size"
    r = await api.decide(did, "bob", "request_changes", comment=comment)
    assert r.status_code == 200 and r.json()["decisions"][0]["comment"] == comment


async def raw_exchange(api, raw: bytes) -> bytes:
    """Send bytes as they are (no client would send these) and read the answer until the server closes."""
    reader, writer = await asyncio.open_connection(api.http.base_url.host, api.http.base_url.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()


async def test_oversized_headers_get_a_problem(api):
    r = await api.http.get("/api/projects", headers={**api.auth("paula", "pmo"), "X-Padding": "x" * 20_000})
    body = assert_refused(r, 431)
    assert body["title"] == "Request Header Fields Too Large"

    # a head the HTTP parser gives up on before the app sees it: still in pieces past the limit,
    # or not HTTP at all
    for raw, status in [(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"x" * 20_000, 431),
                        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n", 400)]:
        answer = await raw_exchange(api, raw)
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d" % status), answer[:200]
        assert b"content-type: application/problem+json" in head.lower(), answer[:200]
        assert json.loads(payload)["status"] == status

    # below the limit all is as before
    r = await api.http.get("/api/projects", headers={**api.auth("paula", "pmo"), "X-Padding": "x" * 8_000})
    assert r.status_code == 200
