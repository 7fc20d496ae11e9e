"""Dependencies over HTTP (issue 8 items 3 and 5): the served API, a real worker and Temporal dev server.

Two projects: the requesting one (tests/builders.MEMBERS) and a providing one. Every refusal is
checked to record nothing, in the event store (the dependency's history) and in Temporal (the
watch's history). Stalls and escalations use second-scale durations on wall time.
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.routers.dependencies import IDEMPOTENCY_NAMESPACE

PROVIDERS = [
    {"user": "omar", "roles": ["eng"]},
    {"user": "olga", "roles": ["eng"]},
    {"user": "quinn", "roles": ["lead"]},
]
OUTSIDER = "mallory"  # a member of neither project


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**(delta or {"days": 30}))).isoformat()


async def two_projects(api) -> tuple[str, str]:
    return await api.project(), await api.project(members=PROVIDERS)


async def open_one(api, project_id: str, user: str = "alice", headers: dict[str, str] | None = None,
                   **fields: Any) -> Any:
    body = {"project_id": project_id, "title": "Sandbox credentials", "owner": {"user": "omar"},
            "needed_by": later(), "stall_after": "P2D", **fields}
    return await api.http.post("/api/dependencies", headers={**api.auth(user), **(headers or {})}, json=body)


async def act(api, dependency_id: str, action: str, user: str, body: Any = None, *roles: str) -> Any:
    return await api.http.post(f"/api/dependencies/{dependency_id}/{action}", headers=api.auth(user, *roles),
                               json=body)


async def get(api, path: str, user: str = "paula", *roles: str) -> Any:
    return await api.http.get(path, headers=api.auth(user, *(roles or (("pmo",) if user == "paula" else ()))))


async def trace(api, temporal_env, dependency_id: str) -> tuple[list[str], int]:
    """What is recorded of the dependency: its history's event types in the store, and the number of
    events in its watch's Temporal history once that has settled."""
    handle = temporal_env.client.get_workflow_handle(f"dependency-{dependency_id}")
    count = -1
    while True:
        now = len([e async for e in handle.fetch_history_events()])
        if now == count:
            break
        count = now
        await asyncio.sleep(0.3)
    history = (await get(api, f"/api/dependencies/{dependency_id}/history")).json()["items"]
    return [h["type"] for h in history], count


async def until(api, dependency_id: str, test: Any, seconds: float = 30) -> dict[str, Any]:
    """The dependency's state once `test(state)` holds."""
    for _ in range(int(seconds / 0.25)):
        state = (await get(api, f"/api/dependencies/{dependency_id}")).json()
        if test(state):
            return state
        await asyncio.sleep(0.25)
    raise AssertionError(f"never happened: {state}")


async def test_open_acknowledge_progress_resolve(api):
    requesting, providing = await two_projects(api)
    r = await open_one(api, requesting, providing_project_id=providing, remind_before="P1D")
    assert r.status_code == 201, r.text
    state = r.json()
    assert r.headers["location"] == f"/api/dependencies/{state['id']}"
    assert (state["status"], state["project_id"], state["providing_project_id"], state["owner"], state["created_by"],
            state["stalled"], state["overdue"], state["percent"]) == (
        "open", requesting, providing, {"user": "omar", "role": None}, "alice", False, False, None)
    assert state["next_deadline"]["kind"] == "stall"
    did = state["id"]
    # Members of either project see it.
    for user in ("alice", "sam", "omar", "quinn"):
        assert (await get(api, f"/api/dependencies/{did}", user)).json()["id"] == did
    r = await act(api, did, "acknowledge", "omar")
    assert r.status_code == 200 and r.json()["status"] == "in_progress", r.text
    r = await act(api, did, "progress", "omar", {"note": "vault request filed", "percent": 40})
    assert r.status_code == 200 and r.json()["percent"] == 40 and r.json()["last_progress_at"], r.text
    r = await act(api, did, "resolve", "omar", {"note": "credentials in the vault"})
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["next_deadline"] is None
    history = (await get(api, f"/api/dependencies/{did}/history", "omar")).json()["items"]
    assert [h["type"] for h in history] == ["Opened", "Acknowledged", "ProgressReported", "Resolved"]
    assert history[0]["title"] == "Sandbox credentials" and history[0]["owner"] == {"user": "omar", "role": None}
    assert (history[2]["note"], history[2]["percent"]) == ("vault request filed", 40)
    # As it stood when it was opened; a time without a zone is refused.
    opened = (await get(api, f"/api/dependencies/{did}?as_of={history[0]['at'].replace('+', '%2B')}")).json()
    assert opened["status"] == "open"
    assert (await get(api, f"/api/dependencies/{did}?as_of=2026-01-01T00:00:00")).status_code == 422
    assert (await get(api, f"/api/dependencies/{did}?as_of=2000-01-01T00:00:00Z")).status_code == 404
    assert (await get(api, "/api/dependencies/not-a-uuid")).status_code == 404
    assert (await get(api, f"/api/dependencies/{uuid.uuid4()}")).status_code == 404


async def test_an_idempotency_key_answers_the_same_dependency(api):
    requesting, providing = await two_projects(api)
    headers = {"Idempotency-Key": "creds-1"}
    needed_by = later()
    first = await open_one(api, requesting, headers=headers, providing_project_id=providing, needed_by=needed_by)
    again = await open_one(api, requesting, headers=headers, providing_project_id=providing, needed_by=needed_by)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"] and first.headers["location"] == again.headers["location"]
    other = await open_one(api, requesting, headers=headers, providing_project_id=providing, needed_by=needed_by,
                           title="Something else")
    assert other.status_code == 409 and other.json()["type"] == "/problems/idempotency-key-reused"
    listed = (await get(api, f"/api/dependencies?project_id={requesting}")).json()["items"]
    assert [d["id"] for d in listed] == [first.json()["id"]]


async def test_only_the_owner_acknowledges_progresses_or_resolves(api, temporal_env):
    requesting, providing = await two_projects(api)
    did = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    before = await trace(api, temporal_env, did)
    for action, body in (("acknowledge", None), ("progress", {"note": "x"}), ("resolve", {"note": "x"})):
        for user in ("alice", "olga", "quinn"):  # the requester, a colleague of the owner, another member
            r = await act(api, did, action, user, body)
            assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", (action, user)
    # Cancel: the requester, pmo or admin; not the owner. Reassign: pmo, admin or a granted role.
    assert (await act(api, did, "cancel", "omar", {"reason": "not needed"})).status_code == 403
    assert (await act(api, did, "reassign", "carol", {"owner": {"user": "olga"}, "reason": "x"})).status_code == 403
    assert (await act(api, did, "reassign", "omar", {"owner": {"user": "olga"}, "reason": "x"})).status_code == 403
    assert await trace(api, temporal_env, did) == before
    # The owner role: anyone holding it in the owner's project acts as the owner.
    role_owned = (await open_one(api, requesting, providing_project_id=providing, owner={"role": "eng"})).json()["id"]
    assert (await act(api, role_owned, "acknowledge", "olga")).status_code == 200
    assert (await act(api, role_owned, "acknowledge", "carol")).status_code == 403  # eng, but of the other project


async def test_a_closed_dependency_takes_no_action(api, temporal_env):
    requesting, providing = await two_projects(api)
    resolved = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    assert (await act(api, resolved, "resolve", "omar", {"note": "done"})).status_code == 200
    cancelled = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    assert (await act(api, cancelled, "cancel", "alice", {"reason": "the vendor changed"})).status_code == 200
    assert (await get(api, f"/api/dependencies/{cancelled}")).json()["status"] == "cancelled"
    for did in (resolved, cancelled):
        before = await trace(api, temporal_env, did)
        for action, user, body in (("acknowledge", "omar", None), ("progress", "omar", {"note": "x"}),
                                   ("resolve", "omar", {"note": "x"}), ("cancel", "alice", {"reason": "x"}),
                                   ("reassign", "paula", {"owner": {"user": "olga"}, "reason": "x"})):
            r = await act(api, did, action, user, body, *(("pmo",) if user == "paula" else ()))
            assert r.status_code == 409, (did, action, r.text)
        assert await trace(api, temporal_env, did) == before


async def test_a_member_of_neither_project_gets_404_from_every_route(api, temporal_env):
    requesting, providing = await two_projects(api)
    did = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    before = await trace(api, temporal_env, did)
    for path in (f"/api/dependencies/{did}", f"/api/dependencies/{did}/history",
                 f"/api/dependencies?project_id={requesting}", f"/api/dependencies?project_id={providing}"):
        assert (await get(api, path, OUTSIDER)).status_code == 404, path
    for action, body in (("acknowledge", None), ("progress", {"note": "x"}), ("resolve", {"note": "x"}),
                         ("cancel", {"reason": "x"}), ("reassign", {"owner": {"user": "olga"}, "reason": "x"})):
        r = await act(api, did, action, OUTSIDER, body)
        assert r.status_code == 404, (action, r.text)
    assert (await open_one(api, requesting, OUTSIDER)).status_code == 404
    assert (await get(api, "/api/dependencies", OUTSIDER)).json()["items"] == []
    assert await trace(api, temporal_env, did) == before
    # Only members of the requesting project open one for it: a provider cannot see that project.
    assert (await open_one(api, requesting, "omar", providing_project_id=providing)).status_code == 404


async def test_an_opening_that_breaks_a_rule_is_a_422_naming_the_field_and_records_nothing(api, temporal_env):
    from temporalio.service import RPCError

    requesting, providing = await two_projects(api)
    cases = [
        ({"needed_by": later(seconds=-60)}, "needed_by"),
        ({"stall_after": "PT0S"}, "stall_after"),
        ({"stall_after": "P2Y"}, "stall_after"),
        ({"stall_after": "P400D"}, "stall_after"),
        ({"owner": {"user": OUTSIDER}}, "owner"),
        ({"owner": {"role": "sponsor"}}, "owner"),  # a role held only in the requesting project
        ({"owner": {"user": "omar"}, "providing_project_id": None}, "owner"),  # omar is not in the requesting one
    ]
    for index, (fields, name) in enumerate(cases):
        key = f"refused-{index}"
        merged = {"providing_project_id": providing, **fields}
        r = await open_one(api, requesting, headers={"Idempotency-Key": key}, **merged)
        assert r.status_code == 422, (fields, r.text)
        assert any(e["loc"][:2] == ["body", name] for e in r.json()["errors"]), (fields, r.json())
        did = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"alice\n{key}"))
        assert (await get(api, f"/api/dependencies/{did}")).status_code == 404
        try:
            await temporal_env.client.get_workflow_handle(f"dependency-{did}").describe()
            raise AssertionError(f"a watch was started for {fields}")
        except RPCError:
            pass
    assert (await get(api, f"/api/dependencies?project_id={requesting}")).json()["items"] == []


async def test_cancel_needs_a_reason(api, temporal_env):
    requesting, providing = await two_projects(api)
    did = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    before = await trace(api, temporal_env, did)
    for body in (None, {}, {"reason": ""}, {"reason": "   "}):
        r = await act(api, did, "cancel", "alice", body)
        assert r.status_code == 422, (body, r.text)
    assert await trace(api, temporal_env, did) == before
    r = await act(api, did, "cancel", "paula", {"reason": "the launch moved"}, "pmo")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert (await get(api, f"/api/dependencies/{did}/history")).json()["items"][-1]["reason"] == "the launch moved"


async def test_escalation_notifies_inside_the_two_projects_and_grants_reassignment(api, temporal_env):
    requesting, providing = await two_projects(api)
    # quinn (the lead) is granted, not notified: the escalation is aimed at them all the same.
    steps = [{"after": "PT1S", "notify": ["pm", OUTSIDER, "sponsor-of-nothing"], "grant": ["lead"]}]
    did = (await open_one(api, requesting, providing_project_id=providing, stall_after="PT1S",
                          escalation=steps)).json()["id"]
    state = await until(api, did, lambda s: s["escalations"])
    assert state["stalled"] and state["status"] == "open"
    [escalation] = state["escalations"]
    assert escalation["notified"] == ["pete"] and escalation["granted"] == ["quinn"]
    history = (await get(api, f"/api/dependencies/{did}/history")).json()["items"]
    stalled = next(h for h in history if h["type"] == "Stalled")
    assert sorted(stalled["told"]) == ["alice", "omar"] and stalled["due_at"]
    # The inbox: the owner sees what they owe, the notified see the escalation, nobody else anything.
    for user, kind in (("omar", "dependency"), ("pete", "escalation"), ("quinn", "escalation")):
        items = (await get(api, "/api/inbox", user)).json()["items"]
        assert [(i["kind"], i["dependency"]["id"]) for i in items] == [(kind, did)], (user, items)
    for user in (OUTSIDER, "olga", "alice"):
        assert (await get(api, "/api/inbox", user)).json()["items"] == [], user
    # Someone the escalation did not grant may not re-assign; the granted role may.
    before = await trace(api, temporal_env, did)
    assert (await act(api, did, "reassign", "olga", {"owner": {"user": "olga"}, "reason": "x"})).status_code == 403
    assert (await act(api, did, "reassign", "quinn", {"owner": {"user": OUTSIDER}, "reason": "x"})).status_code == 422
    assert await trace(api, temporal_env, did) == before
    r = await act(api, did, "reassign", "quinn", {"owner": {"user": "olga"}, "reason": "omar is on leave"})
    assert r.status_code == 200 and r.json()["owner"] == {"user": "olga", "role": None}, r.text
    assert (await get(api, "/api/inbox", "olga")).json()["items"][0]["kind"] == "dependency"
    # The granted role may resolve too; progress after that is a 409.
    assert (await act(api, did, "resolve", "quinn", {"note": "sent them myself"})).json()["status"] == "resolved"
    assert (await get(api, "/api/inbox", "pete")).json()["items"] == []


async def test_progress_clears_a_stall_and_restarts_the_escalation(api):
    requesting, providing = await two_projects(api)
    steps = [{"after": "PT1S", "notify": ["pm"]}]
    did = (await open_one(api, requesting, providing_project_id=providing, stall_after="PT1S",
                          escalation=steps)).json()["id"]
    await until(api, did, lambda s: s["escalations"])
    r = await act(api, did, "progress", "omar", {"note": "on it"})
    assert r.status_code == 200 and not r.json()["stalled"], r.text
    # The escalation of the earlier run no longer puts it in the inbox of those it notified.
    assert (await get(api, "/api/inbox", "pete")).json()["items"] == []


async def test_the_list_filters_and_shows_both_sides(api):
    requesting, providing = await two_projects(api)
    stalling = (await open_one(api, requesting, providing_project_id=providing, stall_after="PT1S")).json()["id"]
    own = (await open_one(api, requesting, owner={"role": "eng"})).json()["id"]  # no providing project
    late = (await open_one(api, requesting, providing_project_id=providing, needed_by=later(seconds=3))).json()["id"]
    cancelled = (await open_one(api, requesting, providing_project_id=providing)).json()["id"]
    assert (await act(api, cancelled, "cancel", "alice", {"reason": "no longer needed"})).status_code == 200
    await until(api, stalling, lambda s: s["stalled"])
    await until(api, late, lambda s: s["overdue"])

    async def ids(query: str, user: str = "alice") -> set[str]:
        r = await get(api, f"/api/dependencies{query}", user)
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["items"]}

    assert await ids("") == {stalling, own, late, cancelled}
    assert await ids("?stalled=true") >= {stalling} and own not in await ids("?stalled=true")
    assert await ids("?overdue=true") == {late}
    assert await ids("?status=cancelled") == {cancelled}
    assert await ids("?status=open&overdue=false") >= {stalling, own}
    assert late not in await ids("?status=open&overdue=false")
    # The providing side sees what it owes, not what the requesting project owes itself.
    assert await ids("", "omar") == {stalling, late, cancelled}
    assert await ids(f"?project_id={providing}", "olga") == {stalling, late, cancelled}
    assert (await get(api, f"/api/dependencies?project_id={providing}", "alice")).status_code == 404
    assert await ids(f"?project_id={requesting}", "paula") == {stalling, own, late, cancelled}
    # The owner role in the requesting project: its holders have it in their inbox.
    assert [i["dependency"]["id"] for i in (await get(api, "/api/inbox", "carol")).json()["items"]] == [own]
    # Pages follow one another without repeats.
    first = (await get(api, "/api/dependencies?limit=2", "alice")).json()
    second = (await get(api, f"/api/dependencies?limit=2&cursor={first['next_cursor']}", "alice")).json()
    assert {d["id"] for d in first["items"] + second["items"]} == {stalling, own, late, cancelled}
    assert second["next_cursor"] is None
