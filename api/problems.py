"""Every error as application/problem+json (RFC 9457): type, title, status, detail."""

import logging
from http import HTTPStatus
from typing import Any

from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import DomainError

log = logging.getLogger("signoff.api")
KIND_STATUS = {"invalid": 422, "not_found": 404, "forbidden": 403, "conflict": 409}


class Problem(Exception):
    def __init__(self, status: int, detail: str, type_: str | None = None, **extra: Any):
        super().__init__(detail)
        self.status, self.detail, self.type, self.extra = status, detail, type_, extra


def problem_response(status: int, detail: str, type_: str | None = None, **extra: Any) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body = {"type": f"/problems/{type_ or title.lower().replace(' ', '-')}", "title": title, "status": status,
            "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def domain_problem(exc: DomainError) -> Problem:
    return Problem(KIND_STATUS.get(exc.kind, 422), exc.detail, _kebab(type(exc).__name__))


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, exc.type, **exc.extra)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        p = domain_problem(exc)
        return problem_response(p.status, p.detail, p.type)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return problem_response(422, detail, "validation-error", errors=errors)

    @app.exception_handler(PersistenceOperationalError)
    async def _store_busy(_: Request, exc: PersistenceOperationalError) -> JSONResponse:
        log.warning("event store unavailable: %s", exc)
        response = problem_response(503, "the event store is busy or unreachable; try again shortly",
                                    "store-unavailable")
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(500, "an unexpected error; it has been logged", "internal-error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail))
