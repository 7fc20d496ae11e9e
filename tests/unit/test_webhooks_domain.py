"""Webhooks in the domain, pure: the URL rule (no reaching into the service's network), derived
secrets, the project's webhook list, the messages events make, and a delivery's outcomes."""

import uuid
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from domain.application import Signoff
from domain.delivery import Delivery, delivery_id, webhook_message_id
from domain.errors import Conflict, Invalid, NotFound
from domain.notifications import RecordedEvent, Subject, messages_for
from domain.webhooks import check_url, derive_secret
from tests.builders import MEMBERS
from workflows.delivery import attempts_within
from workflows.delivery_activities import pinned

PUBLIC = {"hooks.example": ["93.184.215.14"], "rebind.example": ["10.1.2.3"], "v6.example": ["fd00::1"],
          "mixed.example": ["93.184.215.14", "127.0.0.1"], "localhost": ["127.0.0.1"]}


def resolve(host):
    if host not in PUBLIC:
        raise OSError("no such host")
    return PUBLIC[host]


@pytest.mark.parametrize("url", ["https://hooks.example/pmo", "https://93.184.215.14:8443/x?y=1"])
def test_public_https_urls_are_taken(url):
    assert check_url(url, allow_local=False, resolve=resolve) == ["93.184.215.14"]


def test_a_refusal_does_not_say_which_internal_address_a_name_has():
    with pytest.raises(Invalid) as refused:
        check_url("https://rebind.example/", allow_local=False, resolve=resolve)
    assert "10.1.2.3" not in refused.value.detail


@pytest.mark.parametrize("url, why", [
    ("http://hooks.example/pmo", "only https"),
    ("https://10.0.0.7/hook", "internal"),
    ("https://169.254.169.254/latest/meta-data", "internal"),  # the cloud metadata service
    ("https://[::1]/", "internal"),
    ("https://[::ffff:127.0.0.1]/", "internal"),
    ("https://rebind.example/", "internal"),  # a public name that resolves inside
    ("https://v6.example/", "internal"),
    ("https://mixed.example/", "internal"),  # any internal address is enough
    ("https://localhost/", "internal"),  # not without allow_local
    ("https://nowhere.example/", "does not resolve"),
    ("https://user:secret@hooks.example/", "credentials"),
    ("https:///path-only", "no host"),
    ("https://hooks.example:99999/", "out of range"),
    ("https://[64:ff9b::a9fe:a9fe]/", "internal"),  # NAT64 of 169.254.169.254
    ("https://[2002:a9fe:a9fe::1]/", "internal"),  # 6to4 of it
    ("https://[::a9fe:a9fe]/", "internal"),  # IPv4-compatible
    ("https://[2001:0:4136:e378:8000:63bf:f5fe:fffe]/", "internal"),  # Teredo of 10.0.0.1 (inverted)
])
def test_urls_that_could_reach_inside_are_refused_naming_the_field(url, why):
    with pytest.raises(Invalid) as refused:
        check_url(url, allow_local=False, resolve=resolve, where=("body", "webhooks", 0, "url"))
    assert why in refused.value.detail and refused.value.field == ("body", "webhooks", 0, "url")


def test_local_http_only_where_local_webhooks_are_on():
    check_url("http://127.0.0.1:9000/hook", allow_local=True, resolve=resolve)
    check_url("http://localhost:9000/hook", allow_local=True, resolve=resolve)
    with pytest.raises(Invalid):
        check_url("http://127.0.0.1:9000/hook", allow_local=False, resolve=resolve)
    with pytest.raises(Invalid):  # allow_local is about loopback, not the rest of the network
        check_url("http://10.0.0.7/hook", allow_local=True, resolve=resolve)


def test_a_derived_secret_is_a_standard_webhooks_secret_that_changes_with_each_generation():
    first, second = (derive_secret(b"key", "w1", generation) for generation in (1, 2))
    assert first.startswith("whsec_") and first != second
    assert derive_secret(b"key", "w1", 1) == first != derive_secret(b"other", "w1", 1)
    body, now = '{"type":"reminder.sent"}', datetime.now(UTC)
    signature = Webhook(first).sign("msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": signature}
    Webhook(first).verify(body, headers)


@pytest.fixture
def project():
    app = Signoff(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    return app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula")


def test_a_projects_webhooks_are_kept_changed_added_and_removed_by_id(project):
    first, second = project.set_webhooks("paula", "channels", [{"url": "https://hooks.example/a"},
                                                               {"url": "https://hooks.example/b",
                                                                "events": ["reminder.sent"]}], uuid.uuid4)
    assert set(project.webhooks) == {first, second} and project.webhooks[first]["events"] is None
    added = project.set_webhooks("paula", "only b, to another url; a new c", [
        {"id": second, "url": "https://hooks.example/b2", "events": ["reminder.sent"]},
        {"url": "https://hooks.example/c"}], uuid.uuid4)
    assert len(added) == 1 and set(project.webhooks) == {second, added[0]}
    assert project.webhooks[second]["url"] == "https://hooks.example/b2"
    assert project.rotate_webhook_secret(second, "paula") == 2
    names = [type(e).__name__ for e in project.collect_events()]
    assert names == ["WebhookAdded", "WebhookAdded", "WebhookRemoved", "WebhookChanged", "WebhookAdded",
                     "WebhookSecretRotated"]
    with pytest.raises(Invalid):
        project.set_webhooks("paula", "x", [{"id": "not-ours", "url": "https://hooks.example/a"}], uuid.uuid4)
    with pytest.raises(NotFound):
        project.rotate_webhook_secret("not-ours", "paula")


def event(name, kind="deliverable", **fields):
    return RecordedEvent(subject=Subject(kind=kind, id="s1", title="Homepage mockups", url="https://x/s1"),
                         project_id="p1", project_name="Northwind", name=name, version=4,
                         at=datetime(2026, 11, 30, 9, tzinfo=UTC), fields=fields, owner_of_subject="alice")


@pytest.mark.parametrize("recorded, expected", [
    (event("StageOpened", index=0, stage_name="design", approvers=["bob"]), [("review.requested", ["bob"])]),
    (event("ReminderSent", stage_index=0, level=1, to=["bob"]), [("reminder.sent", ["bob"])]),
    (event("Escalated", stage_index=0, level=2, notified=["paula"], granted=["paula", "pete"]),
     [("escalation.raised", ["paula", "pete"])]),
    (event("Approved", actor="sam"), [("deliverable.approved", ["alice"])]),
    (event("Rejected", actor="sam"), [("deliverable.rejected", ["alice"])]),
    (event("ChangesRequested", actor="bob", stage_index=0), [("deliverable.changes_requested", ["alice"])]),
    (event("DecisionRecorded", actor="bob"), []),
    (event("Stalled", kind="dependency", told=["omar", "alice"]), [("dependency.stalled", ["omar", "alice"])]),
    (event("BecameOverdue", kind="dependency", told=["alice"]), [("dependency.overdue", ["alice"])]),
    (event("Resolved", kind="dependency", actor="omar"), [("dependency.resolved", ["alice"])]),
    (event("ProgressReported", kind="dependency", actor="omar"), []),
])
def test_each_event_makes_the_messages_people_must_get(recorded, expected):
    made = messages_for(recorded)
    assert [(m.type, m.recipients) for m in made] == expected
    for message in made:
        assert message.key == "s1:4" and message.body["type"] == message.type
        assert message.body["data"]["project"] == {"id": "p1", "name": "Northwind"}
        assert message.body["data"]["recipients"] == message.recipients and message.body["text"]


def test_a_delivery_records_each_runs_outcome_once_and_retries_only_a_failed_one():
    uid = delivery_id("w1", "s1:4", "reminder.sent")
    assert uid == delivery_id("w1", "s1:4", "reminder.sent") != delivery_id("w2", "s1:4", "reminder.sent")
    assert webhook_message_id(uid) == f"msg_{uid.hex}"
    delivery = Delivery.start(uid, "p1", "w1", "https://hooks.example/a",
                              {"type": "reminder.sent", "body": {"data": {"subject": {"kind": "deliverable"}}}})
    assert delivery.status == "pending"
    with pytest.raises(Conflict):
        delivery.retry("paula")
    delivery.record_outcome(1, "failed", 9, 500, "the receiver answered 500")
    delivery.record_outcome(1, "delivered", 1, 200)  # a repeat of run 1: nothing
    assert (delivery.status, delivery.to_state()["attempts"]) == ("failed", 9)
    assert delivery.retry("paula") == 2 and delivery.status == "pending"
    delivery.record_outcome(2, "delivered", 1, 200)
    assert [o["outcome"] for o in delivery.outcomes] == ["failed", "delivered"] and delivery.status == "delivered"


def test_a_delivery_connects_to_the_address_that_was_checked_not_to_a_second_lookup():
    assert pinned("https://hooks.example:8443/pmo?x=1", ["93.184.215.14"]) == (
        "https://93.184.215.14:8443/pmo?x=1", {"sni_hostname": "hooks.example"})
    assert pinned("https://hooks.example/pmo", ["2606:2800:220:1::1"]) == (
        "https://[2606:2800:220:1::1]/pmo", {"sni_hostname": "hooks.example"})
    assert pinned("http://127.0.0.1:9000/hook", []) == ("http://127.0.0.1:9000/hook", {})


@pytest.mark.parametrize("budget, first, longest, expected", [
    (86400, 1, 3600, 35),  # a day: 1, 2, … 2048 s apart, then hourly
    (2.0, 0.2, 2.0, 4),  # 0.2 + 0.4 + 0.8 fit, 1.6 more does not
    (0.5, 1, 0.5, 1),  # no retry fits
])
def test_a_budget_is_the_attempts_that_begin_within_it(budget, first, longest, expected):
    assert attempts_within(budget, first, longest) == expected
