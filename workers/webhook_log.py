"""`signoff dev --webhook-log FILE`: a local webhook receiver for watching messages arrive.

A plain http.server on 127.0.0.1 and a free port, in a thread of the `signoff dev` process. Any path
takes a delivery. It cannot know secrets up front, and none are stored: it reads the project the body
names from the event store and tries the secret of each of its webhooks (every generation so far),
derived from the dev webhook key as the sender derives it, with `standardwebhooks`. Each delivery is
appended to FILE as one JSON line: when, the headers that matter, whether it verified (and for which
webhook), the message type and text, and the body. It always answers 204, so nothing is retried.
"""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from domain.application import Signoff
from domain.errors import DomainError
from domain.webhooks import derive_secret


class WebhookLog:
    def __init__(self, path: Path, app: Signoff, webhook_key: str, port: int = 0):
        self.path, self.app, self.key = path, app, webhook_key.encode()
        self.lock = threading.Lock()
        log = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                log.record(raw, {k.lower(): v for k, v in self.headers.items()}, self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-log", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> "WebhookLog":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def verify(self, raw: bytes, headers: dict[str, str], body: Any) -> str | None:
        """The id of the webhook whose secret signed it, or None."""
        try:
            project = self.app.get_project(body["data"]["project"]["id"])
        except (DomainError, KeyError, TypeError):
            return None
        for webhook in project.webhooks.values():
            for generation in range(webhook["generation"], 0, -1):
                try:
                    Webhook(derive_secret(self.key, webhook["id"], generation)).verify(raw, headers)
                    return webhook["id"]
                except WebhookVerificationError:
                    continue
        return None

    def record(self, raw: bytes, headers: dict[str, str], path: str) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        try:
            webhook_id = self.verify(raw, headers, body)
        except Exception:  # noqa: BLE001 - a store that cannot answer: recorded as not verified
            webhook_id = None
        line = {"received_at": datetime.now(UTC).isoformat(), "path": path,
                "webhook-id": headers.get("webhook-id"), "verified": webhook_id is not None,
                "webhook": webhook_id, "type": body.get("type") if isinstance(body, dict) else None,
                "text": body.get("text") if isinstance(body, dict) else None, "body": body}
        with self.lock, self.path.open("a") as out:
            out.write(json.dumps(line) + "\n")
