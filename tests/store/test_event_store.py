"""The same use cases on the real SQLite file and the real PostgreSQL server."""

from uuid import UUID

import pytest

from domain.commands import Decide, Reassign, SubmitDeliverable
from domain.errors import ConcurrentChange
from store.events import open_application
from store.views import ReadModel
from tests.builders import make_policy, make_project, revision

DID = "6f1c9a34-5d2e-4f7b-9a1c-2b3d4e5f6a7b"


def test_decisions_survive_a_reopen(store_url):
    app = open_application(store_url)
    project_id = make_project(app)
    app.submit_deliverable(SubmitDeliverable(deliverable_id=DID, project_id=project_id, title="Homepage mockups",
                                             actor="alice", policy=make_policy(app), revision=revision(),
                                             command_id="c0"))
    app.change_deliverable(Decide(deliverable_id=DID, actor="bob", verdict="approve", comment="looks right", revision=1,
                                  command_id="c1"))
    app.close()
    reopened = open_application(store_url)
    state = reopened.get_deliverable(DID)
    assert (state.stage.name, [d.actor for d in state.decisions]) == ("engineering", ["bob"])
    assert reopened.change_deliverable(Decide(deliverable_id=DID, actor="bob", verdict="approve", comment="looks right",
                                              revision=1, command_id="c1")).version == state.version
    reopened.close()


def test_concurrent_writers_one_wins(store_url):
    first, second = open_application(store_url), open_application(store_url)
    project_id = make_project(first)
    first.submit_deliverable(SubmitDeliverable(deliverable_id=DID, project_id=project_id, title="Homepage mockups",
                                               actor="alice", policy=make_policy(first), revision=revision(),
                                               command_id="c0"))
    mine, theirs = first.repository.get(UUID(DID)), second.repository.get(UUID(DID))
    members = first.get_project(project_id).members.copy
    mine.handle(Decide(deliverable_id=DID, actor="bob", verdict="approve", revision=1, command_id="c1"), members)
    theirs.handle(Reassign(deliverable_id=DID, actor="paula", approvers=["pete"], reason="bob is away",
                           command_id="c2"), members)
    first.save(mine)
    with pytest.raises(ConcurrentChange):
        second._save(theirs)
    assert [d.actor for d in second.get_deliverable(DID).decisions] == ["bob"]
    first.close()
    second.close()


def test_views_catch_up_once_and_resume(store_url):
    app = open_application(store_url)
    project_id = make_project(app)
    app.submit_deliverable(SubmitDeliverable(deliverable_id=DID, project_id=project_id, title="Homepage mockups",
                                             actor="alice", policy=make_policy(app), revision=revision(),
                                             command_id="c0"))
    views = ReadModel(app, store_url)
    assert views.catch_up() > 0
    assert views.catch_up() == 0
    [row] = views.deliverables([project_id])
    assert (row["status"], row["waiting_on"]) == ("in_review", ["bob"])
    app.change_deliverable(Decide(deliverable_id=DID, actor="bob", verdict="reject", comment="wrong brand colours",
                                  revision=1, command_id="c1"))
    again = ReadModel(app, store_url)  # a new reader resumes from the saved position
    assert again.catch_up() == 2  # DecisionRecorded, Rejected
    assert [r["status"] for r in again.deliverables([project_id], "rejected")] == ["rejected"]
    assert [p["id"] for p in again.projects()] == [project_id]
    app.close()


def test_two_readers_catching_up_at_once_read_every_notification_once(store_url):
    import threading

    app = open_application(store_url)
    project_id = make_project(app)
    policy = make_policy(app)
    ids = [f"6f1c9a34-5d2e-4f7b-9a1c-{i:012d}" for i in range(30)]
    for i, did in enumerate(ids):
        app.submit_deliverable(SubmitDeliverable(deliverable_id=did, project_id=project_id, title=f"Banner {i}",
                                                 actor="alice", policy=policy, revision=revision(f"b{i}"),
                                                 command_id=f"c{i}"))
    readers = [ReadModel(open_application(store_url), store_url) for _ in range(2)]
    counts: list[int] = []
    threads = [threading.Thread(target=lambda r=r: counts.append(r.catch_up())) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == app.recorder.max_notification_id()  # each notification read by exactly one
    assert sorted(r["id"] for r in readers[0].deliverables([project_id])) == sorted(ids)
    for reader in readers:
        reader.app.close()
    app.close()
