"""History everywhere (issue 10 item 6): every aggregate kind has `…/{id}/history` in one entry shape,
each entry with the `correlation` that caused it, over the served API with a real worker, notifier and
Temporal dev server. Update ids are checked against the workflows' own Temporal histories."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from domain.history import correlation_of
from store.events import open_application
from tests.api.conftest import Api, serve_api
from tests.api.test_dependencies import PROVIDERS, act, open_one
from tests.api.test_webhooks import FAST, PMO, add_webhook, deliveries, until
from tests.builders import STANDARD
from tests.receiver import Receiver
from workers.notifier import Notifier, tracking_recorder

COMMON = {"type", "at", "recorded_at", "version", "actor", "on_behalf_of", "correlation"}
NOBODY = {"workflow_id": None, "update_id": None, "command_id": None}
OUTSIDER = "zoe"  # a member of no project, no global role


@pytest.fixture
def receiver() -> Any:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest_asyncio.fixture
async def api(temporal_env, tmp_path: Path) -> AsyncIterator[Api]:
    """The API with a worker and a notifier (so webhooks are delivered), local webhooks on."""
    async with serve_api(temporal_env, tmp_path, **FAST) as served:
        app = open_application(served.settings.event_store_url())
        notifier = Notifier(app, temporal_env.client, served.settings,
                            tracking_recorder(served.settings.event_store_url()))
        task = asyncio.ensure_future(notifier.run(poll_seconds=0.1))
        try:
            yield served
        finally:
            task.cancel()
            app.close()


async def history(api: Api, path: str, *who: str, **query: Any) -> list[dict[str, Any]]:
    """Every entry of a history, fetched a page at a time."""
    entries, cursor = [], None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        r = await api.http.get(f"{path}/history", headers=api.auth(*who), params=params)
        assert r.status_code == 200, r.text
        entries += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return entries


async def accepted_updates(temporal_env, workflow_id: str) -> dict[str, str]:
    """Update id -> update name, for every Update the workflow's Temporal history accepted."""
    handle = temporal_env.client.get_workflow_handle(workflow_id)
    found = {}
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            request = event.workflow_execution_update_accepted_event_attributes.accepted_request
            found[request.meta.update_id] = request.input.name
    return found


def assert_one_shape(entries: list[dict[str, Any]]) -> None:
    assert entries and all(COMMON <= set(e) for e in entries)
    assert [e["version"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(set(e["correlation"]) == {"workflow_id", "update_id", "command_id"} for e in entries)


async def test_a_deliverable_decision_names_its_chain_and_the_update_that_carried_it(api, temporal_env):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    for approver in ("bob", "carol"):
        assert (await api.decide(did, approver)).status_code == 200
    entries = await history(api, f"/api/deliverables/{did}", "alice")
    assert_one_shape(entries)
    chain = f"deliverable-{did}"
    assert [e["type"] for e in entries] == ["Submitted", "StageOpened", "DecisionRecorded", "StagePassed",
                                            "StageOpened", "DecisionRecorded"]
    submitted = entries[0]["correlation"]
    assert submitted == {"workflow_id": chain, "update_id": None, "command_id": f"{chain}:submission"}
    assert entries[1]["correlation"] == submitted  # the first stage opened with the submission, in its save
    bob, carol = entries[2]["correlation"], entries[5]["correlation"]
    # The stage bob's approval passed, and the next one it opened, were recorded by his command.
    assert entries[3]["correlation"] == entries[4]["correlation"] == bob
    assert (entries[2]["actor"], entries[5]["actor"]) == ("bob", "carol")
    for correlation in (bob, carol):
        assert correlation["workflow_id"] == chain
        assert correlation["command_id"] == f"{chain}:update:{correlation['update_id']}"
        uuid.UUID(correlation["update_id"])
    assert bob["update_id"] != carol["update_id"]
    # The very updates Temporal accepted for those decisions.
    accepted = await accepted_updates(temporal_env, chain)
    assert {bob["update_id"]: "decide", carol["update_id"]: "decide"}.items() <= accepted.items()
    # The fields clients already read are all still there.
    decision = entries[2]
    assert (decision["verdict"], decision["revision"], decision["stage_index"], decision["on_behalf_of"],
            decision["command_id"]) == ("approve", 1, 0, [], bob["command_id"])


async def test_a_dependency_names_its_watch_and_each_owner_action_its_update(api, temporal_env):
    requesting, providing = await api.project(), await api.project(members=PROVIDERS)
    r = await open_one(api, requesting, providing_project_id=providing)
    assert r.status_code == 201, r.text
    dep = r.json()["id"]
    assert (await act(api, dep, "acknowledge", "omar")).status_code == 200
    assert (await act(api, dep, "progress", "omar", {"note": "keys ordered", "percent": 40})).status_code == 200
    entries = await history(api, f"/api/dependencies/{dep}", "alice")
    assert_one_shape(entries)
    watch = f"dependency-{dep}"
    assert [e["type"] for e in entries] == ["Opened", "Acknowledged", "ProgressReported"]
    assert entries[0]["correlation"] == {"workflow_id": watch, "update_id": None, "command_id": f"{watch}:opening"}
    accepted = await accepted_updates(temporal_env, watch)
    updates = [e["correlation"]["update_id"] for e in entries[1:]]
    assert [accepted[u] for u in updates] == ["acknowledge", "progress"]
    assert all(e["correlation"]["workflow_id"] == watch for e in entries)
    assert entries[2]["note"] == "keys ordered" and entries[2]["percent"] == 40


async def test_a_project_history_shows_who_changed_what_and_why_to_its_members_only(api, receiver):
    project_id, webhook_id, secret = await add_webhook(api, receiver)
    r = await api.http.patch(f"/api/projects/{project_id}", headers=api.auth(*PMO), json={
        "phases": [{"name": "Discovery", "planned_start": "2026-12-01"}], "reason": "planned the discovery"})
    assert r.status_code == 200, r.text
    entries = await history(api, f"/api/projects/{project_id}", *PMO)
    assert_one_shape(entries)
    assert [(e["type"], e["actor"]) for e in entries] == [("Created", "paula"), ("WebhookAdded", "paula"),
                                                          ("CharterChanged", "paula")]
    assert all(e["correlation"] == NOBODY for e in entries)  # HTTP requests, not workflows
    created, added, changed = entries
    assert created["name"] == "Northwind website relaunch" and {"user": "bob", "roles": ["design-lead"]} in \
        created["members"]
    assert (added["webhook_id"], added["url"], added["reason"]) == (webhook_id, receiver.url(), "the PMO channel")
    assert changed["reason"] == "planned the discovery" and changed["phases"][0]["name"] == "Discovery"
    assert changed["members"] is None  # only what the change changed
    # A member sees it, a webhook's url only by scheme and host; nobody ever sees a secret.
    r = await api.http.get(f"/api/projects/{project_id}/history", headers=api.auth("pete"))
    assert r.status_code == 200 and r.json()["items"][1]["url"] == receiver.url().removesuffix("/hook") + "/…"
    assert secret not in r.text and "whsec_" not in r.text
    # Anyone else: the 404 of GET /api/projects/{id}.
    for path in (f"/api/projects/{project_id}/history", f"/api/projects/{uuid.uuid4()}/history"):
        r = await api.http.get(path, headers=api.auth(OUTSIDER))
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_a_policy_history_lists_its_versions_to_whoever_may_read_the_policy(api):
    named = {"stages": [{"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}],
             "on_revision": "restart"}
    name = await api.policy(named)  # version 1 names an approver by user id
    r = await api.http.put(f"/api/policies/{name}", headers=api.auth(*PMO), json=STANDARD | {"stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}]})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    entries = await history(api, f"/api/policies/{name}", *PMO)
    assert_one_shape(entries)
    assert [(e["type"], e.get("policy_version")) for e in entries] == [("Created", None), ("VersionPublished", 1),
                                                                       ("VersionPublished", 2)]
    assert all(e["correlation"] == NOBODY and e["actor"] == "paula" for e in entries)
    assert entries[1]["spec"]["stages"][0]["approvers"]["users"] == ["sam"]
    # Someone on no project may read the latest version (roles only), not the one naming sam.
    outsider = await history(api, f"/api/policies/{name}", OUTSIDER)
    assert [e["spec"] is None for e in outsider] == [True, True, False]
    assert "sam" not in str(outsider)
    # A policy whose latest version names users is a 404 to them, as GET is; and so is no policy.
    hidden = await api.policy(named)
    for policy in (hidden, "no-such-policy"):
        assert (await api.http.get(f"/api/policies/{policy}", headers=api.auth(OUTSIDER))).status_code == 404
        r = await api.http.get(f"/api/policies/{policy}/history", headers=api.auth(OUTSIDER))
        assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"


async def test_a_delivery_history_names_the_workflow_of_each_run(api, receiver, temporal_env):
    project_id, webhook_id, _ = await add_webhook(api, receiver)
    receiver.then = 500  # down: the first run fails within its two-second budget
    await api.submit(project_id, await api.policy())
    await until(lambda: deliveries(api, project_id, "?status=failed"), 15, "a failed delivery")
    [failed] = await deliveries(api, project_id, "?status=failed")
    base = f"/api/projects/{project_id}/deliveries/{failed['id']}"
    receiver.then = 200
    assert (await api.http.post(f"{base}/retry", headers=api.auth(*PMO))).status_code == 202

    async def delivered() -> bool:
        return (await api.http.get(base, headers=api.auth(*PMO))).json()["status"] == "delivered"

    await until(delivered, 10, "the retry delivered")
    entries = await history(api, base, *PMO)
    assert_one_shape(entries)
    first, second = f"delivery-{failed['id']}", f"delivery-{failed['id']}-run-2"
    assert [(e["type"], e["correlation"]["workflow_id"], e.get("run"), e.get("outcome"), e["actor"])
            for e in entries] == [("Started", first, None, None, "signoff"),
                                  ("OutcomeRecorded", first, 1, "failed", "signoff"),
                                  ("RetryRequested", second, 2, None, "paula"),
                                  ("OutcomeRecorded", second, 2, "delivered", "signoff")]
    assert all(e["correlation"]["update_id"] is None for e in entries)
    assert entries[0]["webhook_id"] == webhook_id and entries[0]["message"]["type"] == failed["type"]
    assert entries[1]["last_status"] == 500 and entries[3]["last_status"] == 200
    for workflow_id in (first, second):  # the workflows it names are Temporal's
        await temporal_env.client.get_workflow_handle(workflow_id).describe()
    # Who may GET the delivery may read its history: a member who is not its pmo may not (403), an
    # outsider sees nothing (404), and no delivery of another project is found through this one.
    assert (await api.http.get(f"{base}/history", headers=api.auth("pete"))).status_code == 403
    assert (await api.http.get(f"{base}/history", headers=api.auth(OUTSIDER))).status_code == 404
    other = await api.project()
    r = await api.http.get(f"/api/projects/{other}/deliveries/{failed['id']}/history", headers=api.auth(*PMO))
    assert r.status_code == 404


async def test_history_pages_by_limit_cursor_and_order(api):
    project_id, policy = await api.project(), await api.policy()
    did = (await api.submit(project_id, policy)).json()["id"]
    for approver in ("bob", "carol", "dan", "sam"):
        assert (await api.decide(did, approver)).status_code == 200
    path = f"/api/deliverables/{did}"
    whole = await history(api, path, "alice")
    assert len(whole) == 12
    assert await history(api, path, "alice", limit=5) == whole
    assert await history(api, path, "alice", limit=1, order="desc") == whole[::-1]
    r = await api.http.get(f"{path}/history", headers=api.auth("alice"), params={"limit": 5})
    page = r.json()
    assert [e["version"] for e in page["items"]] == [1, 2, 3, 4, 5] and page["next_cursor"]
    # A cursor belongs to its history and its order: any other is a 422, never someone else's page.
    project_path = f"/api/projects/{project_id}/history"
    for url, params in ((f"{path}/history", {"cursor": page["next_cursor"], "order": "desc"}),
                        (project_path, {"cursor": page["next_cursor"]}),
                        (f"/api/policies/{policy}/history", {"cursor": page["next_cursor"]}),
                        (f"{path}/history", {"order": "sideways"})):
        r = await api.http.get(url, headers=api.auth(*PMO), params=params)
        assert r.status_code == 422, (url, r.text)
    # The same pages on every kind.
    assert [e["type"] for e in await history(api, f"/api/projects/{project_id}", *PMO, limit=1)] == ["Created"]
    assert len(await history(api, f"/api/policies/{policy}", *PMO, limit=1, order="desc")) == 2


def test_correlation_is_read_from_the_command_id_the_workflow_recorded_under():
    """Pure: what `correlation_of` makes of each kind of command id (domain/audit.py builds on it too)."""
    update = "5f0e2b8c-7d1a-4c3e-9b6f-2a8d4e1c7b90"
    deadline = "deliverable-1:deadline:0:2026-11-27T10:00:00+00:00:escalation:1"  # colons in the name
    assert correlation_of(f"deliverable-1:update:{update}", "deliverable-1") == {
        "workflow_id": "deliverable-1", "update_id": update, "command_id": f"deliverable-1:update:{update}"}
    assert correlation_of(deadline, None) == {"workflow_id": "deliverable-1", "update_id": None,
                                              "command_id": deadline}
    assert correlation_of("dependency-2:opening", None)["workflow_id"] == "dependency-2"
    # No command id, or one that names no workflow (given by hand): the aggregate's own workflow.
    assert correlation_of(None, "deliverable-1") == {"workflow_id": "deliverable-1", "update_id": None,
                                                     "command_id": None}
    assert correlation_of("", None) == NOBODY
    assert correlation_of("r2", "deliverable-1") == {"workflow_id": "deliverable-1", "update_id": None,
                                                     "command_id": "r2"}
