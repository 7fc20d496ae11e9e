import asyncio
from typing import Any

from fastapi import APIRouter

from api.contract import problems
from api.deps import CurrentUser, Svc
from api.models import InboxItem
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, newest_first, paginate

router = APIRouter(prefix="/api/inbox", tags=["inbox"], responses=problems(401, 503))


@router.get("", response_model=Page[InboxItem], responses=problems(422))
async def get_inbox(user: CurrentUser, services: Svc, limit: Limit = DEFAULT_LIMIT,
                    cursor: Cursor = None) -> dict[str, Any]:
    """What waits for the caller: stages to decide, escalations they were notified of, revisions to make."""
    mine = [p["id"] for p in await asyncio.to_thread(services.views.projects_of, user.user)]
    items: list[dict[str, Any]] = []
    for d in await asyncio.to_thread(services.views.deliverables, mine):
        if d["status"] == "in_review" and user.user in d["waiting_on"]:
            items.append({"kind": "decision", "deliverable": d})
        elif d["status"] == "in_review" and user.user in d["notified"]:
            items.append({"kind": "escalation", "deliverable": d})
        elif d["status"] == "changes_requested" and d["submitter"] == user.user:
            items.append({"kind": "revision", "deliverable": d})
    return paginate(items, limit, cursor, lambda i: [i["deliverable"]["updated_at"], i["deliverable"]["id"]],
                    newest_first, "inbox")
