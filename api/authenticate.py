"""Who is asking, before anything else is looked at: a request under /api/ without a valid bearer
token is 401 whatever its body, so a client learns first that it must sign in (not that its body,
which nobody will read, is malformed)."""

from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import principal_of
from api.problems import Problem, problem_response
from config.settings import Settings

# The codec endpoints take a session cookie too, and check it themselves.
OPEN_PREFIXES = ("/api/codec",)


class Authenticate:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await problem_response(401, "a bearer token is required", "unauthorized")(scope, receive, send)
            return
        try:
            principal = principal_of(self.settings, token.strip())
        except Problem as exc:
            await problem_response(exc.status, exc.detail, exc.type)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
