"""A project's webhook deliveries: what became of each message sent to its webhooks, and a retry of a
failed one, under /api/projects/{project_id}/deliveries (a router of its own, so the docs list them once,
under `deliveries`).

Who: pmo and admin, and the project's members who hold its `pmo` project role (anyone else who sees
the project: 403; a project the caller cannot see: 404).
"""

import asyncio
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, visible_project
from api.history import Order, history_page
from api.models import DeliveryHistoryEntry, DeliveryOut, DeliveryStatus
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, newest_first, paginate
from api.problems import STORE_RETRY_AFTER, Problem
from domain.errors import NotFound
from domain.notifications import Message
from domain.project import Project
from store.views import sortable_time
from workflows.delivery import DeliveryRun, DeliveryWorkflow, delivery_workflow_id

router = APIRouter(prefix="/api/projects/{project_id}/deliveries", tags=["deliveries"],
                   responses=problems(401, 503))
ProjectPath = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
DeliveryPath = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
PROJECT_ROLE = "pmo"  # the project role that may read and retry the project's deliveries
RETRY_SHOWN_WITHIN = 5.0  # seconds the retry waits for its run to be recorded, to answer it pending


def _project(services: Services, user: Principal, project_id: str) -> Project:
    project = visible_project(services, user, project_id)
    if not (user.is_pmo_or_admin or PROJECT_ROLE in project.roles_of(user.user)):
        raise Problem(403, "only pmo or admin, or the project's pmo, see its deliveries", "forbidden")
    return project


def _delivery(services: Services, user: Principal, project_id: str, delivery_id: str) -> dict[str, Any]:
    project = _project(services, user, project_id)
    try:
        state = services.store.get_delivery(delivery_id)
    except NotFound:
        state = None
    if state is None or state["project_id"] != str(project.id):
        raise Problem(404, f"no delivery {delivery_id} in this project", "not-found")
    return state


@router.get("", response_model=Page[DeliveryOut], responses=problems(403, 404, 422))
async def list_deliveries(project_id: ProjectPath, user: CurrentUser, services: Svc,
                          status: DeliveryStatus | None = None, limit: Limit = DEFAULT_LIMIT,
                          cursor: Cursor = None) -> dict[str, Any]:
    """The project's webhook deliveries, newest change first; `status=failed` keeps those that gave up
    (pmo or admin, or the project's pmo)."""
    project = await asyncio.to_thread(_project, services, user, project_id)
    rows = await asyncio.to_thread(services.views.deliveries, str(project.id), status)
    return paginate(rows, limit, cursor, lambda d: [sortable_time(d["updated_at"]), d["id"]], newest_first,
                    f"deliveries:{project.id}")


@router.get("/{delivery_id}", response_model=DeliveryOut, responses=problems(403, 404, 422))
async def get_delivery(project_id: ProjectPath, delivery_id: DeliveryPath, user: CurrentUser,
                       services: Svc) -> dict[str, Any]:
    """One delivery as recorded: its status, each run's outcome, and the `webhook-id` its receiver saw."""
    return await asyncio.to_thread(_delivery, services, user, project_id, delivery_id)


@router.get("/{delivery_id}/history", response_model=Page[DeliveryHistoryEntry], responses=problems(403, 404, 422))
async def delivery_history(project_id: ProjectPath, delivery_id: DeliveryPath, user: CurrentUser, services: Svc,
                           limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                           order: Order = "asc") -> dict[str, Any]:
    """Every recorded event of the delivery, oldest first (`order=desc`: newest first): its start, each
    retry asked for and by whom, and how each run of attempts ended. Each run has a workflow of its own
    (`delivery-{id}`, a retry `delivery-{id}-run-{n}`), which `correlation` names. Who may GET the
    delivery may read it (pmo or admin, or the project's pmo)."""
    state = await asyncio.to_thread(_delivery, services, user, project_id, delivery_id)
    entries = await asyncio.to_thread(services.store.delivery_history, state["id"],
                                      lambda run: delivery_workflow_id(state["id"], run))
    return history_page(entries, limit, cursor, order, f"history:{state['id']}")


@router.post("/{delivery_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryOut,
             responses=problems(403, 404, 409, 422))
async def retry_delivery(project_id: ProjectPath, delivery_id: DeliveryPath, user: CurrentUser,
                         services: Svc) -> dict[str, Any]:
    """Send a failed delivery again (pmo or admin, or the project's pmo): a new run of attempts within
    the configured budget, to the webhook's url and with its current secret, under the same
    `webhook-id`. Answers 202 with the delivery, `pending` once the run is recorded. Only a `failed`
    delivery is sent again (else 409)."""
    state = await asyncio.to_thread(_delivery, services, user, project_id, delivery_id)
    if state["status"] != "failed":
        raise Problem(409, f"only a failed delivery is sent again; this one is {state['status']}", "conflict")
    delivery = await asyncio.to_thread(services.store.delivery_aggregate, delivery_id)
    run_number = delivery.runs + 1
    s = services.settings
    run = DeliveryRun(delivery_id=str(delivery.id), project_id=delivery.project_id, webhook_id=delivery.webhook_id,
                      url=delivery.url, message=Message.model_validate(delivery.message), run=run_number,
                      actor=user.user, budget_seconds=s.webhook_budget_seconds,
                      attempt_timeout_seconds=s.webhook_attempt_timeout_seconds,
                      first_retry_seconds=s.webhook_first_retry_seconds)
    try:
        await services.temporal.start_workflow(
            DeliveryWorkflow.run, run, id=delivery_workflow_id(run.delivery_id, run_number), task_queue=s.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE, id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            static_summary=f"retry {run_number - 1} of {run.message.type} by {user.user}")
    except WorkflowAlreadyStartedError:
        pass  # a retry asked for at the same moment started this very run
    except RPCError as exc:
        raise Problem(503, f"Temporal did not take the retry ({exc.status.name if exc.status else exc}); nothing "
                           "was started, ask again shortly", "unavailable", {"Retry-After": STORE_RETRY_AFTER}) from None
    return await asyncio.to_thread(_recorded, services, delivery_id, run_number)


def _recorded(services: Services, delivery_id: str, run: int) -> dict[str, Any]:
    """The delivery once its run `run` is recorded (its workflow's first step), or as it is if that takes
    longer than RETRY_SHOWN_WITHIN: the run is started either way."""
    deadline = time.monotonic() + RETRY_SHOWN_WITHIN
    while True:
        state = services.store.get_delivery(uuid.UUID(delivery_id))
        if state["runs"] >= run or time.monotonic() > deadline:
            return state
        time.sleep(0.05)
