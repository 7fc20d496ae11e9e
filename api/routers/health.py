import asyncio
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.contract import problems
from api.deps import Svc
from api.problems import problem_response
from store.events import probe_store

router = APIRouter(tags=["health"])
NOT_READY = {503: {**problems(503)[503], "description": (
    "Not ready: the event store cannot write or read, or Temporal does not answer, or `signoff dev` is still "
    "loading its demo data (/problems/not-ready or /problems/starting, with Retry-After).")}}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (also to HEAD)."""
    return {"status": "ok"}


@router.get("/readyz", responses=NOT_READY, response_model=None)
async def readyz(services: Svc) -> dict[str, str] | JSONResponse:
    """The event store can be read and can take a write's lock, and the Temporal server answers, all
    within the readiness timeout; under `signoff dev`, the demo data has been loaded too (also to HEAD)."""
    settings = services.settings
    timeout = settings.readyz_timeout_seconds
    try:
        await asyncio.wait_for(asyncio.gather(asyncio.to_thread(probe_store, services.store),
                                              services.temporal.service_client.check_health()), timeout)
    except TimeoutError:
        return not_ready(f"no answer within {timeout:g} s")
    except Exception as exc:  # any failure means not ready; say which
        return not_ready(str(exc) or type(exc).__name__)
    # Checked last: `signoff dev` waits for this answer (store and Temporal fine) to load the demo.
    if settings.readyz_waits_for and not Path(settings.readyz_waits_for).exists():
        return not_ready("the demo data is still loading", "starting")
    return {"status": "ready"}


# HEAD answers as GET does, without the body (load balancers and `curl -I` probe with it). Left out of
# /openapi.json: HTTP gives every GET a HEAD.
router.add_api_route("/healthz", healthz, methods=["HEAD"], name="healthz_head", include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], name="readyz_head", include_in_schema=False,
                     response_model=None)


def not_ready(reason: str, type_: str = "not-ready") -> JSONResponse:
    response = problem_response(503, f"not ready: {reason}", type_)
    response.headers["Retry-After"] = "5"
    return response
