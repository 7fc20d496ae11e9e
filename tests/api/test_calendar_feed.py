"""The calendar feed and its tokens (issue 9 item 4) over the served API, a real worker and Temporal.

Every feed is parsed back with `icalendar` and checked event by event: who gets which event, at which
time, under which UID, and that nothing reaches anyone else. Feed tokens: good on the feed only (403
elsewhere), 401 once expired, replaced or revoked, on every replica.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from icalendar import Calendar

from api.auth import FEED_MAX_TTL, InvalidToken, mint_feed_token, read_token
from api.feed_tokens import RedactTokens, issue_feed_token
from api.server import uvicorn_config
from store.events import open_application
from tests.api.conftest import serve_api
from workers import cli

SPEC = {"stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "sla": "P3D",
     "escalation": [{"after": "P1D", "notify": ["pm"]}, {"after": "P2D", "notify": ["sponsor"], "grant": ["pmo"]}]},
    {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2, "sla": "P5D"},
]}
OUTSIDER = "mallory"


def parse(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """The feed's events by UID, each as {summary, start, duration, stamp, url, description}."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    assert calendar["version"] == "2.0" and "Signoff" in str(calendar["prodid"])
    events = {}
    for event in calendar.walk("VEVENT"):
        uid = str(event["uid"])
        assert uid not in events, f"UID {uid} twice"
        events[uid] = {"summary": str(event["summary"]), "start": event.decoded("dtstart"),
                       "duration": event.decoded("duration"), "stamp": event.decoded("dtstamp"),
                       "url": str(event["url"]), "description": str(event["description"])}
    return events


async def feed(api, user: str | None = None, token: str | None = None) -> dict[str, dict[str, Any]]:
    if token is not None:
        return parse(await api.http.get("/api/calendar.ics", params={"token": token}))
    return parse(await api.http.get("/api/calendar.ics", headers=api.auth(user)))


async def feed_token(api, user: str) -> dict[str, Any]:
    r = await api.http.post("/api/me/feed-token", headers=api.auth(user))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def at(text: str) -> datetime:
    """A time as the feed shows it: iCalendar times have whole seconds."""
    return datetime.fromisoformat(text).replace(microsecond=0)


async def until(api, path: str, test: Any, seconds: float = 30) -> dict[str, Any]:
    for _ in range(int(seconds / 0.25)):
        state = (await api.http.get(path, headers=api.auth("paula", "pmo"))).json()
        if test(state):
            return state
        await asyncio.sleep(0.25)
    raise AssertionError(f"never happened: {state}")


def assert_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers


async def test_each_person_gets_the_due_times_that_wait_for_them_and_nobody_else_does(api):
    project_id = await api.project()
    policy = await api.policy(SPEC)
    r = await api.submit(project_id, policy)
    assert r.status_code == 201, r.text
    deliverable = r.json()
    did, stage = deliverable["id"], deliverable["stage"]
    deadlines = {(d["kind"], d["level"]): at(d["due_at"]) for d in stage["deadlines"]}
    assert set(deadlines) == {("escalation", 1), ("escalation", 2), ("sla", 0)}
    needed_by = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    r = await api.http.post("/api/dependencies", headers=api.auth("alice"), json={
        "project_id": project_id, "title": "Sandbox credentials", "owner": {"user": "carol"},
        "needed_by": needed_by.isoformat(), "stall_after": "P2D", "remind_before": "P1D"})
    assert r.status_code == 201, r.text
    dependency = r.json()
    base = api.settings.public_base_url()

    bob = await feed(api, "bob")  # the design lead decides the open stage
    assert list(bob) == [f"deliverable-{did}-0-sla-0@signoff"]
    [review] = bob.values()
    assert review["summary"] == "Review due: Homepage mockups (design)"
    assert review["start"] == deadlines[("sla", 0)] == at(stage["sla_due_at"])
    assert review["duration"] == timedelta(minutes=30)
    assert review["url"] == f"{base}/api/deliverables/{did}" and review["url"] in review["description"]

    pete = await feed(api, "pete")  # the pm: escalation step 1 notifies the pm role
    assert list(pete) == [f"deliverable-{did}-0-escalation-1@signoff"]
    assert pete[f"deliverable-{did}-0-escalation-1@signoff"]["summary"] == \
        "Escalation to you: Homepage mockups (design), level 1"
    assert pete[f"deliverable-{did}-0-escalation-1@signoff"]["start"] == deadlines[("escalation", 1)]
    # Step 2 notifies the sponsor and grants the pmo role the decision: both have it, nobody else.
    for user in ("sam", "paula"):
        events = await feed(api, user)
        assert list(events) == [f"deliverable-{did}-0-escalation-2@signoff"], user
        assert events[f"deliverable-{did}-0-escalation-2@signoff"]["start"] == deadlines[("escalation", 2)]
    assert "may decide" in (await feed(api, "paula"))[f"deliverable-{did}-0-escalation-2@signoff"]["description"]

    carol = await feed(api, "carol")  # owns the dependency: its needed-by and its reminder
    dep = dependency["id"]
    assert list(carol) == [f"dependency-{dep}-reminder-0@signoff", f"dependency-{dep}-needed_by-0@signoff"]
    assert carol[f"dependency-{dep}-needed_by-0@signoff"]["start"] == needed_by
    assert carol[f"dependency-{dep}-needed_by-0@signoff"]["summary"] == "Needed by: Sandbox credentials"
    assert carol[f"dependency-{dep}-reminder-0@signoff"]["start"] == needed_by - timedelta(days=1)
    assert carol[f"dependency-{dep}-reminder-0@signoff"]["url"] == f"{base}/api/dependencies/{dep}"

    for user in ("alice", "dan", "erin", OUTSIDER):  # the submitter, others, a stranger: nothing
        assert await feed(api, user) == {}, user

    # The same state gives the same feed, byte for byte: calendar apps see nothing new.
    first = await api.http.get("/api/calendar.ics", headers=api.auth("carol"))
    second = await api.http.get("/api/calendar.ics", headers=api.auth("carol"))
    assert first.content == second.content

    # bob approves: the design stage closes, engineering opens with its own SLA for the engineers.
    assert (await api.decide(did, "bob")).status_code == 200
    assert await feed(api, "bob") == {} and await feed(api, "pete") == {} and await feed(api, "sam") == {}
    state = (await api.http.get(f"/api/deliverables/{did}", headers=api.auth("bob"))).json()
    for user in ("dan", "erin"):
        assert {uid: e["summary"] for uid, e in (await feed(api, user)).items()} == {
            f"deliverable-{did}-1-sla-0@signoff": "Review due: Homepage mockups (engineering)"}, user
    carol = await feed(api, "carol")
    assert sorted(carol) == sorted([f"deliverable-{did}-1-sla-0@signoff", f"dependency-{dep}-reminder-0@signoff",
                                    f"dependency-{dep}-needed_by-0@signoff"])
    assert carol[f"deliverable-{did}-1-sla-0@signoff"]["start"] == at(state["stage"]["sla_due_at"])

    # carol resolves the dependency: it leaves her feed.
    r = await api.http.post(f"/api/dependencies/{dep}/resolve", headers=api.auth("carol"), json={"note": "sent"})
    assert r.status_code == 200, r.text
    assert list(await feed(api, "carol")) == [f"deliverable-{did}-1-sla-0@signoff"]


async def test_raised_escalations_stay_in_the_feed_of_those_they_reached(api):
    project_id = await api.project()
    quick = {"stages": [{"name": "design", "approvers": {"users": ["bob"]}, "rule": "all",
                         "escalation": [{"after": "PT1S", "notify": ["pm"]}]}]}
    did = (await api.submit(project_id, await api.policy(quick))).json()["id"]
    r = await api.http.post("/api/dependencies", headers=api.auth("alice"), json={
        "project_id": project_id, "title": "Brand assets", "owner": {"role": "design-lead"},
        "needed_by": (datetime.now(UTC) + timedelta(days=10)).isoformat(), "stall_after": "PT1S",
        "escalation": [{"after": "PT1S", "notify": ["sponsor"]}, {"after": "P1D", "notify": ["sam", "pm"]}]})
    assert r.status_code == 201, r.text
    dep = r.json()["id"]
    deliverable = await until(api, f"/api/deliverables/{did}", lambda s: s["escalations"])
    dependency = await until(api, f"/api/dependencies/{dep}", lambda s: s["escalations"])

    pete = await feed(api, "pete")
    raised = pete[f"deliverable-{did}-0-escalation-1@signoff"]
    assert "level 1 is raised" in raised["description"]
    assert raised["start"] == at(deliverable["stage"]["deadlines"][0]["due_at"])
    # The dependency's second step (a day after it stalled) is still due and reaches pete and sam.
    history = (await api.http.get(f"/api/dependencies/{dep}/history", headers=api.auth("paula", "pmo"))).json()
    stalled_at = next(h for h in history["items"] if h["type"] == "Stalled")["at"]
    assert [e["level"] for e in dependency["escalations"]] == [1]
    assert f"dependency-{dep}-escalation-2@signoff" in pete
    sam = await feed(api, "sam")
    assert sorted(sam) == [f"dependency-{dep}-escalation-1@signoff", f"dependency-{dep}-escalation-2@signoff"]
    assert sam[f"dependency-{dep}-escalation-1@signoff"]["summary"] == \
        "Dependency escalation to you: Brand assets, level 1"
    assert sam[f"dependency-{dep}-escalation-2@signoff"]["start"] == at(stalled_at) + timedelta(days=1)
    # The owner role's holder owns it: its needed-by is in bob's feed, with his review (no SLA: none).
    bob = await feed(api, "bob")
    assert list(bob) == [f"dependency-{dep}-needed_by-0@signoff"]


async def test_a_feed_token_opens_the_feed_and_nothing_else(api):
    issued = await feed_token(api, "bob")
    token = issued["token"]
    assert issued["url"] == f"{api.settings.public_base_url()}/api/calendar.ics?token={token}"
    assert at(issued["expires_at"]) > datetime.now(UTC) + timedelta(days=89)
    project_id = await api.project()
    await api.submit(project_id, await api.policy(SPEC))
    by_token = await api.http.get(issued["url"].removeprefix(api.settings.public_base_url()))
    by_bearer = await api.http.get("/api/calendar.ics", headers=api.auth("bob"))
    assert by_token.status_code == 200 and by_token.content == by_bearer.content
    assert len(parse(by_token)) == 1
    assert (await api.http.get("/api/calendar.ics", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    # Anywhere else a feed token is 403, in the header; as ?token= it is no credential at all (401).
    bearer = {"Authorization": f"Bearer {token}"}
    for method, path in (("GET", "/api/inbox"), ("GET", "/api/projects"), ("GET", f"/api/projects/{project_id}"),
                         ("POST", "/api/me/feed-token"), ("DELETE", "/api/me/feed-token"),
                         ("GET", "/api/dependencies")):
        assert_problem(await api.http.request(method, path, headers=bearer), 403)
        assert_problem(await api.http.request(method, path, params={"token": token}), 401)
    # A bearer token as ?token= is refused: it does not belong in a URL.
    assert_problem(await api.http.get("/api/calendar.ics", params={"token": api.auth("bob")["Authorization"][7:]}),
                   401)
    assert_problem(await api.http.get("/api/calendar.ics"), 401)
    assert_problem(await api.http.get("/api/calendar.ics", params={"token": "not-a-token"}), 401)


async def test_a_new_feed_token_replaces_the_old_and_revoking_works_at_once_on_every_replica(api, temporal_env,
                                                                                          tmp_path):
    first = (await feed_token(api, "bob"))["token"]
    assert await feed(api, token=first) == {}
    second = (await feed_token(api, "bob"))["token"]
    assert_problem(await api.http.get("/api/calendar.ics", params={"token": first}), 401)
    assert await feed(api, token=second) == {}
    # Another replica on the same event store: a revocation on the first is refused there at once.
    async with serve_api(temporal_env, tmp_path / "replica", with_worker=False,
                         event_store=api.settings.event_store) as replica:
        assert await feed(replica, token=second) == {}
        r = await api.http.delete("/api/me/feed-token", headers=api.auth("bob"))
        assert r.status_code == 204, r.text
        for served in (api, replica):
            assert_problem(await served.http.get("/api/calendar.ics", params={"token": second}), 401)
        assert (await replica.http.delete("/api/me/feed-token", headers=api.auth("bob"))).status_code == 204
        third = (await feed_token(replica, "bob"))["token"]
        assert await feed(api, token=third) == {}
    # Someone else's feed token is theirs alone: bob's revocation leaves carol's working.
    carol = (await feed_token(api, "carol"))["token"]
    await api.http.delete("/api/me/feed-token", headers=api.auth("bob"))
    assert await feed(api, token=carol) == {}


async def test_an_expired_feed_token_is_401(api):
    store = open_application(api.settings.event_store_url())
    try:
        issued = issue_feed_token(store, api.settings, "bob", ttl=timedelta(seconds=1))
    finally:
        store.close()
    deadline = issued["expires_at"]
    while datetime.now(UTC) <= deadline + timedelta(seconds=0.2):
        await asyncio.sleep(0.2)
    r = await api.http.get("/api/calendar.ics", params={"token": issued["token"]})
    assert_problem(r, 401)
    assert "expired" in r.json()["detail"]
    # A feed token whose id was never recorded as bob's (minted with the secret, never issued): 401.
    never_issued, _, _ = mint_feed_token(api.settings.jwt_secret, "bob")
    assert_problem(await api.http.get("/api/calendar.ics", params={"token": never_issued}), 401)


async def test_signoff_token_feed_records_the_token_in_the_store(api, monkeypatch, capsys):
    monkeypatch.setenv("SIGNOFF_JWT_SECRET", api.settings.jwt_secret)
    monkeypatch.setenv("SIGNOFF_EVENT_STORE", api.settings.event_store)
    assert cli.main(["token", "carol", "--feed"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert "/api/calendar.ics?token=" in err and token in err
    assert await feed(api, token=token) == {}
    assert_problem(await api.http.get("/api/inbox", headers={"Authorization": f"Bearer {token}"}), 403)
    # A second one replaces it, as POST /api/me/feed-token does.
    assert cli.main(["token", "carol", "--feed", "--ttl-minutes", "60"]) == 0
    newer = capsys.readouterr().out.strip()
    assert_problem(await api.http.get("/api/calendar.ics", params={"token": token}), 401)
    assert await feed(api, token=newer) == {}
    assert cli.main(["token", "carol", "--feed", "--role", "pmo"]) == 2
    with_too_long = None
    try:
        cli.main(["token", "carol", "--feed", "--ttl-minutes", str(91 * 24 * 60)])
    except SystemExit as refused:
        with_too_long = refused.code
    assert with_too_long not in (None, 0)
    assert capsys.readouterr().out == ""


async def test_the_feed_token_never_reaches_the_access_log_or_the_metrics(api):
    token = (await feed_token(api, "bob"))["token"]
    # uvicorn's access log, as `signoff api` configures it, records the path with its query.
    uvicorn_config(object(), api.settings, log_level="info")
    access = logging.getLogger("uvicorn.access")
    assert any(isinstance(f, RedactTokens) for f in access.filters)
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    keep = Keep()
    access.addHandler(keep)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/api/calendar.ics?token={token}&x=1",
                    "1.1", 200)
    finally:
        access.removeHandler(keep)
    assert seen == ['127.0.0.1:5000 - "GET /api/calendar.ics?token=[redacted]&x=1 HTTP/1.1" 200']
    assert (await api.http.get("/api/calendar.ics", params={"token": token})).status_code == 200
    metrics = (await api.http.get("/metrics")).text
    assert token not in metrics and 'route="/api/calendar.ics"' in metrics



SECRET = "test-secret-that-is-long-enough-for-hs256"


def claims(**changes: Any) -> str:
    now = datetime.now(UTC)
    base = {"sub": "bob", "roles": [], "scope": "feed", "jti": "f00d", "iss": "signoff", "aud": "signoff-api",
            "iat": now, "exp": now + timedelta(days=30)}
    return jwt.encode({k: v for k, v in {**base, **changes}.items() if v is not None}, SECRET, algorithm="HS256")


def test_a_feed_token_reads_back_with_its_scope_and_id():
    token, token_id, expires = mint_feed_token(SECRET, "bob")
    principal = read_token(SECRET, token)
    assert (principal.user, principal.roles, principal.scope, principal.token_id) == ("bob", frozenset(), "feed",
                                                                                     token_id)
    assert principal.is_feed_token and expires - datetime.now(UTC) > FEED_MAX_TTL - timedelta(minutes=1)
    assert read_token(SECRET, claims()).is_feed_token


@pytest.mark.parametrize("changes", [{"scope": "admin"}, {"scope": ""}, {"jti": None}, {"jti": ""},
                                     {"roles": ["pmo"]}, {"exp": datetime.now(UTC) + timedelta(days=91)}],
                         ids=["unknown-scope", "empty-scope", "no-jti", "empty-jti", "with-roles", "over-90-days"])
def test_a_feed_token_that_is_not_one_is_refused(changes):
    with pytest.raises(InvalidToken):
        read_token(SECRET, claims(**changes))


def test_only_feed_tokens_live_longer_than_a_day_and_none_longer_than_the_feed_maximum():
    with pytest.raises(InvalidToken, match="lifetime"):  # a bearer token claiming the feed's lifetime
        read_token(SECRET, claims(scope=None, jti=None, roles=["admin"]))
    with pytest.raises(ValueError):
        mint_feed_token(SECRET, "bob", ttl=FEED_MAX_TTL + timedelta(seconds=1))
