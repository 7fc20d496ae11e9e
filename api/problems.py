"""Every error as application/problem+json (RFC 9457): type, title, status, detail."""

import logging
import sqlite3
from http import HTTPStatus
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.routing import allowed_methods
from domain.errors import DomainError

log = logging.getLogger("signoff.api")
KIND_STATUS = {"invalid": 422, "not_found": 404, "forbidden": 403, "conflict": 409, "unavailable": 503}
STORE_RETRY_AFTER = "2"  # seconds; the store's own timeouts are a few seconds
# SQLite's result codes that say "not now" (busy, locked, disk, cannot open), not "wrong statement".
SQLITE_UNAVAILABLE = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
                      sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL}


class Problem(Exception):
    def __init__(self, status: int, detail: str, type_: str | None = None, headers: dict[str, str] | None = None,
                 **extra: Any):
        super().__init__(detail)
        self.status, self.detail, self.type, self.headers, self.extra = status, detail, type_, headers, extra


def problem_response(status: int, detail: str, type_: str | None = None, headers: dict[str, str] | None = None,
                     **extra: Any) -> JSONResponse:
    title = HTTPStatus(status).phrase
    if status == 422 and "errors" not in extra:  # every 422 says which field, even when it is the whole body
        extra["errors"] = [{"loc": ["body"], "msg": detail, "type": type_ or "invalid"}]
    body = {"type": f"/problems/{type_ or title.lower().replace(' ', '-')}", "title": title, "status": status,
            "detail": detail, **extra}
    headers = {**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def store_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the event store cannot answer now (unreachable, down, locked, timed out, no
    connection free) rather than that a statement is wrong, which stays a 500."""
    cause: BaseException | None = exc
    while cause is not None:  # the driver's error, under eventsourcing's wrapping, decides
        if isinstance(cause, sqlite3.Error):
            return getattr(cause, "sqlite_errorcode", -1) & 0xFF in SQLITE_UNAVAILABLE
        if isinstance(cause, psycopg.Error):
            return isinstance(cause, psycopg.OperationalError)  # connection, timeouts, pool, lock
        cause = cause.__cause__
    # eventsourcing's own: no free pooled connection (a TimeoutError) or a connection it could not use.
    return isinstance(exc, (PersistenceOperationalError, PersistenceInterfaceError))


def store_unavailable_response(detail: str) -> JSONResponse:
    response = problem_response(503, detail, "store-unavailable")
    response.headers["Retry-After"] = STORE_RETRY_AFTER
    return response


def domain_problem(exc: DomainError) -> Problem:
    status = KIND_STATUS.get(exc.kind, 422)
    # Nothing was recorded because the service was slow: the same request may be sent again.
    headers = {"Retry-After": STORE_RETRY_AFTER} if status == 503 else None
    # Every 422 has the same shape: which field breaks the rule, and why.
    extra = {"errors": [{"loc": ["body", *getattr(exc, "field", ())], "msg": exc.detail, "type": _kebab(
        type(exc).__name__)}]} if status == 422 else {}
    return Problem(status, exc.detail, _kebab(type(exc).__name__), headers, **extra)


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, exc.type, exc.headers, **exc.extra)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        p = domain_problem(exc)
        return problem_response(p.status, p.detail, p.type, p.headers, **p.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return problem_response(422, detail, "validation-error", errors=errors)

    # eventsourcing wraps the drivers' errors; the list views meet psycopg's and sqlite3's directly.
    @app.exception_handler(PersistenceError)
    @app.exception_handler(psycopg.Error)
    @app.exception_handler(sqlite3.Error)
    async def _store(_: Request, exc: Exception) -> JSONResponse:
        if not store_unavailable(exc):
            log.exception("event store error", exc_info=exc)
            return problem_response(500, "an unexpected error; it has been logged", "internal-error")
        log.warning("event store unavailable: %s", exc)
        return store_unavailable_response("the event store is busy or unreachable; try again shortly")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(500, "an unexpected error; it has been logged", "internal-error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow names every method of the path, not only the first route's
            headers["Allow"] = ", ".join(allowed_methods(request.scope)) or headers.get("Allow", "")
        return problem_response(exc.status_code, str(exc.detail), headers=headers)
