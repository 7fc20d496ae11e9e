"""`signoff retro PROJECT [--since --until] --out report.html`: the project's retrospective as one
self-contained HTML file, computed from the audit trail next to the store, as the API computes it."""

import sys
from datetime import UTC, datetime
from pathlib import Path

from api.retro_rows import RowCache
from config.settings import Settings
from domain.retrospective import fold, retrospective
from store.audit_view import open_audit_view
from store.events import open_application
from store.views import ReadModel
from workers.projector import wait_for_view
from workers.retro_report import render


def find_project(views: ReadModel, wanted: str) -> dict | None:
    """The project whose id, or else whose exact name, is `wanted`."""
    projects = views.projects()
    return next((p for p in projects if p["id"] == wanted), None) or next(
        (p for p in projects if p["name"] == wanted), None)


def write_report(settings: Settings, project_ref: str, since: datetime | None, until: datetime | None,
                 out: Path) -> int:
    url = settings.event_store_url()
    app = open_application(url)
    try:
        project = find_project(ReadModel(app, url), project_ref)
        if project is None:
            print(f"signoff retro: no project {project_ref!r} (give its id or its exact name)", file=sys.stderr)
            return 2
        view = open_audit_view(url)
        if not wait_for_view(app, view, settings.audit_wait_seconds):
            print("signoff retro: the projector is behind the event store (is `signoff projector` running?)",
                  file=sys.stderr)
            return 1
        now = datetime.now(UTC)
        stop = (until or now).timestamp()
        start = since.timestamp() if since else None
        cases = RowCache(view).cases(project["id"], start, stop)
        figures = retrospective(cases, start, stop)
        chains = [fold(c) for c in cases if c.kind == "deliverable"]
        out.write_text(render(project, figures, chains, now), encoding="utf-8")
    finally:
        app.close()
    print(f"wrote {out}: {figures['deliverables']['submitted']} deliverables, "
          f"{figures['escalations']['total']} escalations", file=sys.stderr)
    return 0
