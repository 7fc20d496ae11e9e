"""A webhook receiver for tests: a real HTTP server on a free port that verifies every delivery's
signature with `standardwebhooks` and answers from a script (500, 500, 200, …)."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    """`answers` is consumed one per request; when it runs out, `then` answers."""

    secrets: dict[str, str] = field(default_factory=dict)  # path -> the secret its webhook signs with
    answers: list[int] = field(default_factory=list)
    then: int = 200
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                secret = receiver.secrets.get(self.path)
                try:
                    Webhook(secret).verify(raw, headers) if secret else None
                    verified = secret is not None
                except WebhookVerificationError:
                    verified = False
                with lock:
                    status = receiver.answers.pop(0) if receiver.answers else receiver.then
                    receiver.received.append(Received(self.path, headers, json.loads(raw), verified, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
