"""Refuse what no handler should see: heads over the limit (431), bodies over the limit (413),
and JSON bodies that give a key twice (422)."""

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.jsonbody import TooDeep, duplicate_key, is_json
from api.problems import problem_response


def head_size(scope: Scope) -> int:
    """About what the request's head took on the wire: request line and header lines."""
    line = len(scope["method"]) + len(scope.get("raw_path") or scope["path"]) + len(scope["query_string"]) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


class HeaderLimit:
    """uvicorn parses a head that arrives in one piece whatever its size; this holds every head to
    the limit, and answers problem+json like every other refusal (see api/server.py for heads that
    the HTTP parser itself gives up on)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and head_size(scope) > self.max_bytes:
            response = problem_response(431, f"request line and headers over {self.max_bytes} bytes",
                                        "request-header-fields-too-large")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def ambiguous_json(scope: Scope, body: bytes) -> JSONResponse | None:
    """422 for a JSON body that gives a key twice, or nests deeper than the parser can follow."""
    if not body or not is_json(dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")):
        return None
    try:
        path = duplicate_key(body)
    except TooDeep:
        loc, msg, kind = ["body"], "nested too deeply", "json_depth"
    else:
        if path is None:
            return None
        loc, msg, kind = ["body", *path], "the same key is given twice, so what it says is ambiguous", "duplicate_key"
    return problem_response(422, f"{'.'.join(str(p) for p in loc)}: {msg}", "validation-error",
                            errors=[{"loc": loc, "msg": msg, "type": kind}])


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Bodies may come chunked with no declared length: read up to the limit, then replay.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        body, replayed = b"".join(chunks), False
        refusal = ambiguous_json(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"request body over {self.max_bytes} bytes", "body-too-large")
        await response(scope, receive, send)
