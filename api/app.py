"""The FastAPI app: wiring only. Clients are created once per process in the lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import contract, docs, metrics, problems
from api.authenticate import Authenticate
from api.clock import ArrivalClock
from api.deps import Services
from api.limits import BodyLimit, HeaderLimit
from api.routers import (
    audit,
    calendar,
    deliveries,
    codec,
    deliverables,
    dependencies,
    health,
    inbox,
    policies,
    projects,
    retrospectives,
)
from config.settings import Settings
from store.events import open_application
from store.audit_view import open_audit_view
from store.views import ReadModel
from workflows.client import connect
from workflows.codec import codec_from


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_application(settings.event_store_url())
        # Lazy: the API starts and serves reads while Temporal is down; commands answer 503 until
        # it is back, and each call connects again if needed.
        temporal = await connect(settings, lazy=True)
        app.state.services = Services(settings=settings, store=store,
                                      views=ReadModel(store, settings.event_store_url()), temporal=temporal,
                                      audit=open_audit_view(settings.event_store_url()))
        try:
            yield
        finally:
            store.close()

    # docs_url=redoc_url=None: FastAPI's pages load their scripts from a CDN; api/docs.py serves ours.
    app = FastAPI(title="Signoff", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Approval chains, phase gates and escalation for project delivery.",
                  generate_unique_id_function=contract.operation_id)
    problems.install(app)
    contract.install(app)
    docs.install(app)
    app.state.metrics = measured = metrics.Metrics()
    for module in (projects, deliveries, policies, deliverables, dependencies, inbox, calendar, audit, retrospectives,
                   health, metrics):
        app.include_router(module.router)
    payload_codec = codec_from(settings)
    if payload_codec is not None:  # the codec endpoint exists only where payloads are encrypted
        app.include_router(codec.router_for(settings, payload_codec))
    # Added last, so outermost: refusals of the body limit are measured too.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Authenticate, settings=settings)  # outside the body's checks: 401 comes first
    app.add_middleware(HeaderLimit, max_bytes=settings.max_header_bytes)  # outside: before the body is read
    app.add_middleware(metrics.MetricsMiddleware, metrics=measured)
    # Outermost of all: a command's deadline counts from the moment its request arrived.
    app.add_middleware(ArrivalClock)
    return app
