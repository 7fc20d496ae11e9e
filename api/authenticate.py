"""Who is asking, before anything else is looked at: a request under /api/ without a valid bearer
token is 401 whatever its body, so a client learns first that it must sign in (not that its body,
which nobody will read, is malformed).

The calendar feed alone also takes its token as `?token=` (calendar apps cannot send headers), and
only a feed token there; a feed token anywhere else is 403 (api/deps.py principal_of)."""

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import principal_of
from api.problems import Problem, problem_response
from config.settings import Settings

# The codec endpoints take a session cookie too, and check it themselves.
OPEN_PREFIXES = ("/api/codec",)
# The one route a feed token is good for (api/routers/calendar.py).
FEED_PATH = "/api/calendar.ics"


def query_token(scope: Scope) -> str | None:
    """The `?token=` of the request, or None; more than one is none (which would count?)."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
    return values[0].strip() if len(values) == 1 and values[0].strip() else None


class Authenticate:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        header = dict(scope["headers"]).get(b"authorization")
        feed = path == FEED_PATH
        # The header wins; the feed's ?token= counts only without one.
        in_query = query_token(scope) if feed and header is None else None
        if in_query is not None:
            scheme, token = "bearer", in_query
        else:
            scheme, _, token = (header or b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            wanted = "a bearer token (or a feed token as ?token=)" if feed else "a bearer token"
            await problem_response(401, f"{wanted} is required", "unauthorized")(scope, receive, send)
            return
        try:
            principal = principal_of(self.settings, token.strip(), feed=feed, in_query=in_query is not None)
        except Problem as exc:
            await problem_response(exc.status, exc.detail, exc.type)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
