"""Which projects use a policy, from the list view, on the real SQLite file and PostgreSQL server."""

import uuid

from domain.commands import SubmitDeliverable
from store.events import open_application
from store.views import ReadModel
from tests.builders import make_policy, make_project, revision


def test_projects_using_a_policy_including_views_built_before_the_table(store_url):
    app = open_application(store_url)
    ours = make_project(app)
    make_project(app)  # a project that uses nothing
    used, unused = make_policy(app), make_policy(app)
    for _ in range(2):
        app.submit_deliverable(SubmitDeliverable(deliverable_id=str(uuid.uuid4()), project_id=ours,
                                                 title="Homepage mockups", actor="alice", policy=used,
                                                 revision=revision(), command_id="c0"))
    views = ReadModel(app, store_url)
    assert [p["id"] for p in views.projects_using_policy(used["name"])] == [ours]
    assert views.projects_using_policy(unused["name"]) == []
    with views._transaction() as cur:  # a view from before the policy-use table: caught up, table empty
        cur.execute("DELETE FROM signoff_view_policy_projects")
    assert views.projects_using_policy(used["name"]) == []
    again = ReadModel(app, store_url)
    assert [p["id"] for p in again.projects_using_policy(used["name"])] == [ours]
    app.close()
