"""Activities of a webhook delivery: record it (local, idempotent), send one attempt (a regular
activity, so Temporal's retry policy spaces the attempts), and record how the run ended."""

import asyncio
import ipaddress
import json
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.exceptions import ApplicationError

from config.settings import Settings
from domain.application import Signoff
from domain.delivery import webhook_message_id
from domain.errors import DomainError, Invalid
from domain.notifications import Message
from domain.webhooks import check_url, derive_secret


class DeliveryInput(BaseModel):
    delivery_id: str
    project_id: str
    webhook_id: str
    url: str  # where it went when the delivery was made; each attempt goes to the webhook's url then
    message: Message
    run: int = 1
    actor: str = "signoff"  # who asked for a retry run


class Attempted(BaseModel):
    outcome: str  # delivered | unsubscribed | skipped
    status: int | None = None
    attempts: int = 1


class Outcome(BaseModel):
    delivery_id: str
    run: int
    outcome: str
    attempts: int
    last_status: int | None = None
    error: str = ""


def pinned(url: str, addresses: list[str]) -> tuple[str, dict[str, Any]]:
    """`url` aimed at the first checked address, so the connection goes where the check looked and
    not where a second lookup of the name might point (DNS rebinding); TLS still verifies the name
    (SNI and the certificate) and the Host header keeps it. No addresses: the url as it is (loopback)."""
    if not addresses:
        return url, {}
    parts = urlsplit(url)
    ip = ipaddress.ip_address(addresses[0])
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), {"sni_hostname": parts.hostname}


def resolve(host: str) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


class DeliveryActivities:
    def __init__(self, app: Signoff, settings: Settings):
        self.app = app
        self.settings = settings

    @activity.defn
    async def open_delivery(self, input: DeliveryInput) -> None:
        await asyncio.to_thread(self.app.open_delivery, uuid.UUID(input.delivery_id), input.project_id,
                                input.webhook_id, input.url, input.message.model_dump(mode="json"), input.run,
                                input.actor)

    @activity.defn
    async def send_webhook(self, input: DeliveryInput) -> Attempted:
        """One attempt. 2xx: delivered; 410: the receiver unsubscribes; anything else raises, and the
        retry policy tries again later. The same `webhook-id` on every attempt; a fresh timestamp
        and signature, so a receiver's replay window accepts a late attempt."""
        attempt = activity.info().attempt
        weak_key = self.settings.webhook_key_refusal()
        if weak_key and not self.settings.allow_local_webhooks:  # never sign to the world with a guessable key
            raise ApplicationError(weak_key, {"status": None, "attempt": attempt}, type="WebhookKeyRefused",
                                   non_retryable=True)
        webhook = await asyncio.to_thread(self._webhook, input)
        if webhook is None:  # removed since: nobody to send to
            return Attempted(outcome="skipped", attempts=attempt)
        url = webhook["url"]
        try:  # again at each attempt: a name may resolve to an internal address by now
            addresses = await asyncio.to_thread(check_url, url, self.settings.allow_local_webhooks, resolve)
        except Invalid as exc:
            raise ApplicationError(exc.detail, {"status": None, "attempt": attempt}, type="WebhookRefusedUrl") from None
        body = json.dumps(input.message.body, separators=(",", ":"))
        secret = derive_secret(self.settings.webhook_key.encode(), input.webhook_id, webhook["generation"])
        message_id = webhook_message_id(input.delivery_id)
        now = datetime.now(UTC)
        headers = {"content-type": "application/json", "user-agent": "Signoff-Webhooks/1",
                   "webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
                   "webhook-signature": Webhook(secret).sign(message_id, now, body)}
        target, extensions = pinned(url, addresses)
        if extensions:
            headers["host"] = urlsplit(url).netloc
        try:
            async with httpx.AsyncClient(timeout=self.settings.webhook_attempt_timeout_seconds,
                                         follow_redirects=False) as http:
                # Only the status counts: the answer's body is never read (a receiver cannot fill the worker).
                async with http.stream("POST", target, content=body.encode(), headers=headers,
                                       extensions=extensions) as answer:
                    status = answer.status_code
        except httpx.HTTPError as exc:
            raise ApplicationError(f"{type(exc).__name__}: {exc}", {"status": None, "attempt": attempt},
                                   type="WebhookUnreachable") from None
        if 200 <= status < 300:
            return Attempted(outcome="delivered", status=status, attempts=attempt)
        if status == 410:
            return Attempted(outcome="unsubscribed", status=410, attempts=attempt)
        raise ApplicationError(f"the receiver answered {status}", {"status": status, "attempt": attempt},
                               type="WebhookNotAccepted")

    @activity.defn
    async def record_delivery_outcome(self, outcome: Outcome) -> None:
        try:
            await asyncio.to_thread(self.app.record_delivery_outcome, uuid.UUID(outcome.delivery_id), outcome.run,
                                    outcome.outcome, outcome.attempts, outcome.last_status, outcome.error)
        except DomainError as exc:
            raise ApplicationError(exc.detail, type=type(exc).__name__, non_retryable=True) from None

    def _webhook(self, input: DeliveryInput) -> dict[str, Any] | None:
        return self.app.get_project(input.project_id).webhooks.get(input.webhook_id)

    def all(self) -> list[Callable[..., Any]]:
        return [self.open_delivery, self.send_webhook, self.record_delivery_outcome]
