"""Webhooks over HTTP (issue 9): a project's webhooks are set by PATCH, their secret is shown once and
never again, urls that could reach the service's own network are refused, and deliveries are listed
and a failed one sent again. A real receiver (tests/receiver.py) verifies every signature."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from domain.webhooks import derive_secret
from store.events import open_application
from tests.api.conftest import Api, serve_api
from tests.receiver import Receiver
from workers.notifier import Notifier, tracking_recorder

PMO = ("paula", "pmo")
KEY = "test-webhook-key"
# Local webhooks on, and a delivery that gives up after two seconds.
FAST = {"allow_local_webhooks": True, "webhook_key": KEY, "webhook_budget_seconds": 2.0,
        "webhook_first_retry_seconds": 0.2, "webhook_attempt_timeout_seconds": 2.0}


@pytest.fixture
def receiver() -> Any:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest_asyncio.fixture
async def hooks(temporal_env, tmp_path: Path) -> AsyncIterator[Api]:
    """The API with a worker and a notifier (as every `signoff worker` runs), local webhooks on."""
    async with serve_api(temporal_env, tmp_path, **FAST) as api:
        app = open_application(api.settings.event_store_url())
        notifier = Notifier(app, temporal_env.client, api.settings, tracking_recorder(api.settings.event_store_url()))
        task = asyncio.ensure_future(notifier.run(poll_seconds=0.1))
        try:
            yield api
        finally:
            task.cancel()
            app.close()


async def patch(api: Api, project_id: str, webhooks: list[dict[str, Any]], *who: str) -> Any:
    return await api.http.patch(f"/api/projects/{project_id}", headers=api.auth(*(who or PMO)),
                                json={"webhooks": webhooks, "reason": "the PMO channel"})


async def until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def add_webhook(api: Api, receiver: Receiver, **extra: Any) -> tuple[str, str, str]:
    """A project with one webhook to the receiver; its id and the secret the PATCH showed."""
    project_id = await api.project()
    r = await patch(api, project_id, [{"url": receiver.url(), **extra}])
    assert r.status_code == 200, r.text
    [webhook] = r.json()["webhooks"]
    receiver.secrets["/hook"] = webhook["secret"]
    return project_id, webhook["id"], webhook["secret"]


async def deliveries(api: Api, project_id: str, query: str = "") -> list[dict[str, Any]]:
    r = await api.http.get(f"/api/projects/{project_id}/deliveries{query}", headers=api.auth(*PMO))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def signed_body(received: Any) -> bytes:
    # The sender's exact bytes: compact JSON, keys in the order they came.
    return json.dumps(received.body, separators=(",", ":")).encode()


async def test_the_secret_is_shown_once_in_the_patch_that_adds_the_webhook(hooks, receiver, tmp_path):
    api = hooks
    project_id, webhook_id, secret = await add_webhook(api, receiver, events=["review.requested"])
    assert secret == derive_secret(KEY.encode(), webhook_id, 1) and secret.startswith("whsec_")
    shown = {"id": webhook_id, "url": receiver.url(), "events": ["review.requested"]}
    seen = []
    for path in (f"/api/projects/{project_id}", "/api/projects"):
        r = await api.http.get(path, headers=api.auth(*PMO))
        assert r.status_code == 200
        seen.append(r.text)
    assert json.loads(seen[0])["webhooks"] == [shown]
    assert json.loads(seen[1])["items"][0]["webhooks"] == [shown]
    # Kept by its id, with another url: changed, no secret shown again.
    other = receiver.url("/other")
    r = await patch(api, project_id, [{"id": webhook_id, "url": other, "events": ["review.requested"]}])
    assert r.status_code == 200 and r.json()["webhooks"] == [{**shown, "url": other, "secret": None}]
    assert r.headers["cache-control"] == "no-store"  # an answer that may hold a secret is never cached
    seen.append(r.text)
    # Errors name what is wrong, never a secret.
    for bad in ([{"id": webhook_id, "url": other}, {"id": webhook_id, "url": other}],
                [{"id": "no-such-webhook", "url": other}], [{"url": "ftp://127.0.0.1/x"}]):
        r = await patch(api, project_id, bad)
        assert r.status_code == 422, r.text
        seen.append(r.text)
    r = await api.http.post(f"/api/projects/{project_id}/webhooks/{webhook_id}/rotate-secret", headers=api.auth("alice"))
    assert r.status_code == 403
    seen.append(r.text)
    # A deliverable's messages went to it: its history and the deliveries list hold no secret either.
    r = await patch(api, project_id, [{"id": webhook_id, "url": receiver.url(), "events": ["review.requested"]}])
    seen.append(r.text)
    policy = await api.policy()
    deliverable = (await api.submit(project_id, policy)).json()
    await until(lambda: deliveries(api, project_id, "?status=delivered"), 10, "the review.requested delivery")
    seen.append((await api.http.get(f"/api/deliverables/{deliverable['id']}/history", headers=api.auth("alice"))).text)
    seen.append((await api.http.get(f"/api/projects/{project_id}/deliveries", headers=api.auth(*PMO))).text)
    assert not [text for text in seen if "whsec_" in text]
    # Nor does anything the service stores.
    for stored in tmp_path.glob("*.sqlite*"):
        assert b"whsec_" not in stored.read_bytes(), stored
    [received] = receiver.received
    assert received.verified and received.body["type"] == "review.requested"


async def test_a_rotated_secret_signs_what_follows_and_the_old_one_no_longer_verifies(hooks, receiver):
    api = hooks
    project_id, webhook_id, old = await add_webhook(api, receiver)
    r = await api.http.post(f"/api/projects/{project_id}/webhooks/{webhook_id}/rotate-secret", headers=api.auth(*PMO))
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert r.json() == {"id": webhook_id, "url": receiver.url(), "events": None, "secret": new}
    assert r.headers["cache-control"] == "no-store"
    assert new.startswith("whsec_") and new != old
    assert "whsec_" not in (await api.http.get(f"/api/projects/{project_id}", headers=api.auth(*PMO))).text
    receiver.secrets["/hook"] = new
    await api.submit(project_id, await api.policy())
    await until(lambda: deliveries(api, project_id, "?status=delivered"), 10, "a delivery")
    [received] = receiver.received
    assert received.verified  # standardwebhooks verified it with the new secret
    Webhook(new).verify(signed_body(received), received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(signed_body(received), received.headers)
    r = await api.http.post(f"/api/projects/{project_id}/webhooks/{uuid.uuid4()}/rotate-secret",
                            headers=api.auth(*PMO))
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("url", ["http://hooks.example/pmo", "https://10.0.0.1/hook", "https://169.254.169.254/latest",
                                 "https://localhost/hook", "http://127.0.0.1:9/hook", "https://[::1]/hook",
                                 "https://user:pw@93.184.215.14/hook"])
async def test_urls_that_could_reach_the_service_network_are_refused(api, url):
    """Without local webhooks (the default outside `signoff dev`): https to public addresses only."""
    project_id = await api.project()
    # The first one is public (an address, so no name needs resolving here): the second is named.
    r = await patch(api, project_id, [{"url": "https://93.184.215.14/hook"}, {"url": url}])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "webhooks", 1, "url"]]
    project = (await api.http.get(f"/api/projects/{project_id}", headers=api.auth(*PMO))).json()
    assert project["webhooks"] == []  # nothing recorded


async def test_a_public_https_url_is_taken_and_an_unknown_event_type_is_refused(api):
    project_id = await api.project()
    r = await patch(api, project_id, [{"url": "https://93.184.215.14/hook", "events": ["dependency.stalled"]}])
    assert r.status_code == 200, r.text
    assert r.json()["webhooks"][0]["secret"].startswith("whsec_")
    r = await patch(api, project_id, [{"url": "https://93.184.215.14/hook", "events": ["escalation.raised",
                                                                                    "deliverable.exploded"]}])
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "webhooks", 0, "events"]]
    assert "unknown message type 'deliverable.exploded'" in r.json()["detail"]
    r = await patch(api, project_id, [{"url": "https://93.184.215.14/hook"}], "pete")  # the project's pm
    assert r.status_code == 403


async def test_a_failed_delivery_is_listed_and_a_retry_delivers_it_with_the_same_webhook_id(hooks, receiver):
    api = hooks
    project_id, webhook_id, _ = await add_webhook(api, receiver)
    receiver.then = 500  # down: every attempt fails until the two-second budget is spent
    await api.submit(project_id, await api.policy())
    await until(lambda: deliveries(api, project_id, "?status=failed"), 15, "a failed delivery")
    [failed] = await deliveries(api, project_id, "?status=failed")
    assert (failed["status"], failed["last_status"], failed["runs"], failed["webhook_id"]) == ("failed", 500, 1,
                                                                                               webhook_id)
    assert await deliveries(api, project_id, "?status=delivered") == []
    attempts = len(receiver.received)
    assert failed["attempts"] == attempts >= 2

    base = f"/api/projects/{project_id}/deliveries/{failed['id']}"
    assert (await api.http.post(f"{base}/retry", headers=api.auth("alice"))).status_code == 403  # a member
    assert (await api.http.post(f"{base}/retry", headers=api.auth("zoe"))).status_code == 404  # not a member
    receiver.then = 200  # back up
    r = await api.http.post(f"{base}/retry", headers=api.auth(*PMO))
    assert r.status_code == 202, r.text
    # The answer is the record once the new run is recorded: still pending, or already delivered when the
    # receiver answered first (CI saw both).
    assert r.json()["status"] in ("pending", "delivered") and r.json()["runs"] == 2, r.text
    r = await api.http.post(f"{base}/retry", headers=api.auth(*PMO))  # pending, or delivered already
    assert r.status_code == 409 and r.json()["type"] == "/problems/conflict", r.text

    async def delivered() -> bool:
        return (await api.http.get(base, headers=api.auth(*PMO))).json()["status"] == "delivered"

    await until(delivered, 10, "the retry delivered")
    state = (await api.http.get(base, headers=api.auth("paula"))).json()  # the project's pmo, no global role
    assert [o["outcome"] for o in state["outcomes"]] == ["failed", "delivered"]
    assert state["attempts"] == attempts + 1
    assert len(receiver.received) == attempts + 1 and all(r.verified for r in receiver.received)
    assert {r.headers["webhook-id"] for r in receiver.received} == {state["webhook_message_id"]}
    r = await api.http.post(f"{base}/retry", headers=api.auth(*PMO))
    assert r.status_code == 409, r.text  # delivered: nothing to send again
    assert [d["id"] for d in await deliveries(api, project_id, "?status=delivered")] == [failed["id"]]
    assert await deliveries(api, project_id, "?status=failed") == []


async def test_who_sees_deliveries(hooks, receiver):
    api = hooks
    project_id, _, _ = await add_webhook(api, receiver)
    path = f"/api/projects/{project_id}/deliveries"
    assert (await api.http.get(path, headers=api.auth("paula"))).status_code == 200  # project role pmo
    assert (await api.http.get(path, headers=api.auth("root", "admin"))).status_code == 200
    assert (await api.http.get(path, headers=api.auth("pete"))).status_code == 403  # the pm: a member
    assert (await api.http.get(path, headers=api.auth("zoe"))).status_code == 404  # not a member
    r = await api.http.get(f"{path}/{uuid.uuid4()}", headers=api.auth(*PMO))
    assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    r = await api.http.post(f"{path}/{uuid.uuid4()}/retry", headers=api.auth(*PMO))
    assert r.status_code == 404
    r = await api.http.get(f"{path}?status=lost", headers=api.auth(*PMO))
    assert r.status_code == 422


async def test_a_member_who_is_not_pmo_sees_only_the_scheme_and_host_of_a_webhook_url(hooks, receiver):
    api = hooks
    project_id, _, _ = await add_webhook(api, receiver)
    host = receiver.url().split("/")[2]
    for path, pick in ((f"/api/projects/{project_id}", lambda j: j), ("/api/projects", lambda j: j["items"][0])):
        shown = pick((await api.http.get(path, headers=api.auth("alice"))).json())["webhooks"][0]["url"]
        assert shown == f"http://{host}/…", path
        whole = pick((await api.http.get(path, headers=api.auth(*PMO))).json())["webhooks"][0]["url"]
        assert whole == receiver.url()
