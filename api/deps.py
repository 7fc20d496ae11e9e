"""What every route depends on: the caller, and the clients created once in the app's lifespan."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import InvalidToken, Principal, read_token
from api.clock import arrived_at
from api.problems import Problem
from config.settings import Settings
from domain.application import Signoff
from domain.errors import NotFound
from domain.project import Project
from store.events import store_timeouts
from store.audit_view import AuditRows
from store.views import ReadModel


@dataclass
class Services:
    settings: Settings
    store: Signoff
    views: ReadModel
    temporal: Client
    audit: AuditRows
    # deliverable id -> project id; both never change, so remembering saves a read per decision
    project_of: dict[str, str] = field(default_factory=dict)

    @property
    def command_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.command_timeout_seconds)

    def command_deadline(self, request: Request) -> datetime:
        """When the caller hears 503 if the command has not been recorded: counted from the
        request's arrival, not from when the handler got round to it."""
        return arrived_at(request.scope) + self.command_timeout

    def record_by(self, request: Request) -> datetime:
        """Past this a command is never recorded (checked right before its save). Earlier than the
        answer's deadline by what one save may take, so a save that began in time has ended before
        the caller hears 503: nothing the caller gave up on applies later."""
        return self.command_deadline(request) - self.write_margin

    @cached_property
    def write_margin(self) -> timedelta:
        """A save's worst case: waiting for a connection, for the lock, for the statement, and a
        second for the clocks of the API and the worker to differ. At most half the command's time,
        so a command still has time to be recorded (then the guarantee needs a longer timeout)."""
        bounds = store_timeouts(self.settings.event_store_url())
        worst = bounds["connect_timeout"] + bounds["lock_timeout"] + bounds["statement_timeout"] + 1
        return min(timedelta(seconds=worst), self.command_timeout / 2)


def caller_left(request: Request) -> Callable[[], Awaitable[None]]:
    """Resolves when the HTTP client disconnects: once the body has been read, the server's next
    message is the disconnect."""
    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return disconnected


async def get_services(request: Request) -> Services:
    return request.app.state.services


bearer = HTTPBearer(auto_error=False)


async def get_principal(request: Request, services: Annotated[Services, Depends(get_services)],
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    known = getattr(request.state, "principal", None)
    if isinstance(known, Principal):  # api/authenticate.py read the token already
        return known
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "a bearer token is required", "unauthorized")
    return principal_of(services.settings, credentials.credentials)


def principal_of(settings: Settings, token: str, *, feed: bool = False, in_query: bool = False) -> Principal:
    """The bearer of `token`, or 401. A feed token is 403 unless `feed` (the calendar feed is asked for);
    a token that came as `?token=` (`in_query`) must be a feed token: others belong in a header, not in
    URLs that calendar apps, proxies and browsers keep. Whether a feed token is still the current one
    (not revoked) is the feed's own check (api/routers/calendar.py): it needs the event store."""
    try:
        principal = read_token(settings.jwt_secret, token, issuer=settings.jwt_issuer,
                               audience=settings.jwt_audience, max_ttl=settings.jwt_max_ttl)
    except InvalidToken as exc:
        raise Problem(401, f"invalid token: {exc}", "unauthorized") from None
    if principal.is_feed_token and not feed:
        raise Problem(403, "a feed token is good for the calendar feed (GET /api/calendar.ics) only", "forbidden")
    if in_query and not principal.is_feed_token:
        raise Problem(401, "?token= takes a feed token only; send other tokens as Authorization: Bearer",
                      "unauthorized")
    return principal


Svc = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_pmo_or_admin(user: Principal) -> None:
    if not user.is_pmo_or_admin:
        raise Problem(403, "only pmo or admin may do this", "forbidden")


def can_see(user: Principal, project: Project) -> bool:
    return user.is_pmo_or_admin or project.is_member(user.user)


def visible_project(services: Services, user: Principal, project_id: str) -> Project:
    """The project, or 404 alike for one that does not exist and one the caller may not see."""
    try:
        project = services.store.get_project(project_id)
    except NotFound:
        raise Problem(404, f"no project {project_id}", "not-found") from None
    if not can_see(user, project):
        raise Problem(404, f"no project {project_id}", "not-found")
    return project
