"""The audit view on real SQLite and PostgreSQL stores: rows of every kind, rebuilds equal to the live
view, and tampering with stored events (by SQL, as an intruder would) named by its seq."""

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from domain.application import Signoff
from domain.commands import Decide, SubmitRevision
from store.audit_keys import SigningKey
from store.audit_view import AuditFilter, Scope, open_audit_view
from store.events import open_application, postgres_conninfo, store_env
from tests.builders import MEMBERS, make_policy, make_project, revision, submission
from workers.audit_verify import verify_store
from workers.projector import CheckpointBroken, Projector


def record_history(app: Signoff) -> tuple[str, str]:
    """A project, a policy, a deliverable with a request for changes, a revision and approvals."""
    project_id = make_project(app)
    policy = make_policy(app, name="standard-review")
    deliverable_id = str(uuid.uuid4())
    app.submit_deliverable(submission(project_id, policy, deliverable_id=deliverable_id, command_id="c0"))

    def decide(actor: str, verdict: str, number: int, n: int) -> None:
        app.change_deliverable(Decide(deliverable_id=deliverable_id, actor=actor, verdict=verdict, revision=number,
                                      comment="see notes" if verdict != "approve" else "",
                                      command_id=f"deliverable-{deliverable_id}:update:{uuid.UUID(int=n)}"))

    decide("bob", "request_changes", 1, 1)
    app.change_deliverable(SubmitRevision(deliverable_id=deliverable_id, actor="alice", command_id="r2",
                                          **revision("v2")))
    decide("bob", "approve", 2, 2)
    decide("carol", "approve", 2, 3)
    app.change_project(project_id, "paula", "dan joins", members=[*MEMBERS, {"user": "zoe", "roles": ["eng"]}])
    return project_id, deliverable_id


@pytest.fixture
def trail(store_url: str, tmp_path: Path) -> Any:
    app = open_application(store_url)
    project_id, deliverable_id = record_history(app)
    key = SigningKey.load(tmp_path / "audit.pem", make=True)
    projector = Projector(app, open_audit_view(store_url), key, checkpoint_rows=4, checkpoint_seconds=0)
    projector.catch_up()
    yield app, projector, key, project_id, deliverable_id
    app.close()


def all_rows(projector: Projector) -> list[str]:
    return [body for _, body in projector.view.stream(AuditFilter(), None, True)]


def execute(store_url: str, statement: str, *params: Any) -> None:
    env = store_env(store_url)
    if env["PERSISTENCE_MODULE"].startswith("store.postgres"):
        schema = env["POSTGRES_SCHEMA"]
        with psycopg.connect(postgres_conninfo(env, search_path=schema)) as conn:
            conn.execute(statement.replace("?", "%s"), params)
    else:
        with sqlite3.connect(env["SQLITE_DBNAME"]) as conn:
            conn.execute(statement, params)


def test_every_event_makes_one_chained_row_naming_who_what_why(trail: Any) -> None:
    app, projector, key, project_id, deliverable_id = trail
    rows = [json.loads(r) for r in all_rows(projector)]
    assert [r["seq"] for r in rows] == list(range(1, app.recorder.max_notification_id() + 1))
    actions = [r["action"] for r in rows if r["subject"]["id"] == deliverable_id]
    assert actions[:3] == ["deliverable.submitted", "deliverable.stage.opened", "deliverable.decision.changes_requested"]
    assert "deliverable.revision.submitted" in actions and actions.count("deliverable.decision.approved") == 2
    decision = next(r for r in rows if r["action"] == "deliverable.decision.changes_requested")
    assert (decision["actor"], decision["reason"], decision["revision"]) == ("bob", "see notes", 1)
    assert decision["correlation"] == {"workflow_id": f"deliverable-{deliverable_id}",
                                       "update_id": str(uuid.UUID(int=1)),
                                       "command_id": f"deliverable-{deliverable_id}:update:{uuid.UUID(int=1)}"}
    assert decision["subject"] == {"kind": "deliverable", "id": deliverable_id, "title": "Homepage mockups"}
    later = [r for r in rows if r["action"] == "deliverable.decision.approved"]
    assert {r["revision"] for r in later} == {2}
    policy = next(r for r in rows if r["action"] == "policy.published")
    assert policy["project_id"] is None and policy["subject"]["title"] == "standard-review"
    charter = rows[-1]
    assert (charter["action"], charter["reason"], charter["project_id"]) == ("project.charter.changed", "dan joins",
                                                                              project_id)
    assert all(r["prev_hash"] == p["hash"] for p, r in zip(rows, rows[1:]))
    report = verify_store(app, projector.view, key.public)
    assert report.ok and report.checkpoints_verified == report.checkpoints >= 2, report.to_json()


def test_a_rebuilt_view_equals_the_live_one_row_for_row(trail: Any) -> None:
    app, projector, key, *_ = trail
    live = all_rows(projector)
    assert projector.rebuild() == len(live)
    assert all_rows(projector) == live
    assert verify_store(app, projector.view, key.public).ok  # the checkpoints signed before still hold


def test_an_edited_event_is_named_by_its_seq(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    table = events_table(store_url)
    # Bob's request for changes (the sixth event) rewritten as mallory's.
    if store_url.startswith("sqlite"):
        execute(store_url, f"UPDATE {table} SET state = CAST(REPLACE(CAST(state AS TEXT), 'bob', 'mallory') AS BLOB)"
                " WHERE rowid = 6")
    else:
        execute(store_url, f"UPDATE {table} SET state = convert_to(replace(convert_from(state, 'UTF8'), 'bob', "
                "'mallory'), 'UTF8') WHERE notification_id = 6")
    report = verify_store(open_application(store_url), projector.view, key.public)
    assert not report.ok and report.first_broken is not None and report.first_broken.seq == 6, report.to_json()
    assert "edited" in report.first_broken.why


def test_a_deleted_event_is_named_by_its_seq(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    execute(store_url, f"DELETE FROM {events_table(store_url)} WHERE {id_column(store_url)} = 5")
    report = verify_store(open_application(store_url), projector.view, key.public)
    assert report.first_broken is not None and report.first_broken.seq == 5, report.to_json()
    assert "gone" in report.first_broken.why


def test_reordered_events_are_named_by_the_first_seq_moved(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    table, column = events_table(store_url), id_column(store_url)
    # Swap the log positions of events 6 and 7 (two decisions' rows trade places).
    execute(store_url, f"UPDATE {table} SET {column} = -1 WHERE {column} = 6")
    execute(store_url, f"UPDATE {table} SET {column} = 6 WHERE {column} = 7")
    execute(store_url, f"UPDATE {table} SET {column} = 7 WHERE {column} = -1")
    report = verify_store(open_application(store_url), projector.view, key.public)
    assert report.first_broken is not None and report.first_broken.seq == 6, report.to_json()


def test_a_tail_cut_from_the_store_and_the_view_is_caught_by_the_checkpoint(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    last = app.recorder.max_notification_id()
    signed = projector.view.checkpoints()[-1]["seq"]
    assert signed == last  # the projector signed the head when it had caught up
    # The intruder removes the newest three events and their audit rows, and rewinds the position.
    execute(store_url, f"DELETE FROM {events_table(store_url)} WHERE {id_column(store_url)} > ?", last - 3)
    audit_execute(store_url, "DELETE FROM signoff_audit WHERE seq > ?", last - 3)
    report = verify_store(open_application(store_url), projector.view, key.public)
    assert report.first_broken is not None and report.first_broken.seq == last - 2, report.to_json()
    assert "deleted" in report.first_broken.why


def test_a_tail_cut_from_the_store_alone_is_caught_by_the_view(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    last = app.recorder.max_notification_id()
    execute(store_url, f"DELETE FROM {events_table(store_url)} WHERE {id_column(store_url)} = ?", last)
    report = verify_store(open_application(store_url), projector.view, key.public)
    assert report.first_broken is not None and report.first_broken.seq == last, report.to_json()


def test_an_edited_audit_row_is_caught_too(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    audit_execute(store_url, "UPDATE signoff_audit SET body = REPLACE(body, '\"bob\"', '\"mallory\"') WHERE seq = 6")
    report = verify_store(app, projector.view, key.public)
    assert report.first_broken is not None and report.first_broken.seq == 6, report.to_json()


def test_a_member_sees_only_rows_of_their_projects(trail: Any, store_url: str) -> None:
    app, projector, key, project_id, _ = trail
    other = app.create_project("Contoso intranet", [{"user": "yuki", "roles": ["pm"]}], [], [], "yuki")
    projector.catch_up()
    mine = [json.loads(r) for _, r in projector.view.stream(AuditFilter(), Scope((str(other.id),)), True)]
    assert [r["action"] for r in mine] == ["project.created"]
    for where in (AuditFilter(project_id=project_id), AuditFilter(actor="bob"), AuditFilter(action="policy"),
                  AuditFilter(subject_kind="policy")):
        assert list(projector.view.stream(where, Scope((str(other.id),)), True)) == []


def events_table(store_url: str) -> str:
    return "stored_events" if store_url.startswith("sqlite") else "signoff_events"


def id_column(store_url: str) -> str:
    return "rowid" if store_url.startswith("sqlite") else "notification_id"


def audit_execute(store_url: str, statement: str, *params: Any) -> None:
    env = store_env(store_url)
    if env["PERSISTENCE_MODULE"].startswith("store.postgres"):
        execute(store_url, statement, *params)
        return
    path = Path(env["SQLITE_DBNAME"]).with_suffix(".audit.sqlite")
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)


def test_the_fast_read_of_stored_events_gives_what_the_mapper_gives(trail: Any) -> None:
    from store.event_facts import facts_of, facts_of_event

    app, *_ = trail
    notifications = app.recorder.select_notifications(start=None, limit=1000, inclusive_of_start=True)
    assert notifications
    for n in notifications:
        assert facts_of(app, n) == facts_of_event(n.id, app.mapper.to_domain_event(n))


def test_delivery_rows_only_where_the_member_may_read_deliveries(trail: Any) -> None:
    app, projector, key, project_id, _ = trail
    message = {"key": "k1", "type": "deliverable.approved", "timestamp": "2026-11-02T09:30:00+00:00",
               "recipients": ["alice"], "body": {"data": {"subject": {"title": "Homepage mockups"}}}}
    app.open_delivery(uuid.uuid4(), project_id, "w1", "https://hooks.example/secret-path", message)
    projector.catch_up()
    kinds = {json.loads(r)["subject"]["kind"] for _, r in projector.view.stream(AuditFilter(), Scope((project_id,)),
                                                                                   True)}
    assert "delivery" not in kinds and "deliverable" in kinds
    rows = [json.loads(r) for _, r in projector.view.stream(AuditFilter(subject_kind="delivery"),
                                                            Scope((project_id,), (project_id,)), True)]
    assert [r["action"] for r in rows] == ["delivery.started"]
    assert rows[0]["details"]["url"] == "https://hooks.example/…"


def test_checkpoints_deleted_to_hide_a_rebuilt_edit_are_caught(trail: Any, store_url: str) -> None:
    app, projector, key, *_ = trail
    execute(store_url, f"UPDATE {events_table(store_url)} SET state = "
            + ("CAST(REPLACE(CAST(state AS TEXT), 'bob', 'mallory') AS BLOB) WHERE rowid = 6"
               if store_url.startswith("sqlite") else
               "convert_to(replace(convert_from(state, 'UTF8'), 'bob', 'mallory'), 'UTF8') WHERE notification_id = 6"))
    # A rebuild refuses to make rows that disagree with what was signed, and writes none of them.
    with pytest.raises(CheckpointBroken):
        Projector(app, projector.view, key, checkpoint_rows=4).rebuild()
    # The intruder deletes the checkpoints after the edit too, and rebuilds: the gap gives it away.
    audit_execute(store_url, "DELETE FROM signoff_audit_checkpoints WHERE seq >= 6")
    Projector(app, projector.view, None, checkpoint_rows=4).rebuild()
    report = verify_store(open_application(store_url), projector.view, key.public, every=4)
    assert not report.ok and report.first_broken is not None and report.first_broken.seq == 5, report.to_json()
    assert "checkpoints were deleted" in report.first_broken.why


@pytest.mark.parametrize("member_of", [3, 10])  # a branch per project, and a walk of the trail past eight
def test_a_scoped_read_is_exactly_the_rows_the_scope_allows(trail: Any, member_of: int) -> None:
    app, projector, key, *_ = trail
    projects = [str(app.create_project(f"Client {i}", [{"user": "yuki", "roles": ["pm"]}], [], [], "paula").id)
                for i in range(12)]
    message = {"key": "k", "type": "deliverable.approved", "timestamp": "2026-11-02T09:30:00+00:00",
               "recipients": [], "body": {"data": {"subject": {"title": "t"}}}}
    for project in projects:
        app.change_project(project, "paula", "more people", members=[{"user": "yuki", "roles": ["pm"]},
                                                                     {"user": "zoe", "roles": ["eng"]}])
        app.open_delivery(uuid.uuid4(), project, "w1", "https://hooks.example/x", message)
    projector.catch_up()
    scope = Scope(tuple(projects[:member_of]), (projects[0],))
    everything = [json.loads(body) for _, body in projector.view.stream(AuditFilter(), None, True)]
    allowed = [r["seq"] for r in everything if (r["project_id"] in scope.projects and (
        r["subject"]["kind"] != "delivery" or r["project_id"] in scope.deliveries_of))]
    assert [seq for seq, _ in projector.view.stream(AuditFilter(), scope, True)] == allowed
    newest = [seq for seq, _ in projector.view.page(AuditFilter(), scope, None, 7, False)]
    assert newest == sorted(allowed, reverse=True)[:7]
    assert [seq for seq, _ in projector.view.page(AuditFilter(project_id=projects[-1]), scope, None, 7, False)] == []
