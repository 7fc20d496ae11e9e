import asyncio
from typing import Any

from fastapi import APIRouter

from api.contract import problems
from api.deps import CurrentUser, Svc
from api.models import InboxItem
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, newest_first, paginate
from store.views import sortable_time

router = APIRouter(prefix="/api/inbox", tags=["inbox"], responses=problems(401, 503))
WAITING = ("open", "in_progress")


@router.get("", response_model=Page[InboxItem], responses=problems(422))
async def get_inbox(user: CurrentUser, services: Svc, limit: Limit = DEFAULT_LIMIT,
                    cursor: Cursor = None) -> dict[str, Any]:
    """What waits for the caller, newest change first: stages to decide, escalations they were notified
    of (of a stalled stage, or of a stalled dependency in its current run of the stall clock), revisions
    to make, and open or in-progress dependencies they own (the owner user, or a holder of the owner
    role in the owner's project)."""
    projects = await asyncio.to_thread(services.views.projects_of, user.user)
    mine = [p["id"] for p in projects]
    items: list[dict[str, Any]] = []
    for d in await asyncio.to_thread(services.views.deliverables, mine):
        if d["status"] == "in_review" and user.user in d["waiting_on"]:
            items.append({"kind": "decision", "deliverable": d})
        elif d["status"] == "in_review" and user.user in d["notified"]:
            items.append({"kind": "escalation", "deliverable": d})
        elif d["status"] == "changes_requested" and d["submitter"] == user.user:
            items.append({"kind": "revision", "deliverable": d})
    # The caller's roles in each of their projects: who holds an owner role.
    my_roles = {p["id"]: {r for m in p["members"] if m["user"] == user.user for r in m["roles"]} for p in projects}
    for state, notified in await asyncio.to_thread(services.views.dependency_rows, mine):
        if state["status"] not in WAITING:
            continue
        owner, owners_project = state["owner"], state["providing_project_id"] or state["project_id"]
        if owner["user"] == user.user or (owner["role"] is not None
                                          and owner["role"] in my_roles.get(owners_project, set())):
            items.append({"kind": "dependency", "dependency": state})
        elif user.user in notified:
            items.append({"kind": "escalation", "dependency": state})
    items.sort(key=lambda i: _subject(i)["id"])
    items.sort(key=lambda i: sortable_time(_subject(i)["updated_at"]), reverse=True)
    return paginate(items, limit, cursor, lambda i: [sortable_time(_subject(i)["updated_at"]), _subject(i)["id"]],
                    newest_first, "inbox")


def _subject(item: dict[str, Any]) -> dict[str, Any]:
    return item.get("deliverable") or item["dependency"]
