"""`signoff dev --webhook-log`: the local receiver verifies each delivery with the secret derived for
the webhook of the project the body names (any generation so far) and appends one JSON line each."""

import json
import uuid
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from domain.webhooks import derive_secret
from tests.builders import make_project
from workers.webhook_log import WebhookLog

KEY = "dev-key"


def send(url: str, secret: str, project_id: str, text: str) -> None:
    body = json.dumps({"type": "review.requested", "timestamp": "2026-11-28T10:00:00Z",
                       "data": {"project": {"id": project_id, "name": "Northwind"}}, "text": text})
    message_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {"content-type": "application/json", "webhook-id": message_id,
               "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(message_id, now, body)}
    assert httpx.post(url, content=body, headers=headers).status_code == 204


def test_each_delivery_is_appended_with_whether_it_verified(sqlite_app, tmp_path):
    project_id = make_project(sqlite_app)
    project = sqlite_app.get_project(project_id)
    [webhook_id] = project.set_webhooks("paula", "watch", [{"url": "http://127.0.0.1:1/hook"}], uuid.uuid4)
    sqlite_app.save(project)
    log = WebhookLog(tmp_path / "hooks.jsonl", sqlite_app, KEY).start()
    try:
        send(log.url, derive_secret(KEY.encode(), webhook_id, 1), project_id, "first")
        sqlite_app.rotate_webhook_secret(project_id, webhook_id, "paula")
        send(log.url, derive_secret(KEY.encode(), webhook_id, 2), project_id, "after rotation")
        send(log.url, derive_secret(b"another key", webhook_id, 1), project_id, "forged")
    finally:
        log.stop()
    lines = [json.loads(line) for line in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert [(x["text"], x["verified"], x["webhook"]) for x in lines] == [
        ("first", True, webhook_id), ("after rotation", True, webhook_id), ("forged", False, None)]
    assert all(x["webhook-id"].startswith("msg_") and x["type"] == "review.requested" for x in lines)
