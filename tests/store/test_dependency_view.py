"""The dependency list view, on the real SQLite file and PostgreSQL server: both projects see a
dependency, the filters, and a view built before the dependency table fills it from the log once."""

import uuid
from datetime import UTC, datetime, timedelta

from domain.dependency_commands import Cancel, OpenDependency
from store.events import open_application
from store.views import DEPENDENCIES_FILLED, ReadModel
from tests.builders import MEMBERS, make_project


def opening(project_id: str, providing: str | None, owner: dict[str, str]) -> OpenDependency:
    return OpenDependency(dependency_id=str(uuid.uuid4()), actor="alice", project_id=project_id,
                          providing_project_id=providing, title="Sandbox credentials", owner=owner,
                          needed_by=datetime.now(UTC) + timedelta(days=30), stall_after="P2D",
                          command_id=str(uuid.uuid4()))


def test_dependencies_by_either_project_and_a_view_from_before_the_table(store_url):
    app = open_application(store_url)
    requesting, unrelated = make_project(app), make_project(app)
    providing = str(app.create_project("Platform", [{"user": "omar", "roles": ["eng"]}, *MEMBERS[:1]], [], [],
                                       "paula").id)
    provided = app.open_dependency(opening(requesting, providing, {"user": "omar"}))
    own = app.open_dependency(opening(requesting, None, {"role": "eng"}))
    app.change_dependency(Cancel(dependency_id=own.id, actor="alice", reason="not needed", command_id="c1"))
    views = ReadModel(app, store_url)

    def ids(project_ids: list[str], **filters: object) -> list[str]:
        return [d["id"] for d in views.dependencies(project_ids, **filters)]

    assert ids([requesting]) == [own.id, provided.id]  # newest change first
    assert ids([providing]) == [provided.id] and ids([unrelated]) == [] and ids([]) == []
    assert ids([requesting], status="cancelled") == [own.id]
    assert ids([requesting], stalled=False, overdue=False, status="open") == [provided.id]
    assert ids([requesting], stalled=True) == [] and ids([requesting], overdue=True) == []
    [(summary, notified)] = views.dependency_rows([providing])
    assert summary == provided.model_dump(mode="json") and notified == []
    with views._transaction() as cur:  # a view from before the dependency table: caught up, table empty
        cur.execute("DELETE FROM signoff_view_dependencies")
        cur.execute(views._sql("DELETE FROM signoff_view_position WHERE name = ?"), (DEPENDENCIES_FILLED,))
    assert ids([requesting]) == []
    ReadModel(app, store_url)  # a new process: fills the table from the log once
    assert ids([requesting]) == [own.id, provided.id]
    app.close()
