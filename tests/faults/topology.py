"""The production topology as processes on this machine, each of which a test can kill -9 and restart.

A Temporal dev server of its own (SQLite file with WAL and synchronous=full, so a kill -9 loses
nothing it acknowledged), the event store on PostgreSQL, two `signoff worker` processes and a
`signoff api` process. Each is a real OS process: killing one is what a crash does, not a
shutdown the code gets to see.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from config.settings import Settings
from domain.application import Signoff
from store.events import open_application
from tests.api.conftest import Api, free_port
from workers.devstack import temporal_binary
from workflows import search

ROOT = Path(__file__).resolve().parents[2]
SECRET = "faults-secret-that-is-long-enough-for-hs256"
READY_TIMEOUT = 60.0


class Topology:
    """Temporal, the workers and the API as processes; `app` reads the same event store directly."""

    def __init__(self, tmp: Path, event_store: str, workers: int = 2, **settings: Any):
        self.tmp = tmp
        self.temporal_port = free_port()
        fields = {"data_dir": tmp, "event_store": event_store, "temporal_address": f"127.0.0.1:{self.temporal_port}",
                  "task_queue": f"faults-{uuid.uuid4().hex[:8]}", "jwt_secret": SECRET, "demo": False,
                  "host": "127.0.0.1", "port": free_port(), **settings}
        # Only the fields named here reach the children, as SIGNOFF_* variables: the same values
        # the test side's Settings holds.
        self.env = {f"SIGNOFF_{name.upper()}": str(value) for name, value in fields.items()}
        self.settings = Settings(**fields)
        self.temporal: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen | None] = [None] * workers
        self.api_process: subprocess.Popen | None = None
        self.client: Client | None = None
        self.app: Signoff | None = None
        self.api: Api | None = None
        self._starts = 0

    # ---- processes ----------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        self._starts += 1
        with open(self.tmp / f"{name}.log", "ab") as log:
            log.write(f"---- start {self._starts} at {time.time():.3f}\n".encode())
            log.flush()
            # Its own session: a kill -9 of it hits nothing else, and a Ctrl-C of pytest never hits it.
            return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **self.env, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def _kill(process: subprocess.Popen | None) -> None:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(30)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of every process's log, for an assertion message."""
        logs = sorted(self.tmp.glob("*.log"))
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in logs)

    # ---- Temporal -----------------------------------------------------------------------------
    async def start_temporal(self) -> None:
        """Start (or restart, on the same file and port) the dev server and wait until it answers."""
        assert self.temporal is None or self.temporal.poll() is not None, "Temporal is running"
        self.temporal = self._spawn("temporal", [
            temporal_binary(), "server", "start-dev", "--headless", "--ip", "127.0.0.1",
            "--port", str(self.temporal_port), "--db-filename", str(self.tmp / "temporal.sqlite"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full", "--log-level", "error",
            *search.dev_server_flags()])
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert self.temporal.poll() is None, self.log_tail()
            try:
                if self.client is None:
                    self.client = await Client.connect(self.settings.temporal_address,
                                                       data_converter=pydantic_data_converter)
                await self.client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace="default"), timeout=timedelta(seconds=2))
                return
            except Exception:  # refused or not serving yet: the server is still starting
                assert time.monotonic() < deadline, "Temporal did not start\n" + self.log_tail()
                await asyncio.sleep(0.2)

    def kill_temporal(self) -> None:
        self._kill(self.temporal)

    # ---- workers ------------------------------------------------------------------------------
    async def start_worker(self, index: int, faults: str = "") -> None:
        """Start worker `index` (optionally with a fault armed) and wait until it polls its task queue."""
        current = self.workers[index]
        assert current is None or current.poll() is not None, f"worker {index} is running"
        # The production worker, or with a fault armed the crash tests' (same activities, plus the fault).
        command = ["tests.fault_worker"] if faults else ["workers.cli", "worker"]
        process = self._spawn(f"worker-{index}", [sys.executable, "-m", *command], {"SIGNOFF_FAULTS": faults})
        self.workers[index] = process
        await self._until(lambda: self._polling(process.pid), f"worker {index} polling", process)

    def kill_worker(self, index: int) -> int:
        """kill -9 worker `index`; answers its exit code."""
        process = self.workers[index]
        assert process is not None
        self._kill(process)
        return process.returncode

    async def _polling(self, pid: int) -> bool:
        # The SDK's default identity is "pid@host": a poller with it means this very process polls.
        assert self.client is not None
        answer = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace="default", task_queue=TaskQueue(name=self.settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        return any(p.identity.startswith(f"{pid}@") for p in answer.pollers)

    # ---- API ----------------------------------------------------------------------------------
    async def start_api(self) -> None:
        assert self.api_process is None or self.api_process.poll() is not None, "the API is running"
        self.api_process = self._spawn("api", [sys.executable, "-m", "workers.cli", "api"])
        url = f"http://127.0.0.1:{self.settings.port}"

        async def ready() -> bool:
            async with httpx.AsyncClient(base_url=url, timeout=3) as http:
                return (await http.get("/readyz")).status_code == 200

        await self._until(ready, "the API ready", self.api_process)
        if self.api is None:
            limits = httpx.Limits(max_connections=50)
            self.api = Api(httpx.AsyncClient(base_url=url, timeout=60, limits=limits), self.settings)

    def kill_api(self) -> None:
        self._kill(self.api_process)

    async def _until(self, probe: Any, what: str, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert process.poll() is None, f"{what}: the process exited with {process.returncode}\n{self.log_tail()}"
            try:
                if await probe():
                    return
            except Exception:  # not answering yet
                pass
            assert time.monotonic() < deadline, f"not reached: {what}\n{self.log_tail()}"
            await asyncio.sleep(0.2)

    # ---- whole ------------------------------------------------------------------------------
    async def start(self, faults: str = "", api: bool = True) -> None:
        await self.start_temporal()
        # Opened first and alone, so the schema and tables exist before the processes start
        # (concurrent first boots on an empty schema are a separate item of issue 5).
        self.app = open_application(self.settings.event_store_url())
        for index in range(len(self.workers)):
            await self.start_worker(index, faults)
        if api:  # without it, a test drives the workflows through `client` and reads `app`
            await self.start_api()

    async def close(self) -> None:
        if self.api is not None:
            await self.api.http.aclose()
        for process in [self.api_process, *self.workers, self.temporal]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    self._kill(process)
        if self.app is not None:
            self.app.close()


@asynccontextmanager
async def production_topology(tmp: Path, event_store: str, workers: int = 2, faults: str = "", api: bool = True,
                              **settings: Any) -> AsyncIterator[Topology]:
    """Temporal, `workers` workers (with `faults` armed, see tests/fault_worker.py) and the API (unless
    `api` is false), all up."""
    topology = Topology(tmp, event_store, workers, **settings)
    try:
        await topology.start(faults, api)
        yield topology
    finally:
        await topology.close()
