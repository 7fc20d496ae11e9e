"""Every list answers {"items", "next_cursor"}, a page at a time, in the same order as a whole."""

PROBLEM = "application/problem+json"


async def pages(api, path: str, user: tuple[str, ...], limit: int) -> list[list[dict]]:
    found, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await api.http.get(path, params=params, headers=api.auth(*user))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        found.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


async def test_lists_come_in_pages_that_add_up_to_the_whole(api):
    for _ in range(3):
        await api.project()
    policy = await api.policy()
    project_id = await api.project()
    dids = [(await api.submit(project_id, policy)).json()["id"] for _ in range(3)]
    pmo = ("paula", "pmo")
    whole = (await api.http.get("/api/projects", headers=api.auth(*pmo))).json()
    assert whole["next_cursor"] is None and len(whole["items"]) == 4
    paged = await pages(api, "/api/projects", pmo, 3)
    assert [len(p) for p in paged] == [3, 1] and sum(paged, []) == whole["items"]

    listed = await pages(api, f"/api/deliverables?project_id={project_id}", pmo, 2)
    assert [len(p) for p in listed] == [2, 1]
    assert sorted(d["id"] for d in sum(listed, [])) == sorted(dids)
    assert [d["id"] for d in sum(listed, [])] == list(reversed(dids))  # newest change first

    history = await pages(api, f"/api/deliverables/{dids[0]}/history", pmo, 1)
    versions = [e["version"] for e in sum(history, [])]
    assert versions == sorted(versions) and len(versions) == len(history) >= 2

    inbox = await pages(api, "/api/inbox", ("bob",), 2)
    assert [len(p) for p in inbox] == [2, 1]


async def test_limit_is_clamped_and_a_made_up_cursor_is_a_422_problem(api):
    await api.project()
    for limit in (0, -5, 10_000):
        r = await api.http.get("/api/projects", params={"limit": limit}, headers=api.auth("paula", "pmo"))
        assert r.status_code == 200 and len(r.json()["items"]) >= 1, r.text
    for cursor in ("not-a-cursor", "WyJ4Il0", "W10"):  # garbage, ["x"] (another list's), []
        r = await api.http.get("/api/projects", params={"cursor": cursor}, headers=api.auth("paula", "pmo"))
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (cursor, r.text)
        assert r.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_every_timestamp_is_rfc3339_with_z(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    pmo = api.auth("paula", "pmo")
    stamps = [(await api.http.get(f"/api/deliverables/{did}", headers=pmo)).json()["updated_at"]]
    listed = (await api.http.get(f"/api/deliverables?project_id={project_id}", headers=pmo)).json()["items"]
    stamps += [listed[0]["updated_at"], listed[0]["created_at"], listed[0]["stage"]["opened_at"]]
    stamps += [e[key] for e in (await api.http.get(f"/api/deliverables/{did}/history", headers=pmo)).json()["items"]
               for key in ("at", "recorded_at")]
    stamps += [p["created_at"] for p in (await api.http.get("/api/projects", headers=pmo)).json()["items"]]
    assert stamps and all(s.endswith("Z") and "+00:00" not in s for s in stamps), stamps


async def test_authentication_comes_before_the_body_and_405_says_allow(api):
    for body in (b"{not json", b'{"verdict": "approve", "verdict": "reject"}', b"x" * 100):
        r = await api.http.post("/api/deliverables/3f1c2a9e-8d4b-4c1e-9a37-5b2f0e6d7c18/decisions", content=body,
                                headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM, r.text
    r = await api.http.delete("/api/projects", headers=api.auth("paula", "pmo"))
    assert r.status_code == 405 and set(r.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
