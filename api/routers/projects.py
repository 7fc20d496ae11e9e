import asyncio
import functools
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from api.as_of import AsOf
from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, require_pmo_or_admin, visible_project
from api.history import Order, history_page
from api.models import (
    ProjectChanged,
    ProjectCreate,
    ProjectHistoryEntry,
    ProjectPublic,
    ProjectUpdate,
    WebhookIn,
    WebhookSecret,
)
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, ascending, paginate
from api.timeline_models import ProjectSnapshot
from domain.errors import Invalid
from domain.project import Project
from domain.webhooks import check_url, derive_secret, masked
from store.views import project_summary
from workflows.delivery_activities import resolve

# How long a webhook url's host may take to resolve before the url is refused.
RESOLVE_SECONDS = 5.0

NO_STORE = {"Cache-Control": "no-store"}
# Host lookups for webhook urls wait in threads of their own: a lookup that hangs past its timeout
# keeps one of these, never one of the threads every route's store reads use.
RESOLVERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")
router = APIRouter(prefix="/api/projects", tags=["projects"], responses=problems(401, 503))


def public(project: Project, user: Principal | None = None) -> ProjectPublic:
    return ProjectPublic(**shown_to(project_summary(project), user))  # the same shape the list shows


def shown_to(summary: dict[str, Any], user: Principal | None) -> dict[str, Any]:
    """The project as `user` may see it: a webhook's url is often its credential (a Slack incoming
    webhook posts to the channel for whoever holds it), so only pmo, admin and the project's pmo see
    it whole; other members see its scheme and host."""
    if user is None or user.is_pmo_or_admin or any(
            m["user"] == user.user and "pmo" in m.get("roles", []) for m in summary["members"]):
        return summary
    return {**summary, "webhooks": [{**w, "url": masked(w["url"])} for w in summary.get("webhooks", [])]}


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
    rows = [shown_to(row, user) for row in rows]
    return paginate(rows, limit, cursor, lambda p: [p["created_at"], p["id"]], ascending, "projects")


@router.get("/{project_id}", response_model=ProjectPublic, responses=problems(404, 422))
async def get_project(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})], user: CurrentUser,
                      services: Svc, as_of: AsOf = None) -> ProjectPublic:
    """One project, if the caller may see it: now, or as it stood at `as_of` (with a time zone; before it
    was created is a 404). Who may see it, and whether webhook urls show whole, is decided by the
    project as it is now: a former member reads none of its past."""
    project = await asyncio.to_thread(visible_project, services, user, project_id)
    if as_of is None:
        return public(project, user)
    then = await asyncio.to_thread(services.store.project_as_of, project.id, as_of)
    return _public_then(then, project, user)


def _public_then(then: Project, now: Project, user: Principal) -> ProjectPublic:
    """The project as it stood then, its webhook urls shown as `user` may see them now."""
    summary = project_summary(then)
    if not (user.is_pmo_or_admin or "pmo" in now.roles_of(user.user)):  # as `shown_to`, on today's members
        summary = {**summary, "webhooks": [{**w, "url": masked(w["url"])} for w in summary["webhooks"]]}
    return ProjectPublic(**summary)


@router.get("/{project_id}/snapshot", response_model=ProjectSnapshot, responses=problems(404, 422))
async def project_snapshot(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
                           user: CurrentUser, services: Svc, as_of: AsOf = None) -> ProjectSnapshot:
    """The whole project at a moment (`as_of`, with a time zone; none: now): the project, its deliverables
    submitted by then and the dependencies it requested or provides opened by then, each as it stood
    then. Whoever may GET the project may read it (else 404); before the project was created is a 404."""
    project = await asyncio.to_thread(visible_project, services, user, project_id)
    moment = as_of or datetime.now(UTC)
    snapshot = await asyncio.to_thread(_snapshot, services, str(project.id), moment)
    return ProjectSnapshot(as_of=moment, project=_public_then(snapshot["project"], project, user),
                           deliverables=snapshot["deliverables"], dependencies=snapshot["dependencies"])


def _snapshot(services: Services, project_id: str, moment: datetime) -> dict[str, Any]:
    # Which records are the project's comes from the list views (the domain keeps no index); those
    # created after the moment are left out here already, so only the rest are read from the store.
    deliverables = [d["id"] for d in services.views.deliverables([project_id])
                    if datetime.fromisoformat(d["created_at"]) <= moment]
    dependencies = [d["id"] for d in services.views.dependencies([project_id])
                    if datetime.fromisoformat(d["created_at"]) <= moment]
    return services.store.project_snapshot(project_id, moment, deliverables, dependencies)


@router.get("/{project_id}/history", response_model=Page[ProjectHistoryEntry], responses=problems(404, 422))
async def project_history(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})], user: CurrentUser,
                          services: Svc, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                          order: Order = "asc") -> dict[str, Any]:
    """Every recorded event of the project, oldest first (`order=desc`: newest first): its creation, each
    charter change with who made it and why, and each webhook added, changed, removed or given a new
    secret (never the secret). Who may see the project may read it (else 404). A webhook's url shows
    whole only to pmo, admin and the project's pmo, as in GET. These come from HTTP requests, so
    `correlation` names no workflow (a webhook removed because its receiver answered 410 included)."""
    project = await asyncio.to_thread(visible_project, services, user, project_id)
    entries = await asyncio.to_thread(services.store.project_history, project.id)
    if not (user.is_pmo_or_admin or "pmo" in project.roles_of(user.user)):
        entries = [{**e, "url": masked(e["url"])} if e.get("url") else e for e in entries]
    return history_page(entries, limit, cursor, order, f"history:{project.id}")


@router.patch("/{project_id}", response_model=ProjectChanged, responses=problems(403, 404, 409, 413, 422))
async def update_project(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})], body: ProjectUpdate,
                         user: CurrentUser, services: Svc, response: Response) -> ProjectChanged:
    """Change the project's charter (pmo or admin): replace its `members`, `escalation_path` or
    `phases` or `calendar` or `webhooks`, saying why. The change is recorded with who made it and why; a change that
    changes nothing records nothing and answers the project as it is.

    `webhooks` lists the project's webhooks from now on: one given with its `id` is kept (its url and
    events changed to those given), one without an `id` is added, one left out is removed. The answer
    shows each webhook added by this change with its `secret` (`whsec_…`): this once, never again (a
    lost secret is replaced by rotate-secret).

    Chains already running keep the approvers they resolved when their stage opened; stages opened
    later, reassignments and escalations use the new members. Someone no longer a member no longer
    sees the project or its deliverables (404), so can no longer decide.

    Rules the schema cannot say: each member is listed once (else 422); a webhook's url is https to a
    host that resolves to public addresses only, or http to 127.0.0.1/localhost where local webhooks are
    on (else 422 at body.webhooks.N.url); an `id` the project has no webhook under, or one listed twice, is a 422."""
    require_pmo_or_admin(user)
    known = await asyncio.to_thread(visible_project, services, user, project_id)
    parts = body.model_dump(exclude={"reason", "calendar", "webhooks"})
    parts["calendar"] = body.calendar.model_dump(mode="json") if body.calendar else None
    wanted = None
    if body.webhooks is not None:
        await _check_urls(services, body.webhooks, known)
        wanted = [{"url": w.url, "events": sorted(set(w.events)) if w.events is not None else None,
                   **({"id": w.id} if w.id else {})} for w in body.webhooks]
    project, added = await asyncio.to_thread(services.store.change_project_and_webhooks, project_id, user.user,
                                             body.reason, wanted, uuid.uuid4, **parts)
    changed = project_summary(project)
    response.headers.update(NO_STORE)  # it may hold a secret: no cache keeps a copy
    key = services.settings.webhook_key.encode()
    for webhook in changed["webhooks"]:
        if webhook["id"] in added:  # shown this once; generation 1 is the one a new webhook starts with
            webhook["secret"] = derive_secret(key, webhook["id"], 1)
    return ProjectChanged(**changed)


async def _check_urls(services: Services, webhooks: list[WebhookIn], known: Project) -> None:
    """422 naming body.webhooks.N.url for the first url that may not receive webhooks. A webhook kept with
    the url it has was checked when it was set (and each delivery attempt checks it again)."""
    allow_local = services.settings.allow_local_webhooks
    for index, webhook in enumerate(webhooks):
        held = known.webhooks.get(webhook.id or "")
        if held is not None and held["url"] == webhook.url:
            continue
        where = ("webhooks", index, "url")
        try:
            check = functools.partial(check_url, webhook.url, allow_local, resolve, where)
            await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(RESOLVERS, check), RESOLVE_SECONDS)
        except TimeoutError:
            raise Invalid(f"webhook url {webhook.url!r}: its host did not resolve within {RESOLVE_SECONDS:g} s",
                          where) from None


@router.post("/{project_id}/webhooks/{webhook_id}/rotate-secret", response_model=WebhookSecret,
             responses=problems(403, 404, 409, 422))
async def rotate_webhook_secret(project_id: Annotated[str, Path(json_schema_extra={"format": "uuid"})],
                                webhook_id: Annotated[str, Path(max_length=64)], user: CurrentUser,
                                services: Svc, response: Response) -> WebhookSecret:
    """A new secret for the webhook (pmo or admin), shown in this answer only. The old secret stops
    signing at once: deliveries from now on, retries of earlier ones included, are signed with the new one."""
    require_pmo_or_admin(user)
    await asyncio.to_thread(visible_project, services, user, project_id)
    project, generation = await asyncio.to_thread(services.store.rotate_webhook_secret, project_id, webhook_id,
                                                  user.user)
    webhook = project.webhooks[webhook_id]
    response.headers.update(NO_STORE)
    return WebhookSecret(id=webhook_id, url=webhook["url"], events=webhook["events"],
                         secret=derive_secret(services.settings.webhook_key.encode(), webhook_id, generation))
