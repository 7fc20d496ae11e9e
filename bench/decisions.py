"""Decisions per second through Signoff's HTTP API, next to bare Temporal Updates on the same dev server.

    .venv/bin/python bench/decisions.py [--deliverables N] [--approvers M] [--concurrency C]

1. bare: N trivial workflows (an update that increments a counter), M sequential updates each.
2. signoff: N deliverables under a one-stage "all of M eng" policy, approved by a1..aM, one decision
   after the other per deliverable, through the real API and a real worker.
Both keep at most C workflows/deliverables in flight; both warm up first; see bench/README.md.
With --topology processes (the default) every part runs as it does in production: the dev server,
the worker(s) and the API each in a process of its own, the load from this one; with inprocess the
worker and the API share this process (as in the API tests).
"""

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

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
    from config.settings import Settings
    from store.events import open_application
    from stores import store_url
    from workers.worker import build_worker
    from workflows import search

JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256"
REVISION = {"uri": "https://files.example/bench.pdf", "sha256": "0" * 64, "note": "bench"}


@activity.defn
async def record_nothing(count: int) -> str:
    return "x" * 1500


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

    @workflow.update
    async def increment_recorded(self) -> int:
        """The same, but through a no-op local activity whose result is as large as Signoff's chain
        view: what recording each decision costs Temporal, without the event store or the rules."""
        await workflow.execute_local_activity(record_nothing, self.count,
                                              start_to_close_timeout=timedelta(seconds=10))
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
         "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full", "--log-level", "error",
         *search.dev_server_flags()],
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


def spawn(args: list[str], env: dict[str, str], log: Path, role: str) -> subprocess.Popen:
    with open(log, "ab") as out:
        process = subprocess.Popen(args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=Path(__file__).resolve().parents[1])
    ROLES[process.pid] = role
    return process


def spawn_worker(tmp: Path, store_url: str, address: str, task_queue: str) -> subprocess.Popen:
    """One `signoff worker` process on `task_queue`, its log in tmp/worker.log."""
    return spawn([sys.executable, "-m", "workers.cli", "worker"],
                 {"SIGNOFF_EVENT_STORE": store_url, "SIGNOFF_TEMPORAL_ADDRESS": address,
                  "SIGNOFF_TASK_QUEUE": task_queue, "SIGNOFF_DATA_DIR": str(tmp)}, tmp / "worker.log", "worker")


# Which process does what, so each row can say where its CPU went: pid -> role.
ROLES: dict[int, str] = {}
LOAD = "load"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc), 0 once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_role() -> dict[str, float]:
    totals = {LOAD: cpu_seconds(os.getpid())}
    for pid, role in ROLES.items():
        totals[role] = totals.get(role, 0.0) + cpu_seconds(pid)
    return totals


async def metered(run: Awaitable[tuple[float, list[float]]]) -> "Measured":
    """`run`'s wall time and latencies, and the CPU each role spent meanwhile."""
    before = cpu_by_role()
    wall, latencies = await run
    after = cpu_by_role()
    return wall, latencies, {role: after[role] - before.get(role, 0.0) for role in after}


async def serve_bare_worker(address: str, task_queue: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    await Worker(client, task_queue=task_queue, workflows=[CounterWorkflow], activities=[record_nothing]).run()


@asynccontextmanager
async def bare_worker(client: Client, task_queue: str, topology: str, tmp: Path) -> AsyncIterator[None]:
    if topology == "inprocess":
        async with Worker(client, task_queue=task_queue, workflows=[CounterWorkflow], activities=[record_nothing]):
            yield
        return
    address = client.service_client.config.target_host
    process = spawn([sys.executable, __file__, "--serve-bare-worker", address, task_queue], {}, tmp / "bare.log",
                    "worker")
    try:
        yield
    finally:
        stop_process(process)


async def bare_run(client: Client, n: int, m: int, c: int, topology: str, tmp: Path,
                   recorded: bool = False) -> "Measured":
    task_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"

    async def start(count: int) -> list[Any]:
        async def one() -> Any:
            handle = await client.start_workflow(CounterWorkflow.run, m, id=f"bench-{uuid.uuid4()}",
                                                 task_queue=task_queue)
            await handle.query(CounterWorkflow.current)  # answered once the worker has set the workflow up
            return handle
        return list(await asyncio.gather(*(one() for _ in range(count))))

    async def update(handle: Any, step: int) -> None:
        update = CounterWorkflow.increment_recorded if recorded else CounterWorkflow.increment
        result = await handle.execute_update(update)
        assert result == step + 1, (result, step)

    async with bare_worker(client, task_queue, topology, tmp):
        await drive(await start(c), m, update, c)  # warm-up
        handles = await start(n)
        measured = await metered(drive(handles, m, update, c))
        assert all([await h.result() == m for h in handles])
    return measured


async def signoff_run(client: Client, tmp: Path, n: int, m: int, c: int, topology: str,
                      workers: int, store: str = "sqlite") -> "Measured":
    url, drop = store_url(store, tmp)
    try:
        return await _signoff_run(client, tmp, n, m, c, topology, workers, url)
    finally:
        drop()


async def _signoff_run(client: Client, tmp: Path, n: int, m: int, c: int, topology: str, workers: int,
                       event_store: str) -> "Measured":
    settings = Settings(data_dir=tmp, event_store=event_store,
                        temporal_address=client.service_client.config.target_host,
                        task_queue=f"bench-signoff-{uuid.uuid4().hex[:8]}", jwt_secret=JWT_SECRET, demo=False,
                        port=free_port())
    approvers = [f"a{i}" for i in range(1, m + 1)]
    auth = {user: {"Authorization": f"Bearer {mint_token(JWT_SECRET, user, roles)}"}
            for user, roles in [("paula", ["pmo"]), ("alice", []), *((a, []) for a in approvers)]}
    async with signoff_stack(client, settings, topology, workers, tmp):
        limits = httpx.Limits(max_connections=c + 4)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=60, limits=limits) as http:
            return await signoff_measure(http, auth, approvers, n, c)


@asynccontextmanager
async def signoff_stack(client: Client, settings: Settings, topology: str, workers: int,
                        tmp: Path) -> AsyncIterator[None]:
    """The API and the worker(s): `signoff api` and `signoff worker` processes, or both in this one."""
    if topology == "inprocess":
        worker_store = open_application(settings.event_store_url())
        server = ServerThread(create_app(settings), settings.port)
        try:
            async with build_worker(client, worker_store, settings.task_queue):
                server.start()
                await wait_until_ready(settings.port, lambda: server.is_alive())
                yield
        finally:
            server.server.should_exit = True
            await asyncio.to_thread(server.join, 10)
            worker_store.close()
        return
    env = {f"SIGNOFF_{key.upper()}": str(value) for key, value in settings.model_dump().items()}
    signoff = str(Path(sys.executable).with_name("signoff"))
    processes = [spawn([signoff, "worker"], env, tmp / f"worker-{i}.log", "worker") for i in range(workers)]
    processes.append(spawn([signoff, "api"], env, tmp / "api.log", "api"))
    try:
        await wait_until_ready(settings.port, lambda: all(p.poll() is None for p in processes))
        yield
    finally:
        for process in processes:
            stop_process(process)


async def wait_until_ready(port: int, running: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            if not running():
                raise RuntimeError("the API or a worker did not start; see the logs in the temp dir")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready")
            await asyncio.sleep(0.1)


async def signoff_measure(http: httpx.AsyncClient, auth: dict[str, dict[str, str]], approvers: list[str],
                          n: int, c: int) -> "Measured":
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
    measured = await metered(drive(ids, len(approvers), decide, c))
    for deliverable_id in ids:
        r = await http.get(f"/api/deliverables/{deliverable_id}", headers=auth["alice"])
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return measured


Measured = tuple[float, list[float], dict[str, float]]


def report(n: int, m: int, c: int, bare: Measured, recorded: Measured, signoff: Measured,
           on_postgres: Measured | None) -> None:
    print(f"{n} workflows/deliverables x {m} sequential updates/decisions, concurrency {c}")
    print(f"{'':28}{'ops':>6}{'wall s':>9}{'ops/s':>9}{'p50 ms':>9}{'p99 ms':>9}")
    rows = [("bare update", bare), ("update + local activity", recorded), ("signoff decision (HTTP)", signoff)]
    if on_postgres is not None:
        rows.append(("signoff, PostgreSQL store", on_postgres))
    for name, (wall, lat, _) in rows:
        print(f"{name:28}{len(lat):>6}{wall:>9.2f}{len(lat) / wall:>9.1f}"
              f"{percentile(lat, 0.50) * 1000:>9.1f}{percentile(lat, 0.99) * 1000:>9.1f}")
    roles = list(dict.fromkeys(role for _, (_, _, cpu) in rows for role in cpu))
    print(f"CPU ms per op{'':15}" + "".join(f"{role:>9}" for role in roles) + f"{'total':>9}")
    for name, (_, lat, cpu) in rows:
        per_op = [cpu.get(role, 0.0) * 1000 / len(lat) for role in roles]
        print(f"{name:28}" + "".join(f"{ms:>9.2f}" for ms in [*per_op, sum(per_op)]))

    def rate(measured: Measured) -> float:
        return len(measured[1]) / measured[0]

    print(f"ratio signoff_rate / bare_rate: {rate(signoff) / rate(bare):.2f}")
    print(f"ratio signoff_rate / (update + local activity)_rate: {rate(signoff) / rate(recorded):.2f}")
    print(f"ratio signoff p50 / bare p50: {percentile(signoff[1], 0.5) / percentile(bare[1], 0.5):.2f}")
    if on_postgres is not None:
        print(f"ratio signoff_rate on PostgreSQL / bare_rate: {rate(on_postgres) / rate(bare):.2f}")


async def main(n: int, m: int, c: int, topology: str, workers: int, postgresql: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="signoff-bench-"))
    process, address = start_dev_server(tmp)
    ROLES[process.pid] = "server"
    try:
        client = await connect_when_ready(address, process)
        bare = await bare_run(client, n, m, c, topology, tmp)
        recorded = await bare_run(client, n, m, c, topology, tmp, recorded=True)
        signoff = await signoff_run(client, tmp, n, m, c, topology, workers)
        on_postgres = (await signoff_run(client, tmp, n, m, c, topology, workers, "postgresql")
                       if postgresql else None)
        print(f"topology: {topology}" + (f", {workers} signoff worker process(es)" if topology == "processes" else ""))
        report(n, m, c, bare, recorded, signoff, on_postgres)
    finally:
        stop_process(process)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliverables", "-n", type=int, default=400, help="workflows/deliverables (N)")
    parser.add_argument("--approvers", "-m", type=int, default=5, help="updates/decisions per item (M)")
    parser.add_argument("--concurrency", "-c", type=int, default=8, help="items in flight at once (C)")
    parser.add_argument("--topology", choices=["processes", "inprocess"], default="processes",
                        help="API and worker(s) in processes of their own (as deployed) or in this one")
    parser.add_argument("--workers", type=int, default=1, help="signoff worker processes (processes topology)")
    parser.add_argument("--no-postgresql", action="store_true",
                        help="skip the row with the event store on PostgreSQL (127.0.0.1:5432, database test)")
    parser.add_argument("--serve-bare-worker", nargs=2, metavar=("ADDRESS", "TASK_QUEUE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare_worker:
        asyncio.run(serve_bare_worker(*args.serve_bare_worker))
    else:
        asyncio.run(main(args.deliverables, args.approvers, args.concurrency, args.topology, args.workers,
                         not args.no_postgresql))
