import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from api.deps import CurrentUser, Svc, require_pmo_or_admin
from domain.policy import NAME_PATTERN, PolicySpec

router = APIRouter(prefix="/api/policies", tags=["policies"])
PolicyName = Annotated[str, Path(pattern=NAME_PATTERN)]


@router.put("/{name}")
async def put_policy(name: PolicyName, body: PolicySpec, user: CurrentUser, services: Svc,
                     response: Response) -> dict[str, Any]:
    """Publish a new version of the policy (201 for the first). Running chains keep their version;
    publishing the same stages again changes nothing."""
    require_pmo_or_admin(user)
    policy, changed = await asyncio.to_thread(services.store.put_policy, name, body.model_dump(), user.user)
    created = changed and policy["version"] == 1
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return policy


@router.get("/{name}")
async def get_policy(name: PolicyName, user: CurrentUser, services: Svc,
                     version: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """The latest version of the policy, or the one asked for."""
    return await asyncio.to_thread(services.store.get_policy, name, version)
