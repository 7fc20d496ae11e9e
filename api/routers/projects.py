import asyncio

from fastapi import APIRouter, status

from api.contract import problems
from api.deps import CurrentUser, Svc, require_pmo_or_admin, visible_project
from api.models import ProjectCreate, ProjectPublic
from domain.project import Project
from store.views import project_summary

router = APIRouter(prefix="/api/projects", tags=["projects"], responses=problems(401, 503))


def public(project: Project) -> ProjectPublic:
    return ProjectPublic(**project_summary(project))  # the same shape the list shows


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProjectPublic,
             responses=problems(403, 413, 422))
async def create_project(body: ProjectCreate, user: CurrentUser, services: Svc) -> ProjectPublic:
    """Create a project with its members, their project roles and its escalation path (pmo or admin)."""
    require_pmo_or_admin(user)
    data = body.model_dump()
    project = await asyncio.to_thread(services.store.create_project, data["name"], data["members"],
                                      data["escalation_path"], data["phases"], user.user)
    return public(project)


@router.get("", response_model=list[ProjectPublic])
async def list_projects(user: CurrentUser, services: Svc) -> list[ProjectPublic]:
    """The projects the caller is a member of (all of them for pmo and admin)."""
    rows = await asyncio.to_thread(services.views.projects_of, user.user, user.is_pmo_or_admin)
    return [ProjectPublic(**row) for row in rows]


@router.get("/{project_id}", response_model=ProjectPublic, responses=problems(404))
async def get_project(project_id: str, user: CurrentUser, services: Svc) -> ProjectPublic:
    """One project, if the caller may see it."""
    return public(await asyncio.to_thread(visible_project, services, user, project_id))

