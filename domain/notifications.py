"""What people are told: the messages a recorded event makes, and whom each is for. Pure.

`messages_for(event)` turns one recorded event of a deliverable or a dependency into the messages
it asks a person to act on or tells them an outcome of (none for most events). A message's `key`
names the event it came from (aggregate id and version), so everything made from it (a webhook
delivery, its `webhook-id`) is derived, and a redelivery carries the same id.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

# Every message type, in the order a reader meets them; the gate events join later.
TYPES = ("review.requested", "reminder.sent", "escalation.raised", "deliverable.approved", "deliverable.rejected",
         "deliverable.changes_requested", "dependency.stalled", "dependency.overdue", "dependency.resolved")


class Subject(BaseModel):
    """What a message is about: a deliverable or a dependency, and where to read it."""

    model_config = ConfigDict(frozen=True)
    kind: str
    id: str
    title: str
    url: str


class RecordedEvent(BaseModel):
    """One recorded event, as the notifier reads it: its aggregate, its name and its fields."""

    model_config = ConfigDict(frozen=True)
    subject: Subject
    project_id: str
    project_name: str
    name: str  # the event class name: StageOpened, Escalated, ...
    version: int
    at: datetime
    fields: dict[str, Any]
    # Who is told of outcomes: the deliverable's submitter, the dependency's requester.
    owner_of_subject: str


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str  # "<aggregate id>:<version>", with a suffix when one event makes several messages
    type: str
    timestamp: datetime
    project_id: str
    recipients: list[str]
    body: dict[str, Any]  # {"type", "timestamp", "data", "text"}: what a webhook receives


def messages_for(event: RecordedEvent) -> list[Message]:
    """The messages `event` makes (most events make none)."""
    made = _deliverable(event) if event.subject.kind == "deliverable" else _dependency(event)
    return [_message(event, kind, recipients, extra, text) for kind, recipients, extra, text in made]


Made = list[tuple[str, list[str], dict[str, Any], str]]


def _deliverable(event: RecordedEvent) -> Made:
    f, title = event.fields, event.subject.title
    match event.name:
        case "StageOpened":
            stage = f.get("stage_name") or f"stage {f['index'] + 1}"
            return [("review.requested", list(f["approvers"]), {"stage": stage, "stage_index": f["index"]},
                     f"{title}: your review is requested ({stage})")]
        case "ReminderSent":
            return [("reminder.sent", list(f["to"]), {"stage_index": f["stage_index"], "level": f["level"]},
                     f"Reminder: {title} still waits for your review")]
        case "Escalated":
            return [_escalation(event, f"{title} has waited too long for its review")]
        case "Approved":
            return [("deliverable.approved", [event.owner_of_subject], {"actor": f["actor"]},
                     f"{title} is approved")]
        case "Rejected":
            return [("deliverable.rejected", [event.owner_of_subject], {"actor": f["actor"]},
                     f"{title} was rejected by {f['actor']}")]
        case "ChangesRequested":
            return [("deliverable.changes_requested", [event.owner_of_subject],
                     {"actor": f["actor"], "stage_index": f["stage_index"]},
                     f"{f['actor']} asks for changes to {title}")]
    return []


def _dependency(event: RecordedEvent) -> Made:
    f, title = event.fields, event.subject.title
    match event.name:
        case "ReminderSent":
            return [("reminder.sent", list(f["to"]), {"due_at": f.get("due_at")},
                     f"Reminder: {title} is needed soon")]
        case "Stalled":
            return [("dependency.stalled", list(f["told"]), {"due_at": f.get("due_at")},
                     f"{title} has stalled: no progress reported in time")]
        case "Escalated":
            return [_escalation(event, f"{title} is stalled")]
        case "BecameOverdue":
            return [("dependency.overdue", list(f["told"]), {"due_at": f.get("due_at")},
                     f"{title} is overdue")]
        case "Resolved":
            return [("dependency.resolved", [event.owner_of_subject], {"actor": f["actor"], "note": f.get("note", "")},
                     f"{title} is resolved")]
    return []


def _escalation(event: RecordedEvent, why: str) -> tuple[str, list[str], dict[str, Any], str]:
    f = event.fields
    notified, granted = list(f["notified"]), list(f["granted"])
    text = f"Escalation level {f['level']}: {why}" + (f"; {', '.join(granted)} may now decide in place" if granted else "")
    return ("escalation.raised", _unique(notified + granted),
            {"level": f["level"], "notified": notified, "granted": granted}, text)


def _message(event: RecordedEvent, kind: str, recipients: list[str], extra: dict[str, Any], text: str) -> Message:
    data = {"project": {"id": event.project_id, "name": event.project_name},
            "subject": event.subject.model_dump(), "recipients": recipients, **extra}
    return Message(key=f"{event.subject.id}:{event.version}", type=kind, timestamp=event.at,
                   project_id=event.project_id, recipients=recipients,
                   body={"type": kind, "timestamp": event.at.isoformat(), "data": data, "text": text})


def _unique(people: list[str]) -> list[str]:
    return list(dict.fromkeys(people))
