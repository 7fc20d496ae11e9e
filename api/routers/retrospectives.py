"""Retrospectives: where a project's time went, and what a changed policy would have changed.

Computed from the audit trail's rows alone (domain/retrospective.py, domain/what_if.py), after
waiting for the projector to reach what the store held when asked, so a caller sees what it just
did. Who may see the project may ask (else 404, as GET of the project); the portfolio is pmo and
admin only (403).
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Response

from api.contract import problems
from api.deps import CurrentUser, Services, Svc, require_pmo_or_admin, visible_project
from api.problems import Problem
from api.retro_models import (
    PortfolioRetrospective,
    Retrospective,
    WhatIf,
    WhatIfRequest,
)
from api.retro_rows import cache_for, no_collection
from api.routers.audit import ready
from api.routers.policies import _visible_policy
from domain.retrospective import Case, fact_of, retrospective
from domain.what_if import Changes, members_over_time, what_if
from store.audit_view import AuditFilter

router = APIRouter(prefix="/api/retrospectives", tags=["retrospectives"], responses=problems(401, 503))
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIRST = (datetime(1, 1, 2, tzinfo=UTC) - EPOCH).total_seconds()
LAST = (datetime(9999, 12, 30, tzinfo=UTC) - EPOCH).total_seconds()
ProjectId = Annotated[str, Path(json_schema_extra={"format": "uuid"})]


def _window(since: datetime | None, until: datetime | None, given_in: str = "query") -> tuple[float | None, float]:
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise Problem(422, f"{name}: give a time zone (e.g. Z)", "validation-error",
                          errors=[{"loc": [given_in, name], "msg": "a moment needs a time zone", "type": "value_error"}])
    # since at or after until: an empty window, answered with its figures. Moments are kept within
    # what UTC can write (an offset on 0001-01-01 or 9999-12-31 would leave the calendar).
    end = _clamped(until or datetime.now(UTC))
    return (_clamped(since).timestamp() if since is not None else None), end.timestamp()


def _clamped(moment: datetime) -> datetime:
    seconds = (moment - EPOCH).total_seconds()
    return EPOCH + timedelta(seconds=min(max(seconds, FIRST), LAST))


def _cases(services: Services, project_id: str | None, since: float | None, until: float) -> list[Case]:
    """The deliverables and dependencies of the project (None: every project) made in the window."""
    return cache_for(services.audit).cases(project_id, since, until)


@router.get("/{project_id}", response_model=Retrospective, responses=problems(404, 422))
async def project_retrospective(project_id: ProjectId, user: CurrentUser, services: Svc,
                                since: datetime | None = None, until: datetime | None = None) -> Response:
    """The figures of the project's deliverables submitted in [since, until) and its dependencies opened
    then, as of `until` (default now). Definitions: README, Retrospectives."""
    start, stop = _window(since, until)

    await asyncio.to_thread(visible_project, services, user, project_id)
    await ready(services)

    def compute() -> bytes:
        with no_collection():
            return orjson.dumps(retrospective(_cases(services, project_id, start, stop), start, stop))

    return Response(await asyncio.to_thread(compute), media_type="application/json")


@router.get("", response_model=PortfolioRetrospective, responses=problems(403, 422))
async def portfolio_retrospective(user: CurrentUser, services: Svc, since: datetime | None = None,
                                  until: datetime | None = None) -> Response:
    """The same figures over every project's deliverables and dependencies (pmo and admin only)."""
    require_pmo_or_admin(user)
    start, stop = _window(since, until)

    await ready(services)

    def compute() -> bytes:
        with no_collection():
            cases = _cases(services, None, start, stop)
            figures = retrospective(cases, start, stop)
            figures["projects"] = len({c.project_id for c in cases if c.project_id})
            return orjson.dumps(figures)

    return Response(await asyncio.to_thread(compute), media_type="application/json")


@router.post("/{project_id}/what-if", response_model=WhatIf, responses=problems(404, 413, 422))
async def project_what_if(project_id: ProjectId, body: WhatIfRequest, user: CurrentUser,
                          services: Svc) -> Response:
    """The project's retrospective as recorded (`actual`) and with the deliverables of `policy` re-run
    under the changed stages and calendar (`what_if`), their difference, and per deliverable what would
    have happened differently and why. Decisions keep their recorded times; the README says how a
    decision that no longer fits is treated. The same request gives the same answer."""
    start, stop = _window(body.since, body.until, "body")
    changes = _changes(body)

    def visible() -> dict[str, Any]:
        visible_project(services, user, project_id)
        return _visible_policy(services, user, body.policy, None)  # 404 as GET of the policy

    latest = await asyncio.to_thread(visible)
    await ready(services)

    def compute() -> bytes:
        members = members_over_time([fact_of(orjson.loads(b)) for _, b in services.audit.stream(
            AuditFilter(subject_id=project_id, subject_kind="project"), None, True)])
        with no_collection():
            cases = _cases(services, project_id, start, stop)
            return orjson.dumps(what_if(cases, start, stop, body.policy, changes, members, known=[latest]))

    return Response(await asyncio.to_thread(compute), media_type="application/json")


def _changes(body: WhatIfRequest) -> Changes:
    stages = {}
    for name, change in body.changes.stages.items():
        given = change.model_dump(include=change.model_fields_set)
        stages[name] = given
    calendar_given = "calendar" in body.changes.model_fields_set
    calendar = body.changes.calendar.model_dump(mode="json") if body.changes.calendar is not None else None
    return Changes(stages=stages, calendar=calendar, calendar_given=calendar_given)

