"""The API as a real HTTP server (uvicorn on a free port) in front of a real worker and dev server."""

import asyncio
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
import uvicorn

from api.app import create_app
from api.auth import mint_token
from api.server import uvicorn_config
from config.settings import Settings
from store.audit_keys import SigningKey
from store.audit_view import open_audit_view
from store.events import open_application
from tests.builders import MEMBERS, STANDARD
from workers.projector import Projector
from workers.worker import build_worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Api:
    http: httpx.AsyncClient
    settings: Settings

    def auth(self, user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings.jwt_secret, user, list(roles))}"}

    async def project(self, members: list[dict[str, Any]] | None = None,
                      escalation_path: list[dict[str, Any]] | None = None) -> str:
        r = await self.http.post("/api/projects", headers=self.auth("paula", "pmo"), json={
            "name": "Northwind website relaunch", "members": members or MEMBERS,
            "escalation_path": escalation_path or []})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def policy(self, spec: dict[str, Any] | None = None) -> str:
        name = f"review-{uuid.uuid4().hex[:8]}"
        r = await self.http.put(f"/api/policies/{name}", headers=self.auth("paula", "pmo"), json=spec or STANDARD)
        assert r.status_code == 201, r.text
        return name

    async def submit(self, project_id: str, policy: str, user: str = "alice", **extra: Any) -> httpx.Response:
        from tests.builders import revision

        return await self.http.post("/api/deliverables", headers={**self.auth(user), **extra.pop("headers", {})},
                                    json={"project_id": project_id, "title": "Homepage mockups", "policy": policy,
                                          "revision": extra.pop("revision", revision())})

    async def decide(self, deliverable_id: str, user: str, verdict: str = "approve", revision: int = 1,
                     comment: str = "") -> httpx.Response:
        return await self.http.post(f"/api/deliverables/{deliverable_id}/decisions", headers=self.auth(user),
                                    json={"verdict": verdict, "comment": comment, "revision": revision})


class ServerThread(threading.Thread):
    def __init__(self, app: Any, settings: Settings, port: int):
        super().__init__(daemon=True)
        # The same uvicorn setup as `signoff api`, on loopback and a free port.
        self.server = uvicorn.Server(uvicorn_config(app, settings, host="127.0.0.1", port=port, log_level="warning"))

    def run(self) -> None:
        self.server.run()


@asynccontextmanager
async def serve_api(temporal_env, tmp_path, with_worker: bool = True, **overrides: Any) -> AsyncIterator[Api]:
    # Overrides may replace any default here, the event store included.
    settings = Settings(**{"data_dir": tmp_path, "event_store": f"sqlite:///{tmp_path / 'events.sqlite'}",
                           "temporal_address": temporal_env.client.service_client.config.target_host,
                           "task_queue": f"api-{uuid.uuid4().hex[:8]}",
                           "jwt_secret": "test-secret-that-is-long-enough-for-hs256", "demo": False, **overrides})
    worker_store = open_application(settings.event_store_url())
    # The audit projector, as `signoff dev` runs it beside the API (audit reads wait for it).
    projector = Projector(worker_store, open_audit_view(settings.event_store_url()),
                          SigningKey.load(tmp_path / "audit-signing-key.pem", make=True), checkpoint_rows=5,
                          checkpoint_seconds=0)
    stop_projector = threading.Event()
    projecting = threading.Thread(target=projector.run, args=(stop_projector, 0.05), daemon=True)
    projecting.start()
    port = free_port()
    server = ServerThread(create_app(settings), settings, port)
    async with AsyncExitStack() as stack:
        if with_worker:
            await stack.enter_async_context(build_worker(temporal_env.client, worker_store, settings.task_queue,
                                                         settings=settings))
        server.start()
        while not server.server.started:
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield Api(http, settings)
        server.server.should_exit = True
        await asyncio.to_thread(server.join, 10)
    stop_projector.set()
    await asyncio.to_thread(projecting.join, 10)
    worker_store.close()


@pytest_asyncio.fixture
async def api(temporal_env, tmp_path) -> AsyncIterator[Api]:
    async with serve_api(temporal_env, tmp_path) as served:
        yield served


@pytest_asyncio.fixture
async def alone(tmp_path) -> AsyncIterator[str]:
    """The base URL of the app served on its own: Temporal on a port nobody listens on, no worker. For
    what needs neither (the docs pages, the probes); /readyz says not ready."""
    settings = Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}", demo=False)
    port = free_port()
    server = ServerThread(create_app(settings), settings, port)
    server.start()
    while not server.server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.server.should_exit = True
    await asyncio.to_thread(server.join, 10)
