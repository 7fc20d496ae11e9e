import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, status

from api.contract import problems
from api.deps import CurrentUser, Svc, require_pmo_or_admin, visible_project
from api.models import ProjectCreate, ProjectPublic, ProjectUpdate
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, ascending, paginate
from domain.project import Project
from store.views import project_summary

router = APIRouter(prefix="/api/projects", tags=["projects"], responses=problems(401, 503))


def public(project: Project) -> ProjectPublic:
    return ProjectPublic(**project_summary(project))  # the same shape the list shows


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic,
             responses=problems(403, 413, 422))
async def create_project(body: ProjectCreate, user: CurrentUser, services: Svc) -> ProjectPublic:
    """Create a project with its members, their project roles, its escalation path and, optionally, its
    business calendar (pmo or admin).

    Rules the schema cannot say: each member is listed once (else 422)."""
    require_pmo_or_admin(user)
    data = body.model_dump()
    calendar = body.calendar.model_dump(mode="json") if body.calendar else None
    project = await asyncio.to_thread(services.store.create_project, data["name"], data["members"],
                                      data["escalation_path"], data["phases"], user.user, calendar)
    return public(project)


@router.get("", response_model=Page[ProjectPublic], responses=problems(422))
async def list_projects(user: CurrentUser, services: Svc, limit: Limit = DEFAULT_LIMIT,
                        cursor: Cursor = None) -> dict[str, Any]:
    """The projects the caller is a member of (all of them for pmo and admin), oldest first."""
    rows = await asyncio.to_thread(services.views.projects_of, user.user, user.is_pmo_or_admin)
    return paginate(rows, limit, cursor, lambda p: [p["created_at"], p["id"]], ascending, "projects")


@router.get("/{project_id}", response_model=ProjectPublic, responses=problems(404))
async def get_project(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})], user: CurrentUser,
                      services: Svc) -> ProjectPublic:
    """One project, if the caller may see it."""
    return public(await asyncio.to_thread(visible_project, services, user, project_id))



@router.patch("/{project_id}", response_model=ProjectPublic, responses=problems(403, 404, 409, 413, 422))
async def update_project(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})], body: ProjectUpdate,
                         user: CurrentUser, services: Svc) -> ProjectPublic:
    """Change the project's charter (pmo or admin): replace its `members`, `escalation_path` or
    `phases` or `calendar`, saying why. The change is recorded with who made it and why; a change that changes
    nothing records nothing and answers the project as it is.

    Chains already running keep the approvers they resolved when their stage opened; stages opened
    later, reassignments and escalations use the new members. Someone no longer a member no longer
    sees the project or its deliverables (404), so can no longer decide.

    Rules the schema cannot say: each member is listed once (else 422)."""
    require_pmo_or_admin(user)
    await asyncio.to_thread(visible_project, services, user, project_id)
    parts = body.model_dump(exclude={"reason", "calendar"})
    parts["calendar"] = body.calendar.model_dump(mode="json") if body.calendar else None
    project = await asyncio.to_thread(services.store.change_project, project_id, user.user, body.reason, **parts)
    return public(project)
