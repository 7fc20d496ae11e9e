import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import Svc
from api.problems import problem_response
from store.events import probe_store

router = APIRouter(tags=["health"])
NOT_READY = {503: {"description": "Not ready: the event store cannot write or read, or Temporal does not answer "
                                  "(problem+json, with Retry-After)."}}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY, response_model=None)
async def readyz(services: Svc) -> dict[str, str] | JSONResponse:
    """The event store can be read and can take a write's lock, and the Temporal server answers, all
    within the readiness timeout."""
    timeout = services.settings.readyz_timeout_seconds
    try:
        await asyncio.wait_for(asyncio.gather(asyncio.to_thread(probe_store, services.store),
                                              services.temporal.service_client.check_health()), timeout)
    except TimeoutError:
        return not_ready(f"no answer within {timeout:g} s")
    except Exception as exc:  # any failure means not ready; say which
        return not_ready(str(exc) or type(exc).__name__)
    return {"status": "ready"}


def not_ready(reason: str) -> JSONResponse:
    response = problem_response(503, f"not ready: {reason}", "not-ready")
    response.headers["Retry-After"] = "5"
    return response
