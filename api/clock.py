"""Stamp each request with the moment it arrived, before anything else runs.

A command's deadline counts from this moment, not from when the handler got round to it: time
spent waiting for a store read or a busy worker thread is time the caller has already waited.
"""

from datetime import datetime, timezone

from starlette.types import ASGIApp, Receive, Scope, Send


class ArrivalClock:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["arrived_at"] = datetime.now(timezone.utc)
        await self.app(scope, receive, send)


def arrived_at(scope: Scope) -> datetime:
    return scope.get("state", {}).get("arrived_at") or datetime.now(timezone.utc)
