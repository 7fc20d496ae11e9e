"""The Delivery aggregate: what became of one message sent to one webhook.

Its id is derived from the webhook and the message (`delivery_id`), so the notifier that meets the
same event twice makes the same delivery, and the receiver sees the same `webhook-id` on every
attempt and every redelivery. Each run of attempts (the first, then each retry someone asks for)
ends in one recorded outcome; recording a run's outcome again changes nothing.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict

Outcome = Literal["delivered", "failed", "unsubscribed", "skipped"]
NAMESPACE = uuid.UUID("0f1d6f9e-5b0c-4e0a-9a55-6b8f7f0b7c11")


def delivery_id(webhook_id: str, message_key: str, message_type: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{webhook_id}\n{message_key}\n{message_type}")


def webhook_message_id(delivery: uuid.UUID | str) -> str:
    """The `webhook-id` header: the same for every attempt of one message to one webhook."""
    return f"msg_{uuid.UUID(str(delivery)).hex}"


class Delivery(Aggregate):
    @event("Started")
    def __init__(self, project_id: str, webhook_id: str, url: str, message: dict[str, Any], at: str) -> None:
        self.project_id = project_id
        self.webhook_id = webhook_id
        self.url = url
        self.message = message  # {"key", "type", "timestamp", "recipients", "body"}
        self.created_at = datetime.fromisoformat(at)
        self.runs = 1
        self.outcomes: list[dict[str, Any]] = []  # one per finished run

    @classmethod
    def start(cls, uid: uuid.UUID, project_id: str, webhook_id: str, url: str, message: dict[str, Any]) -> "Delivery":
        return cls._create(cls.Started, id=uid, project_id=project_id, webhook_id=webhook_id, url=url,
                           message=message, at=datetime.now(UTC).isoformat())

    @property
    def status(self) -> str:
        """`pending` while a run is under way, else the last run's outcome."""
        return self.outcomes[-1]["outcome"] if len(self.outcomes) == self.runs else "pending"

    def record_outcome(self, run: int, outcome: Outcome, attempts: int, last_status: int | None,
                       error: str = "") -> None:
        """The end of run `run` (1 for the first). Recording it again does nothing."""
        if run <= len(self.outcomes):
            return
        if run != self.runs:
            raise Conflict(f"run {run} of this delivery was never started")
        self._record_outcome(run=run, outcome=outcome, attempts=attempts, last_status=last_status, error=error,
                             at=datetime.now(UTC).isoformat())

    def retry(self, actor: str) -> int:
        """Start another run of attempts (only after a failed one); answer its number."""
        if self.status != "failed":
            raise Conflict(f"only a failed delivery is sent again; this one is {self.status}")
        self._retry(actor=actor, run=self.runs + 1, at=datetime.now(UTC).isoformat())
        return self.runs

    @event("OutcomeRecorded")
    def _record_outcome(self, run: int, outcome: str, attempts: int, last_status: int | None, error: str,
                        at: str) -> None:
        self.outcomes.append({"run": run, "outcome": outcome, "attempts": attempts, "last_status": last_status,
                              "error": error, "at": at})

    @event("RetryRequested")
    def _retry(self, actor: str, run: int, at: str) -> None:
        self.runs = run

    def to_state(self) -> dict[str, Any]:
        last = self.outcomes[-1] if self.outcomes else None
        return {"id": str(self.id), "project_id": self.project_id, "webhook_id": self.webhook_id,
                "webhook_message_id": webhook_message_id(self.id), "type": self.message["type"],
                "subject": self.message["body"]["data"]["subject"], "status": self.status, "runs": self.runs,
                "attempts": sum(o["attempts"] for o in self.outcomes), "last_status": last and last["last_status"],
                "error": last["error"] if last else "", "outcomes": self.outcomes,
                "created_at": self.created_at.isoformat(), "updated_at": (last["at"] if last else
                                                                          self.created_at.isoformat()),
                "version": self.version}
