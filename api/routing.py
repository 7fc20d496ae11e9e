"""The app's routes as a flat list (FastAPI wraps included routers), to ask which of them a request
would reach: for the metrics of a request refused before routing, and for a 405's Allow."""

from collections.abc import Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import Scope


def routes_of(scope: Scope) -> Iterator[Any]:
    routes = list(getattr(getattr(scope.get("app"), "router", None), "routes", []))
    while routes:
        route = routes.pop(0)
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        if included is not None:
            routes[:0] = included.routes
        else:
            yield route


def route_of(scope: Scope) -> Any | None:
    """The route a request refused before routing (a 401, say) would have reached."""
    return next((route for route in routes_of(scope) if route.matches(scope)[0] == Match.FULL), None)


def allowed_methods(scope: Scope) -> list[str]:
    """Every method the request's path takes (RFC 9110: Allow lists them all)."""
    methods: set[str] = set()
    for route in routes_of(scope):
        if route.matches(scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
