import asyncio
import functools
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from api.as_of import AsOf
from api.auth import Principal
from api.contract import problems
from api.deps import CurrentUser, Services, Svc, require_pmo_or_admin
from api.history import Order, history_page
from api.models import PolicyHistoryEntry, PolicyOut
from api.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from domain.errors import NotFound
from domain.policy_spec import NAME_PATTERN, PolicySpec

router = APIRouter(prefix="/api/policies", tags=["policies"], responses=problems(401, 503))
PolicyName = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.put("/{name}", response_model=PolicyOut, responses={
    201: {"model": PolicyOut, "description": "Created: the policy's first version"},
    200: {"description": "A new version, or the same stages again (no new version)"},
    **problems(403, 413, 422)})
async def put_policy(name: PolicyName, body: PolicySpec, user: CurrentUser, services: Svc,
                     response: Response) -> dict[str, Any]:
    """Publish a new version of the policy (201 for the first). Running chains keep their version;
    publishing the same stages again changes nothing.

    Rules the schema cannot say (each a 422): stage names are unique within the policy; a duration is
    at most 5 years (P1825D); `n` is 1 to 200."""
    require_pmo_or_admin(user)
    policy, changed = await asyncio.to_thread(services.store.put_policy, name, body.model_dump(), user.user)
    created = changed and policy["version"] == 1
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return policy


@router.get("/{name}", response_model=PolicyOut, responses=problems(404, 422))
async def get_policy(name: PolicyName, user: CurrentUser, services: Svc,
                     version: Annotated[int | None, Query(ge=1)] = None, as_of: AsOf = None) -> dict[str, Any]:
    """The latest version of the policy, or the one asked for. With `as_of` (a time zone), as the policy
    stood then: the version that was the latest at that moment (or `version`, if it had been published
    by then), `latest_version` then too; before its first version is a 404. A version that names
    approvers by user id is shown only to pmo, admin and members of projects with a deliverable under
    the policy; to anyone else it is a 404, as for a policy that does not exist."""
    if as_of is not None:
        return await asyncio.to_thread(_visible_policy_then, services, user, name, version, as_of)
    return await asyncio.to_thread(_visible_policy, services, user, name, version)


def _visible_policy_then(services: Services, user: Principal, name: str, version: int | None,
                         as_of: datetime) -> dict[str, Any]:
    """The policy as of `as_of`: a 404 exactly where GET of the latest version is one (so a moment
    before the policy existed says so only to who may know it exists), and where the version shown,
    by naming approvers by user id, is hidden from the caller as `?version=` would hide it."""
    _visible_policy(services, user, name, None)
    policy = services.store.get_policy(name, version, as_of)
    if not may_see(services, user, name, policy):
        raise NotFound(f"no policy {name!r}")
    return policy


@router.get("/{name}/history", response_model=Page[PolicyHistoryEntry], responses=problems(404, 422))
async def policy_history(name: PolicyName, user: CurrentUser, services: Svc, limit: Limit = DEFAULT_LIMIT,
                         cursor: Cursor = None, order: Order = "asc") -> dict[str, Any]:
    """Every recorded event of the policy, oldest first (`order=desc`: newest first): its creation and
    each version published, with who published it and its stages. Whoever may GET the policy's latest
    version may read it (else the same 404); a version that names approvers by user id, which GET
    `?version=` would not show the caller, has its `spec` null. Policies are published by HTTP
    requests, so `correlation` names no workflow."""
    entries = await asyncio.to_thread(_visible_history, services, user, name)
    return history_page(entries, limit, cursor, order, f"history:policy:{name}")


def _visible_history(services: Services, user: Principal, name: str) -> list[dict[str, Any]]:
    _visible_policy(services, user, name, None)  # a 404 exactly where GET of the latest version is one
    entries = services.store.policy_history(name)
    if user.is_pmo_or_admin:
        return entries
    uses = functools.cache(lambda: _uses_policy(services, user, name))
    return [{**e, "spec": None} if e.get("spec") and _names_users(e["spec"]) and not uses() else e
            for e in entries]


def _visible_policy(services: Services, user: Principal, name: str, version: int | None) -> dict[str, Any]:
    if user.is_pmo_or_admin:
        return services.store.get_policy(name, version)
    try:
        policy = services.store.get_policy(name, version)
    except NotFound:
        # An unknown version of a hidden policy must not tell that the policy exists.
        if not _uses_policy(services, user, name):
            raise NotFound(f"no policy {name!r}") from None
        raise
    if not may_see(services, user, name, policy):
        raise NotFound(f"no policy {name!r}")
    return policy


def may_see(services: Services, user: Principal, name: str, policy: dict[str, Any]) -> bool:
    """Whether `user` may read this version of the policy (see get_policy)."""
    return user.is_pmo_or_admin or not _names_users(policy) or _uses_policy(services, user, name)


def _names_users(policy: dict[str, Any]) -> bool:
    return any(stage["approvers"].get("users") for stage in policy["stages"])


def _uses_policy(services: Services, user: Principal, name: str) -> bool:
    """Whether the caller is a member of a project that has a deliverable under the policy."""
    return any(any(m["user"] == user.user for m in project["members"])
               for project in services.views.projects_using_policy(name))
