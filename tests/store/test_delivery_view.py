"""The webhook deliveries view, on the real SQLite file and PostgreSQL server: a project's
deliveries newest change first, the status filter, and a view built before the deliveries table
fills it from the log once."""

import uuid
from datetime import UTC, datetime

from domain.notifications import Message
from store.events import open_application
from store.views import DELIVERIES_FILLED, ReadModel
from tests.builders import make_project


def message(project_id: str) -> dict:
    now = datetime.now(UTC)
    return Message(key=f"{uuid.uuid4()}:1", type="review.requested", timestamp=now, project_id=project_id,
                   recipients=["bob"], body={"type": "review.requested", "timestamp": now.isoformat(),
                                             "data": {"subject": {"kind": "deliverable", "id": "d", "title": "T",
                                                                  "url": "http://x/d"}},
                                             "text": "T: your review is requested"}).model_dump(mode="json")


def test_deliveries_by_project_and_status_and_a_view_from_before_the_table(store_url):
    app = open_application(store_url)
    project, other = make_project(app), make_project(app)
    failed, delivered, elsewhere = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for uid, project_id in ((failed, project), (delivered, project), (elsewhere, other)):
        app.open_delivery(uid, project_id, "w1", "https://hooks.example/a", message(project_id))
    app.record_delivery_outcome(failed, 1, "failed", 3, 500, "the receiver answered 500")
    app.record_delivery_outcome(delivered, 1, "delivered", 1, 200)
    views = ReadModel(app, store_url)

    def ids(project_id: str, status: str | None = None) -> list[str]:
        return [d["id"] for d in views.deliveries(project_id, status)]

    assert ids(project) == [str(delivered), str(failed)]  # newest change first
    assert ids(project, "failed") == [str(failed)] and ids(project, "pending") == []
    assert ids(other) == [str(elsewhere)] and ids(other, "pending") == [str(elsewhere)]
    assert views.deliveries(project, "failed")[0] == app.get_delivery(failed)
    with views._transaction() as cur:  # a view from before the deliveries table: caught up, table empty
        cur.execute("DELETE FROM signoff_view_deliveries")
        cur.execute(views._sql("DELETE FROM signoff_view_position WHERE name = ?"), (DELIVERIES_FILLED,))
    assert ids(project) == []
    ReadModel(app, store_url)  # a new process: fills the table from the log once
    assert ids(project) == [str(delivered), str(failed)]
    app.close()
