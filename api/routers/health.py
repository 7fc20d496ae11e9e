import asyncio

from fastapi import APIRouter

from api.deps import Svc
from api.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Svc) -> dict[str, str]:
    """The event store and the Temporal server both answer."""
    try:
        await asyncio.to_thread(services.store.recorder.max_notification_id)
        await asyncio.wait_for(services.temporal.service_client.check_health(), timeout=5)
    except Exception as exc:  # any failure means not ready; say which
        raise Problem(503, f"not ready: {exc}", "not-ready") from None
    return {"status": "ready"}
