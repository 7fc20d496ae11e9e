import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status
from pydantic import BaseModel

from api.as_of import AsOf
from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, caller_left, can_see, visible_project
from api.history import Order, history_page
from api.models import (
    DecisionIn,
    DeliverableCreate,
    DeliverableSummary,
    HistoryEntry,
    ReassignIn,
    RevisionIn,
    WithdrawIn,
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
from api.routers.policies import may_see
from api.timeline_models import DeliverableTimeline
from domain.commands import (
    ChainCommand,
    Decide,
    Reassign,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.deliverable import check_policy_fits
from domain.deliverable_state import DeliverableState, Status
from domain.errors import Invalid, NotFound, Unavailable
from domain.rules import admit
from workflows.client import AlreadyExists, open_chain, send

router = APIRouter(prefix="/api/deliverables", tags=["deliverables"], responses=problems(401, 503))
COMMAND_PROBLEMS = problems(403, 404, 409, 413, 422)
IDEMPOTENCY_NAMESPACE = uuid.UUID("5d3c7a52-8f0e-4a8a-9a57-1f4f3b6a2c10")


# What the path holds: a deliverable's id (anything else is simply no such deliverable: 404).
DeliverablePath = Annotated[str, Path(json_schema_extra={"format": "uuid"},
                                      examples=["3f1c2a9e-8d4b-4c1e-9a37-5b2f0e6d7c18"])]


async def canonical_id(deliverable_id: DeliverablePath, _: CurrentUser) -> str:
    """One spelling per id (lower case, hyphens), so the workflow id and the store agree."""
    try:
        return str(uuid.UUID(deliverable_id))
    except ValueError:
        raise Problem(404, f"no deliverable {deliverable_id}", "not-found") from None


DeliverableId = Annotated[str, Depends(canonical_id)]


def _project_of(services: Services, deliverable_id: str) -> str:
    # A deliverable never moves to another project, so this is safe to remember.
    if deliverable_id not in services.project_of:
        if len(services.project_of) >= 100_000:  # a bound, so a long-lived API never grows without end
            services.project_of.clear()
        services.project_of[deliverable_id] = services.store.get_deliverable(deliverable_id).project_id
    return services.project_of[deliverable_id]


def _visible_deliverable_project(services: Services, user: Principal, deliverable_id: str) -> Any:
    try:
        project_id = _project_of(services, deliverable_id)
    except NotFound:
        raise Problem(404, f"no deliverable {deliverable_id}", "not-found") from None
    project = services.store.get_project(project_id)
    if not can_see(user, project):
        raise Problem(404, f"no deliverable {deliverable_id}", "not-found")
    return project


async def _send(services: Services, request: Request, user: Principal, deliverable_id: str,
                command_type: type[ChainCommand], body: BaseModel) -> Response:
    """Build the command from the body and the token, let the project admit it, send it to the
    chain, and answer the deliverable as recorded."""
    project = await asyncio.to_thread(_visible_deliverable_project, services, user, deliverable_id)
    command = command_type(actor=user.user, deliverable_id=deliverable_id, expires_at=services.record_by(request),
                           **body.model_dump())
    admit(command, project.members, user.roles)

    async def recorded_version() -> int:
        return (await asyncio.to_thread(services.store.chain_view, deliverable_id)).version

    await send(services.temporal, command, services.command_deadline(request), caller_left(request), recorded_version)
    return await _recorded(services, deliverable_id)


async def _recorded(services: Services, deliverable_id: str) -> Response:
    # The workflow answers once the command is in the event store; the full state is read from there.
    # Serialised here, once: the state is already a validated DeliverableState.
    state = await asyncio.to_thread(services.store.get_deliverable, deliverable_id)
    return Response(state.model_dump_json(), media_type="application/json")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeliverableState, responses={
    201: {"description": "Submitted (or, with the same Idempotency-Key, submitted before)",
          "headers": {"Location": {"description": "The deliverable's URL", "schema": {"type": "string"}}}},
    **problems(403, 404, 409, 413, 422)})
async def submit_deliverable(body: DeliverableCreate, user: CurrentUser, services: Svc, request: Request,
                             response: Response,
                             idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> DeliverableState:
    """Submit a deliverable with its first revision; its approval chain starts at the policy's first stage.
    The same Idempotency-Key from the same user answers the same deliverable (201 again, same Location).

    Rules the schema cannot say: the caller is a member of the project (403); the policy fits the
    project: every stage has enough approvers other than the submitter, and approvers named by user id
    are members (422, errors at body.policy); a policy the caller may not read is a 404; the same key
    for another deliverable is a 409."""
    project = await asyncio.to_thread(visible_project, services, user, body.project_id)
    deliverable_id = (str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user.user}\n{idempotency_key}"))
                      if idempotency_key else str(uuid.uuid4()))
    response.headers["Location"] = f"/api/deliverables/{deliverable_id}"
    if idempotency_key:
        try:  # a retry answers what the first request made, even if the policy has changed since
            return _same_request(await asyncio.to_thread(services.store.get_deliverable, deliverable_id),
                                 body, str(project.id))
        except NotFound:
            pass
    if not project.is_member(user.user):
        raise Problem(403, "only members of the project submit deliverables to it", "forbidden")
    policy = await asyncio.to_thread(services.store.get_policy, body.policy)
    # Before anything starts, so a refusal leaves no trace.
    try:
        check_policy_fits(policy, project.members, user.user)
    except Invalid:
        # Why a policy the caller may not read does not fit would tell what it holds: to them it
        # does not exist. One that fits names only people of their own project.
        if not await asyncio.to_thread(may_see, services, user, body.policy, policy):
            raise NotFound(f"no policy {body.policy!r}") from None
        raise
    deadline = services.command_deadline(request)
    submission = SubmitDeliverable(deliverable_id=deliverable_id, actor=user.user, project_id=str(project.id),
                                   title=body.title, policy=policy, revision=body.revision.model_dump(),
                                   expires_at=services.record_by(request))
    try:
        await open_chain(services.temporal, services.settings.task_queue, submission, deadline,
                         caller_left(request))
    except AlreadyExists:
        # Its chain has ended already: the record read below answers.
        pass
    except Unavailable as exc:
        # The id lets the client look before it retries: past the deadline the submission is
        # either recorded under this id or never will be.
        advice = ("repeat the request with the same Idempotency-Key: a repeat never makes a second deliverable"
                  if idempotency_key else
                  f"GET /api/deliverables/{deliverable_id} in a few seconds tells whether it was recorded; "
                  "a repeat without an Idempotency-Key makes a new deliverable")
        problem = domain_problem(exc)
        raise Problem(503, f"{problem.detail}; {advice}", problem.type, problem.headers, id=deliverable_id) from None
    state = await asyncio.to_thread(services.store.get_deliverable, deliverable_id)
    return _same_request(state, body, str(project.id)) if idempotency_key else state


def _same_request(state: DeliverableState, body: DeliverableCreate, project_id: str) -> DeliverableState:
    first = state.revisions[0]
    asked = (project_id, body.policy, body.title, body.revision.uri, body.revision.sha256, body.revision.note)
    if asked != (state.project_id, state.policy.name, state.title, first.uri, first.sha256, first.note):
        raise Problem(409, "this Idempotency-Key was used for a different deliverable", "idempotency-key-reused")
    return state


@router.get("", response_model=Page[DeliverableSummary], responses=problems(404, 422))
async def list_deliverables(user: CurrentUser, services: Svc, project_id: str | None = None,
                            status: Status | None = None, limit: Limit = DEFAULT_LIMIT,
                            cursor: Cursor = None) -> dict[str, Any]:
    """Deliverables of the projects the caller may see, newest change first."""
    if project_id:
        project = await asyncio.to_thread(visible_project, services, user, project_id)
        project_ids = [str(project.id)]
    else:
        projects = await asyncio.to_thread(services.views.projects_of, user.user, user.is_pmo_or_admin)
        project_ids = [p["id"] for p in projects]
    rows = await asyncio.to_thread(services.views.deliverables, project_ids, status)
    return paginate(rows, limit, cursor, lambda d: [d["updated_at"], d["id"]], newest_first, "deliverables")


@router.get("/{deliverable_id}", response_model=DeliverableState, responses=problems(404, 422))
async def get_deliverable(deliverable_id: DeliverableId, user: CurrentUser, services: Svc,
                          as_of: AsOf = None) -> DeliverableState:
    """The deliverable as recorded in the event store, now or as it stood at `as_of` (with a time zone;
    before it was submitted is a 404)."""
    await asyncio.to_thread(_visible_deliverable_project, services, user, deliverable_id)
    return await asyncio.to_thread(services.store.get_deliverable, deliverable_id, as_of)


@router.get("/{deliverable_id}/timeline", response_model=DeliverableTimeline, responses=problems(404))
async def deliverable_timeline(deliverable_id: DeliverableId, user: CurrentUser, services: Svc) -> dict[str, Any]:
    """The deliverable's whole life, from its submission to now or its end: `intervals` of one state each
    (status, open stage, revision, who it waited on), each starting where the last ended, and `points`
    where something happened (decisions, revisions, reminders, escalations, SLA breaches...). Whoever may
    GET the deliverable may read it (else 404)."""
    await asyncio.to_thread(_visible_deliverable_project, services, user, deliverable_id)
    return await asyncio.to_thread(services.store.deliverable_timeline, deliverable_id, datetime.now(UTC))


@router.get("/{deliverable_id}/history", response_model=Page[HistoryEntry], responses=problems(404, 422))
async def deliverable_history(deliverable_id: DeliverableId, user: CurrentUser, services: Svc,
                              limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                              order: Order = "asc") -> dict[str, Any]:
    """Every recorded event of the deliverable, oldest first (`order=desc`: newest first). Each names its
    `correlation`: the chain's workflow, and the Update that carried the decision, revision, withdrawal or
    reassignment (null for a deadline or the submission)."""
    await asyncio.to_thread(_visible_deliverable_project, services, user, deliverable_id)
    entries = await asyncio.to_thread(services.store.deliverable_history, deliverable_id)
    return history_page(entries, limit, cursor, order, f"history:{deliverable_id}")


@router.post("/{deliverable_id}/decisions", response_model=DeliverableState, responses=COMMAND_PROBLEMS)
async def decide(deliverable_id: DeliverableId, body: DecisionIn, user: CurrentUser, services: Svc,
                 request: Request) -> Response:
    """Approve, reject or request changes on the current stage; answers once the decision is recorded.

    Rules the schema cannot say: the caller approves the open stage or was granted it by an escalation
    (403 not-eligible), is not the submitter (403 self-approval), has not decided on this stage yet
    (409 already-decided), and `revision` is the current one (409 stale-revision); a closed stage or an
    ended chain is a 409."""
    return await _send(services, request, user, deliverable_id, Decide, body)


@router.post("/{deliverable_id}/revisions", response_model=DeliverableState, responses=COMMAND_PROBLEMS)
async def submit_revision(deliverable_id: DeliverableId, body: RevisionIn, user: CurrentUser, services: Svc,
                          request: Request) -> Response:
    """The submitter's new revision; the policy's on_revision says where the chain starts again.

    Only the submitter sends one (403); the same sha256 as the current revision is a 409."""
    return await _send(services, request, user, deliverable_id, SubmitRevision, body)


@router.post("/{deliverable_id}/withdraw", response_model=DeliverableState, responses=COMMAND_PROBLEMS)
async def withdraw(deliverable_id: DeliverableId, user: CurrentUser, services: Svc, request: Request,
                   body: WithdrawIn | None = None) -> Response:
    """The submitter withdraws the deliverable; its chain ends. Only the submitter (403), only while it runs (409)."""
    return await _send(services, request, user, deliverable_id, Withdraw, body or WithdrawIn())


@router.post("/{deliverable_id}/reassign", response_model=DeliverableState, responses=COMMAND_PROBLEMS)
async def reassign(deliverable_id: DeliverableId, body: ReassignIn, user: CurrentUser, services: Svc,
                   request: Request) -> Response:
    """Replace the open stage's approvers (pmo or admin, or the project's pmo; else 403).

    Rules the schema cannot say: approvers are members of the project (422, errors at body.approvers),
    never the submitter (403), and enough for the stage's rule (422); a stage must be open (409)."""
    return await _send(services, request, user, deliverable_id, Reassign, body)
