"""Dependencies: what one project owes another (or itself), watched until resolved or cancelled.

Every command is checked against the event store before it reaches the dependency's watch, so a
refusal records nothing in the store and leaves no event in Temporal's history. (Only a change that
lands between that check and the watch taking the command, a re-assignment say, lets the record
refuse it inside the watch: then the update's failure is in the history, and still nothing in the store.)
"""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status
from pydantic import BaseModel

from api.as_of import AsOf
from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, caller_left, visible_project
from api.history import Order, history_page
from api.models import (
    CancelIn,
    DependencyCreate,
    DependencyHistoryEntry,
    ProgressIn,
    ReassignOwnerIn,
    ResolveIn,
)
from api.pagination import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    newest_first,
    paginate,
)
from api.problems import Problem, domain_problem
from api.timeline_models import DependencyTimeline
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    DependencyCommand,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_state import DependencyState, Status
from domain.errors import NotFound, Unavailable
from store.views import sortable_time
from workflows.client import AlreadyExists
from workflows.dependency_client import open_watch, send_to_watch

router = APIRouter(prefix="/api/dependencies", tags=["dependencies"], responses=problems(401, 503))
COMMAND_PROBLEMS = problems(403, 404, 409, 413, 422)
IDEMPOTENCY_NAMESPACE = uuid.UUID("0f8e2b61-3c7d-4e59-a1b4-7d26c9e0f5a3")

# What the path holds: a dependency's id (anything else is simply no such dependency: 404).
DependencyPath = Annotated[str, Path(json_schema_extra={"format": "uuid"},
                                     examples=["7a4e1c9b-2d3f-4b6a-8e51-0c9d7f3a2b64"])]


async def canonical_id(dependency_id: DependencyPath, _: CurrentUser) -> str:
    """One spelling per id (lower case, hyphens), so the workflow id and the store agree."""
    try:
        return str(uuid.UUID(dependency_id))
    except ValueError:
        raise Problem(404, f"no dependency {dependency_id}", "not-found") from None


DependencyId = Annotated[str, Depends(canonical_id)]


def _visible(services: Services, user: Principal, dependency_id: str) -> None:
    """404 alike for a dependency that does not exist and one the caller may not see (a member of
    neither project, and not pmo or admin)."""
    try:
        parties = services.store.dependency_parties(dependency_id, user.roles)
    except NotFound:
        raise Problem(404, f"no dependency {dependency_id}", "not-found") from None
    if not parties.sees(user.user):
        raise Problem(404, f"no dependency {dependency_id}", "not-found")


async def _send(services: Services, request: Request, user: Principal, dependency_id: str,
                command_type: type[DependencyCommand], body: BaseModel | None) -> Response:
    """Build the command from the body and the token, check it against the record (a refusal records
    nothing anywhere), send it to the watch, and answer the dependency as recorded."""
    await asyncio.to_thread(_visible, services, user, dependency_id)
    command = command_type(actor=user.user, actor_roles=tuple(sorted(user.roles)), dependency_id=dependency_id,
                           expires_at=services.record_by(request), **(body.model_dump() if body else {}))
    await asyncio.to_thread(services.store.check_dependency_change, command)
    await send_to_watch(services.temporal, command, services.command_deadline(request),  # type: ignore[arg-type]
                        caller_left(request))
    return await _recorded(services, dependency_id)


async def _recorded(services: Services, dependency_id: str) -> Response:
    # The watch answers once the command is in the event store; the full state is read from there.
    state = await asyncio.to_thread(services.store.get_dependency, dependency_id)
    return Response(state.model_dump_json(), media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DependencyState, responses={
    201: {"description": "Opened (or, with the same Idempotency-Key, opened before)",
          "headers": {"Location": {"description": "The dependency's URL", "schema": {"type": "string"}}}},
    **problems(403, 404, 409, 413, 422)})
async def open_dependency(body: DependencyCreate, user: CurrentUser, services: Svc, request: Request,
                          response: Response,
                          idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> Any:
    """Open a dependency of the requesting project on the providing one (or on itself when none is
    named); its watch reminds, stalls, escalates and marks it overdue from now on. The same
    Idempotency-Key from the same user answers the same dependency (201 again, same Location).

    Rules the schema cannot say: the caller is a member of the requesting project, or pmo or admin
    (a project the caller cannot see is a 404); the owner is a member of the providing project (or of
    the requesting one when none is named), or a role somebody there holds (422 at body.owner);
    `needed_by` is in the future (422); `stall_after` is positive and at most a year (422); an unknown
    providing project or a `needed_for` that is not a deliverable of the requesting project is a 422;
    the same key for another dependency is a 409."""
    project = await asyncio.to_thread(visible_project, services, user, body.project_id)
    dependency_id = (str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user.user}\n{idempotency_key}"))
                     if idempotency_key else str(uuid.uuid4()))
    response.headers["Location"] = f"/api/dependencies/{dependency_id}"
    if idempotency_key:
        try:  # a retry answers what the first request made
            return await asyncio.to_thread(_same_request, services, dependency_id, body, str(project.id))
        except NotFound:
            pass
    fields = body.model_dump()
    fields["project_id"] = str(project.id)
    opening = OpenDependency(dependency_id=dependency_id, actor=user.user, actor_roles=tuple(sorted(user.roles)),
                             expires_at=services.record_by(request), **fields)
    # Before the watch starts, so a refusal leaves no trace in Temporal or in the store.
    await asyncio.to_thread(services.store.check_dependency_opening, opening)
    try:
        await open_watch(services.temporal, services.settings.task_queue, opening,
                         services.command_deadline(request), caller_left(request))
    except AlreadyExists:
        pass  # its watch has ended already: the record read below answers
    except Unavailable as exc:
        advice = ("repeat the request with the same Idempotency-Key: a repeat never makes a second dependency"
                  if idempotency_key else
                  f"GET /api/dependencies/{dependency_id} in a few seconds tells whether it was recorded; "
                  "a repeat without an Idempotency-Key makes a new dependency")
        problem = domain_problem(exc)
        raise Problem(503, f"{problem.detail}; {advice}", problem.type, problem.headers, id=dependency_id) from None
    if idempotency_key:
        return await asyncio.to_thread(_same_request, services, dependency_id, body, str(project.id))
    return await asyncio.to_thread(services.store.get_dependency, dependency_id)


def _same_request(services: Services, dependency_id: str, body: DependencyCreate, project_id: str) -> DependencyState:
    """The dependency the key opened, if `body` asks for what it was opened with; else 409."""
    state = services.store.get_dependency(dependency_id)
    opened = services.store.dependency_history(dependency_id)[0]
    asked = body.model_dump(mode="json", exclude={"project_id", "needed_by"})
    held = {"title": opened.get("title"), "description": opened.get("description"), "owner": opened.get("owner"),
            "providing_project_id": state.providing_project_id, "needed_for": state.needed_for,
            "stall_after": opened.get("stall_after"), "remind_before": opened.get("remind_before"),
            "escalation": opened.get("escalation") if body.escalation is not None else None}
    same = (asked == held and project_id == state.project_id
            and datetime.fromisoformat(opened["needed_by"]) == body.needed_by)
    if not same:
        raise Problem(409, "this Idempotency-Key was used for a different dependency", "idempotency-key-reused")
    return state


@router.get("", response_model=Page[DependencyState], responses=problems(404, 422))
async def list_dependencies(user: CurrentUser, services: Svc, project_id: str | None = None,
                            status: Status | None = None, stalled: bool | None = None, overdue: bool | None = None,
                            limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
    """Dependencies the caller may see, newest change first: those a project of theirs requested or
    provides (every one for pmo and admin). `project_id` keeps those of that project, on either side
    (a project the caller cannot see is a 404)."""
    if project_id:
        project = await asyncio.to_thread(visible_project, services, user, project_id)
        project_ids = [str(project.id)]
    else:
        projects = await asyncio.to_thread(services.views.projects_of, user.user, user.is_pmo_or_admin)
        project_ids = [p["id"] for p in projects]
    rows = await asyncio.to_thread(services.views.dependencies, project_ids, status, stalled, overdue)
    return paginate(rows, limit, cursor, lambda d: [sortable_time(d["updated_at"]), d["id"]], newest_first,
                    "dependencies")


@router.get("/{dependency_id}", response_model=DependencyState, responses=problems(404, 422))
async def get_dependency(dependency_id: DependencyId, user: CurrentUser, services: Svc,
                         as_of: AsOf = None) -> Any:
    """The dependency as recorded in the event store, now or as it stood at `as_of` (with a time zone;
    before it was opened is a 404)."""
    await asyncio.to_thread(_visible, services, user, dependency_id)
    return await asyncio.to_thread(services.store.get_dependency, dependency_id, as_of)


@router.get("/{dependency_id}/timeline", response_model=DependencyTimeline, responses=problems(404))
async def dependency_timeline(dependency_id: DependencyId, user: CurrentUser, services: Svc) -> dict[str, Any]:
    """The dependency's whole life, from its opening to now or its resolution or cancellation: `intervals`
    of one state each (status, stalled and how far it escalated, overdue, its owner, whom it waited on),
    each starting where the last ended, and `points` where something happened (acknowledgement,
    progress, reminders, stalls, escalations...). Whoever may GET the dependency may read it (else 404)."""
    await asyncio.to_thread(_visible, services, user, dependency_id)
    return await asyncio.to_thread(services.store.dependency_timeline, dependency_id, datetime.now(UTC))


@router.get("/{dependency_id}/history", response_model=Page[DependencyHistoryEntry], responses=problems(404, 422))
async def dependency_history(dependency_id: DependencyId, user: CurrentUser, services: Svc,
                             limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                             order: Order = "asc") -> dict[str, Any]:
    """Every recorded event of the dependency, oldest first (`order=desc`: newest first): its opening, the
    owner's actions, and each reminder, stall, escalation and overdue with the due time it fell due at.
    Each names its `correlation`: the watch's workflow, and the Update that carried an owner's action
    (null for a deadline or the opening)."""
    await asyncio.to_thread(_visible, services, user, dependency_id)
    entries = await asyncio.to_thread(services.store.dependency_history, dependency_id)
    return history_page(entries, limit, cursor, order, f"history:{dependency_id}")


@router.post("/{dependency_id}/acknowledge", response_model=DependencyState, responses=COMMAND_PROBLEMS)
async def acknowledge_dependency(dependency_id: DependencyId, user: CurrentUser, services: Svc,
                                 request: Request) -> Response:
    """The owner takes the dependency up: it is `in_progress`, and its stall clock starts again.

    Only the owner (the user, or anyone holding the owner role in the owner's project): 403; once
    only (409); a resolved or cancelled dependency is a 409."""
    return await _send(services, request, user, dependency_id, Acknowledge, None)


@router.post("/{dependency_id}/progress", response_model=DependencyState, responses=COMMAND_PROBLEMS)
async def report_progress(dependency_id: DependencyId, body: ProgressIn, user: CurrentUser, services: Svc,
                          request: Request) -> Response:
    """The owner reports progress: the stall clock starts again, `stalled` clears and the escalation
    starts over. Only the owner (403); a resolved or cancelled dependency is a 409."""
    return await _send(services, request, user, dependency_id, ReportProgress, body)


@router.post("/{dependency_id}/resolve", response_model=DependencyState, responses=COMMAND_PROBLEMS)
async def resolve_dependency(dependency_id: DependencyId, user: CurrentUser, services: Svc, request: Request,
                             body: ResolveIn | None = None) -> Response:
    """The owner delivers: the dependency is `resolved` and its watch ends. The owner, or someone an
    escalation step's `grant` named (403 for anyone else); a resolved or cancelled dependency is a 409."""
    return await _send(services, request, user, dependency_id, Resolve, body or ResolveIn())


@router.post("/{dependency_id}/cancel", response_model=DependencyState, responses=COMMAND_PROBLEMS)
async def cancel_dependency(dependency_id: DependencyId, body: CancelIn, user: CurrentUser, services: Svc,
                            request: Request) -> Response:
    """The dependency is no longer needed: `cancelled`, and its watch ends. The requester, pmo or
    admin (or the requesting project's pmo): else 403; a resolved or cancelled dependency is a 409."""
    return await _send(services, request, user, dependency_id, Cancel, body)


@router.post("/{dependency_id}/reassign", response_model=DependencyState, responses=COMMAND_PROBLEMS)
async def reassign_owner(dependency_id: DependencyId, body: ReassignOwnerIn, user: CurrentUser, services: Svc,
                         request: Request) -> Response:
    """Give the dependency another owner. pmo or admin (or the requesting project's pmo), or someone an
    escalation step's `grant` named: else 403. The new owner is a member, or a role somebody holds, of
    the owner's project (422 at body.owner); the same owner again is a 409, and so is a resolved or
    cancelled dependency."""
    return await _send(services, request, user, dependency_id, ReassignOwner, body)
