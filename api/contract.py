"""What /openapi.json says beyond FastAPI's defaults: every error as problem+json, declared per
operation, operation ids that read as names, and no schema for an error shape the API never sends."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where in the request: `body`, `query`, `path` or `header`, then "
                                             "the field's path", examples=[["body", "comment"]])
    msg: str = Field(description="What is wrong with it", examples=["a reject needs a comment that says why"])
    type: str = Field(description="A stable code for the kind of error", examples=["missing"])


class Problem(BaseModel):
    """An error (RFC 9457). `type` is a stable URI reference, one of those the README lists; `detail`
    is for people; a 422 says in `errors` which fields are wrong and why."""

    type: str = Field(description="Stable URI reference naming the kind of problem",
                      examples=["/problems/stale-revision"])
    title: str = Field(description="The HTTP status's phrase", examples=["Conflict"])
    status: int = Field(description="The HTTP status code", examples=[409])
    detail: str = Field(description="What went wrong, for people", examples=["revision 1 is not the current revision 2"])
    errors: list[FieldError] | None = Field(default=None, description="On 422: each field that is wrong")
    id: str | None = Field(default=None, description="On a submission's 503: the id the deliverable has if it "
                                                     "was recorded after all")


WHY = {
    400: "The request is not valid HTTP or not valid JSON",
    401: "No bearer token, or one that is invalid or expired",
    403: "The caller may not do this",
    404: "No such thing, or one the caller may not see",
    409: "Conflicts with the current state (a stale revision, a second vote, a closed stage, a reused "
         "Idempotency-Key)",
    413: "The body is larger than the limit",
    422: "The body, query or path is invalid, or breaks a rule (`errors` names the fields)",
    503: "The event store or Temporal is unavailable or slow; nothing was recorded unless the detail says "
         "otherwise (Retry-After)",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries declaring these statuses as problem+json."""
    return {status: {"description": f"{HTTPStatus(status).phrase}: {WHY[status]}",
                     "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


def operation_id(route: APIRoute) -> str:
    return route.name


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes, tags=app.openapi_tags)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if "422" in operation.get("responses", {}):  # FastAPI's default one names its own shape
                        operation["responses"]["422"] = problems(422)[422]
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)  # FastAPI's 422 shape: never sent, every 422 is a Problem
            defs = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(defs.pop("$defs", {}))
            schemas["Problem"] = defs
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
