"""Decisions per second through Signoff's HTTP API, next to bare Temporal Updates on the same dev server.

    .venv/bin/python bench/decisions.py [--deliverables N] [--approvers M] [--concurrency C]

1. bare: N trivial workflows (an update that increments a counter), M sequential updates each.
2. signoff: N deliverables under a one-stage "all of M eng" policy, approved by a1..aM, one decision
   after the other per deliverable, through the real API (uvicorn in a thread) and a real worker.
Both keep at most C workflows/deliverables in flight; both warm up first; see bench/README.md.
"""

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio import workflow

# The workflow sandbox re-imports this module for CounterWorkflow; the rest is none of its business.
with workflow.unsafe.imports_passed_through():
    import httpx
    import uvicorn
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Worker

    from api.app import create_app
    from api.auth import mint_token
    from domain.storage import open_application
    from workers.settings import Settings
    from workers.worker import build_worker

JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256"
REVISION = {"uri": "https://files.example/bench.pdf", "sha256": "0" * 64, "note": "bench"}


@workflow.defn
class CounterWorkflow:
    """The bare baseline: an Update that only counts; the run ends after `updates` of them."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self, updates: int) -> int:
        await workflow.wait_condition(lambda: self.count >= updates and workflow.all_handlers_finished())
        return self.count

    @workflow.update
    def increment(self) -> int:
        self.count += 1
        return self.count

    @workflow.query
    def current(self) -> int:
        return self.count


# ---- infrastructure ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dev_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    binary = Path(sys.executable).with_name("temporal")
    port = free_port()
    log = open(tmp / "temporal.log", "wb")
    process = subprocess.Popen(
        [str(binary), "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
         "--db-filename", str(tmp / "temporal.sqlite"),
         "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full", "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return process, f"127.0.0.1:{port}"


async def connect_when_ready(address: str, process: subprocess.Popen, timeout: float = 60) -> Client:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"temporal dev server exited with {process.returncode}")
        try:
            client = await Client.connect(address, data_converter=pydantic_data_converter)
            await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))
            return client
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ServerThread(threading.Thread):
    def __init__(self, app: Any, port: int):
        super().__init__(daemon=True)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))

    def run(self) -> None:
        self.server.run()


# ---- measurement ------------------------------------------------------------------------------

Op = Callable[[Any, int], Awaitable[None]]


async def drive(items: list[Any], steps: int, op: Op, concurrency: int) -> tuple[float, list[float]]:
    """`op(item, step)` for step 0..steps-1 in order per item, at most `concurrency` items at once."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(item: Any) -> None:
        async with gate:
            for step in range(steps):
                started = time.perf_counter()
                await op(item, step)
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(item) for item in items))
    return time.perf_counter() - started, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bare_run(client: Client, n: int, m: int, c: int) -> tuple[float, list[float]]:
    task_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"

    async def start(count: int) -> list[Any]:
        async def one() -> Any:
            handle = await client.start_workflow(CounterWorkflow.run, m, id=f"bench-{uuid.uuid4()}",
                                                 task_queue=task_queue)
            await handle.query(CounterWorkflow.current)  # answered once the worker has set the workflow up
            return handle
        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def update(handle: Any, step: int) -> None:
        result = await handle.execute_update(CounterWorkflow.increment)
        assert result == step + 1, (result, step)

    async with Worker(client, task_queue=task_queue, workflows=[CounterWorkflow]):
        await drive(await start(c), m, update, c)  # warm-up
        handles = await start(n)
        measured = await drive(handles, m, update, c)
        assert all([await h.result() == m for h in handles])
    return measured


async def signoff_run(client: Client, tmp: Path, n: int, m: int, c: int) -> tuple[float, list[float]]:
    settings = Settings(data_dir=tmp, event_store=f"sqlite:///{tmp / 'events.sqlite'}",
                        temporal_address=client.service_client.config.target_host,
                        task_queue=f"bench-signoff-{uuid.uuid4().hex[:8]}", jwt_secret=JWT_SECRET, demo=False)
    approvers = [f"a{i}" for i in range(1, m + 1)]
    auth = {user: {"Authorization": f"Bearer {mint_token(JWT_SECRET, user, roles)}"}
            for user, roles in [("paula", ["pmo"]), ("alice", []), *((a, []) for a in approvers)]}
    worker_store = open_application(settings.event_store_url())
    port = free_port()
    server = ServerThread(create_app(settings), port)
    try:
        async with build_worker(client, worker_store, settings.task_queue):
            server.start()
            while not server.server.started:
                if not server.is_alive():
                    raise RuntimeError("the API did not start")
                await asyncio.sleep(0.02)
            limits = httpx.Limits(max_connections=c + 4)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits) as http:
                return await signoff_measure(http, auth, approvers, n, c)
    finally:
        server.server.should_exit = True
        await asyncio.to_thread(server.join, 10)
        worker_store.close()


async def signoff_measure(http: httpx.AsyncClient, auth: dict[str, dict[str, str]], approvers: list[str],
                          n: int, c: int) -> tuple[float, list[float]]:
    members = [{"user": "alice", "roles": ["author"]}, *({"user": a, "roles": ["eng"]} for a in approvers)]
    r = await http.post("/api/projects", headers=auth["paula"], json={"name": "Bench", "members": members})
    assert r.status_code == 201, r.text
    project_id = r.json()["id"]
    policy = f"bench-{uuid.uuid4().hex[:8]}"
    r = await http.put(f"/api/policies/{policy}", headers=auth["paula"], json={
        "stages": [{"name": "engineering", "rule": "all", "approvers": {"roles": ["eng"]}}]})
    assert r.status_code == 201, r.text

    async def submit(count: int) -> list[str]:
        gate = asyncio.Semaphore(c)

        async def one() -> str:
            async with gate:
                r = await http.post("/api/deliverables", headers=auth["alice"], json={
                    "project_id": project_id, "title": "Bench deliverable", "policy": policy, "revision": REVISION})
                assert r.status_code == 201, r.text
                return r.json()["id"]
        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def decide(deliverable_id: str, step: int) -> None:
        r = await http.post(f"/api/deliverables/{deliverable_id}/decisions", headers=auth[approvers[step]],
                            json={"verdict": "approve", "revision": 1})
        assert r.status_code == 200, r.text
        expected = "approved" if step == len(approvers) - 1 else "in_review"
        assert r.json()["status"] == expected, (step, r.json()["status"])

    await drive(await submit(c), len(approvers), decide, c)  # warm-up
    ids = await submit(n)
    measured = await drive(ids, len(approvers), decide, c)
    for deliverable_id in ids:
        r = await http.get(f"/api/deliverables/{deliverable_id}", headers=auth["alice"])
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return measured


def report(n: int, m: int, c: int, bare: tuple[float, list[float]], signoff: tuple[float, list[float]]) -> None:
    print(f"{n} workflows/deliverables x {m} sequential updates/decisions, concurrency {c}")
    print(f"{'':18}{'ops':>6}{'wall s':>9}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name, (wall, lat) in (("bare update", bare), ("signoff decision", signoff)):
        print(f"{name:18}{len(lat):>6}{wall:>9.2f}{len(lat) / wall:>9.1f}"
              f"{percentile(lat, 0.50) * 1000:>9.1f}{percentile(lat, 0.99) * 1000:>9.1f}")
    ratio = (len(signoff[1]) / signoff[0]) / (len(bare[1]) / bare[0])
    print(f"ratio signoff_rate / bare_rate: {ratio:.2f}")


async def main(n: int, m: int, c: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="signoff-bench-"))
    process, address = start_dev_server(tmp)
    try:
        client = await connect_when_ready(address, process)
        bare = await bare_run(client, n, m, c)
        signoff = await signoff_run(client, tmp, n, m, c)
        report(n, m, c, bare, signoff)
    finally:
        stop_process(process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliverables", "-n", type=int, default=400, help="workflows/deliverables (N)")
    parser.add_argument("--approvers", "-m", type=int, default=5, help="updates/decisions per item (M)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="items in flight at once (C)")
    args = parser.parse_args()
    asyncio.run(main(args.deliverables, args.approvers, args.concurrency))
