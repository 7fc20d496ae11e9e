"""The audit trail: one row per recorded event, of every aggregate, chained by SHA-256.

A row says who did what to which thing, when and why, in one shape for every kind of thing; the
rows are made from the events alone, so the event store can always make them again and anyone can
check that the trail shows what the store holds. Pure: no SQL, no HTTP.

The chain: `hash = SHA-256(bytes.fromhex(prev_hash) + canonical(row without "hash" and "prev_hash"))`,
where the first row's `prev_hash` is 64 zeros. `canonical` is RFC 8785 (JSON Canonicalization Scheme) for the values
rows hold: objects with keys sorted, no whitespace, strings as JSON escapes them with non-ASCII kept
as UTF-8, integers, booleans and null. Rows hold no floats (a float in an event is written as its
text), and every key is ASCII, so sorting by code point is sorting by UTF-16 unit as RFC 8785 asks.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from domain.commands import SYSTEM_ACTOR
from domain.history import correlation_of
from domain.webhooks import masked

GENESIS = "0" * 64
# Event fields that are plumbing, not facts: never in `details`.
PLUMBING = {"originator_id", "originator_version", "timestamp", "originator_topic", "command_id", "actor", "on_behalf_of", "reason",
            "comment", "at", "submitter", "created_by"}

# The stable action name of each event (topic's class path); new events get `kind.snake_case` until named here.
ACTIONS = {
    "Project.Created": "project.created",
    "Project.CharterChanged": "project.charter.changed",
    "Project.WebhookAdded": "project.webhook.added",
    "Project.WebhookChanged": "project.webhook.changed",
    "Project.WebhookRemoved": "project.webhook.removed",
    "Project.WebhookSecretRotated": "project.webhook.secret_rotated",
    "Policy.Created": "policy.created",
    "Policy.VersionPublished": "policy.published",
    "Deliverable.Submitted": "deliverable.submitted",
    "Deliverable.StageOpened": "deliverable.stage.opened",
    "Deliverable.StagePassed": "deliverable.stage.passed",
    "Deliverable.Reassigned": "deliverable.stage.reassigned",
    "Deliverable.Approved": "deliverable.approved",
    "Deliverable.Rejected": "deliverable.rejected",
    "Deliverable.ChangesRequested": "deliverable.changes_requested",
    "Deliverable.RevisionSubmitted": "deliverable.revision.submitted",
    "Deliverable.Withdrawn": "deliverable.withdrawn",
    "Deliverable.ReminderSent": "reminder.sent",
    "Deliverable.SlaBreached": "sla.breached",
    "Deliverable.Escalated": "escalation.raised",
    "Dependency.Opened": "dependency.opened",
    "Dependency.Acknowledged": "dependency.acknowledged",
    "Dependency.ProgressReported": "dependency.progress.reported",
    "Dependency.Resolved": "dependency.resolved",
    "Dependency.Cancelled": "dependency.cancelled",
    "Dependency.OwnerReassigned": "dependency.owner.reassigned",
    "Dependency.ReminderSent": "reminder.sent",
    "Dependency.Stalled": "dependency.stalled",
    "Dependency.Escalated": "escalation.raised",
    "Dependency.BecameOverdue": "dependency.overdue",
    "FeedTokens.Created": "feed_token.user_added",
    "FeedTokens.Issued": "feed_token.issued",
    "FeedTokens.Revoked": "feed_token.revoked",
    "Delivery.Started": "delivery.started",
    "Delivery.RetryRequested": "delivery.retry_requested",
}
# A decision's action names its verdict; a delivery outcome names the outcome.
VERDICTS = {"approve": "deliverable.decision.approved", "reject": "deliverable.decision.rejected",
            "request_changes": "deliverable.decision.changes_requested"}
KINDS = {"Project": "project", "Policy": "policy", "Deliverable": "deliverable", "Dependency": "dependency",
         "Delivery": "delivery", "FeedTokens": "feed_tokens"}
# The events that make a thing: what the rest of its rows are named after.
CREATIONS = {"Project.Created", "Policy.Created", "Deliverable.Submitted", "Dependency.Opened", "Delivery.Started",
             "FeedTokens.Created"}


def action_of(name: str, fields: dict[str, Any]) -> str:
    """`name` is the event's class path within its module (`Deliverable.DecisionRecorded`)."""
    if name == "Deliverable.DecisionRecorded":
        return VERDICTS.get(fields.get("verdict", ""), "deliverable.decision.recorded")
    if name == "Delivery.OutcomeRecorded":
        return f"delivery.{fields.get('outcome', 'recorded')}"
    known = ACTIONS.get(name)
    if known:
        return known
    kind, _, event = name.partition(".")
    return f"{KINDS.get(kind, kind.lower())}.{re.sub(r'(?<!^)(?=[A-Z])', '_', event).lower()}"


def all_actions() -> list[str]:
    """Every action name a row can carry (for the README and for checking `action` filters)."""
    return sorted({*ACTIONS.values(), *VERDICTS.values(), "deliverable.decision.recorded",
                   *(f"delivery.{o}" for o in ("delivered", "failed", "unsubscribed", "skipped"))})


@dataclass
class Subject:
    """What the rows of one aggregate are named after, learnt from its first event and kept up to date."""
    kind: str
    id: str
    title: str
    project_id: str | None
    other_project_id: str | None = None  # a dependency's providing project: its members see the rows too
    revision: int | None = None  # a deliverable's current revision
    workflow_id: str | None = None
    # The last command recorded on it and its actor: the events that command caused in the same
    # save (a stage opened by a decision) carry no command id and take its correlation, as in history.
    cause: str | None = None
    cause_actor: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Subject":
        return cls(**json.loads(text))


def subject_of(name: str, uid: str, fields: dict[str, Any]) -> Subject:
    """The subject a creation event makes."""
    kind = KINDS.get(name.partition(".")[0], name.partition(".")[0].lower())
    if kind == "project":
        return Subject(kind, uid, fields.get("name", ""), uid)
    if kind == "policy":
        return Subject(kind, uid, fields.get("name", ""), None)
    if kind == "deliverable":
        return Subject(kind, uid, fields.get("title", ""), fields.get("project_id"), revision=1,
                       workflow_id=f"deliverable-{uid}")
    if kind == "dependency":
        providing = fields.get("providing_project_id")
        return Subject(kind, uid, fields.get("title", ""), fields.get("project_id"),
                       providing if providing != fields.get("project_id") else None,
                       workflow_id=f"dependency-{uid}")
    if kind == "delivery":
        message = fields.get("message") or {}
        title = f"{message.get('type', 'message')} to webhook {fields.get('webhook_id', '')}"
        return Subject(kind, uid, title, fields.get("project_id"), workflow_id=f"delivery-{uid}")
    if kind == "feed_tokens":  # a user's calendar feed tokens: global rows, as only pmo and admin see them
        return Subject(kind, uid, f"calendar feed of {fields.get('user', '')}", None)
    return Subject(kind, uid, "", None)


def plain(value: Any) -> Any:
    """A JSON value the canonical form holds exactly: no floats, no tuples, no UUIDs or datetimes."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # UUIDs, floats (as their text), anything else


def canonical(row: dict[str, Any]) -> bytes:
    """RFC 8785 for rows (plain JSON values, no floats): orjson with sorted keys writes exactly what
    `json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` does, several times faster."""
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def content_of(row: dict[str, Any]) -> dict[str, Any]:
    """What a row's hash covers: all of it but its own `hash` and `prev_hash` (chained outside)."""
    return {k: v for k, v in row.items() if k not in ("hash", "prev_hash")}


def row_hash(prev_hash: str, content: dict[str, Any] | bytes) -> str:
    """SHA-256 of the previous row's hash (its 32 bytes) followed by the row's canonical JSON without
    `hash` and `prev_hash`."""
    text = content if isinstance(content, bytes) else canonical(content)
    return hashlib.sha256(bytes.fromhex(prev_hash) + text).hexdigest()


def with_hashes(content: str, prev_hash: str, digest: str) -> str:
    """The canonical JSON of the whole row from that of its content: `hash` and `prev_hash` go where
    sorting puts them, before the top-level `on_behalf_of` and `project_id` (the last of each: keys
    nested in `details` come earlier, and no string holds an unescaped quote)."""
    at = content.rfind(',"on_behalf_of":')
    text = f'{content[:at]},"hash":"{digest}"{content[at:]}'
    at = text.rfind(',"project_id":')
    return f'{text[:at]},"prev_hash":"{prev_hash}"{text[at:]}'


@dataclass
class Chain:
    """Turns events, in the store's order, into hash-chained rows. `subjects` and the head carry over
    between batches (and between runs, from the view)."""
    seq: int = 0
    head: str = GENESIS
    subjects: dict[str, Subject] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)  # subjects changed since `take_changed`

    def add(self, position: int, name: str, uid: str, version: int, recorded_at: datetime,
            fields: dict[str, Any]) -> dict[str, Any]:
        """The row of one event: `name` is its class path (`Deliverable.DecisionRecorded`), `fields` its
        attributes other than the originator's id, version and timestamp."""
        return self.add_text(position, name, uid, version, recorded_at, fields)[0]

    def add_text(self, position: int, name: str, uid: str, version: int, recorded_at: datetime,
                 fields: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The row of one event and its canonical JSON (what the view stores and serves)."""
        subject = self.subjects.get(uid)
        if subject is None or name in CREATIONS:
            subject = self.subjects[uid] = subject_of(name, uid, fields)
            self.changed.add(uid)
        if name == "Deliverable.RevisionSubmitted":
            subject.revision = fields.get("number", subject.revision)
            self.changed.add(uid)
        self.seq += 1
        row = {"seq": self.seq, **self.row(position, name, subject, version, recorded_at, fields)}
        command_id = fields.get("command_id") or None
        if command_id is not None:
            subject.cause, subject.cause_actor = command_id, row["actor"]
            self.changed.add(uid)
        elif subject.cause is not None and fields.get("actor") == subject.cause_actor:
            row["correlation"] = correlation_of(subject.cause, subject.workflow_id)
        content = canonical(row)
        prev_hash, digest = self.head, row_hash(self.head, content)
        row["prev_hash"], row["hash"] = prev_hash, digest
        self.head = digest
        return row, with_hashes(content.decode(), prev_hash, digest)

    @staticmethod
    def row(position: int, name: str, subject: Subject, version: int, recorded_at: datetime,
            fields: dict[str, Any]) -> dict[str, Any]:
        actor = fields.get("actor") or fields.get("submitter") or fields.get("created_by") or SYSTEM_ACTOR
        if subject.kind == "feed_tokens":  # a feed token is issued to, and revoked by or for, its user
            actor = subject.title.removeprefix("calendar feed of ") or actor
        details = {k: plain(v) for k, v in fields.items() if k not in PLUMBING}
        if name.startswith("Project.Webhook") and "url" in details:
            details["url"] = masked(details["url"])
        if name == "Delivery.Started":
            details = {"webhook_id": details.get("webhook_id"), "url": masked(details.get("url", "")),
                       "type": (details.get("message") or {}).get("type")}
        revision = fields.get("revision") if isinstance(fields.get("revision"), int) else subject.revision
        if name == "Deliverable.Submitted":
            revision = 1
            details.pop("revision", None)  # the first revision's content is in `details` below
            details.update({k: plain(v) for k, v in (fields.get("revision") or {}).items()})
        return {
            "position": position, "version": version,
            "at": plain(fields.get("at")) or recorded_at.isoformat(), "recorded_at": recorded_at.isoformat(),
            "actor": actor, "on_behalf_of": plain(fields.get("on_behalf_of") or []),
            "action": action_of(name, fields),
            "subject": {"kind": subject.kind, "id": subject.id, "title": subject.title},
            "project_id": subject.project_id, "revision": revision,
            "reason": fields.get("reason") or fields.get("comment") or None,
            "details": details, "correlation": correlation_of(fields.get("command_id"), subject.workflow_id),
        }

    def take_changed(self) -> list[Subject]:
        """Copies of the subjects changed since the last call, as they stand now (later events change
        the live ones while these are being written)."""
        changed = [replace(self.subjects[uid]) for uid in self.changed]
        self.changed = set()
        return changed


# ---- checking a trail ---------------------------------------------------------------------------
@dataclass
class Broken:
    seq: int
    why: str


def check_links(rows: Iterable[dict[str, Any]], start_hash: str = GENESIS,
                start_seq: int = 0) -> Iterator[tuple[dict[str, Any], Broken | None]]:
    """Each row with the first way it breaks the chain, if it does: its hash is not that of its
    content, it does not follow the row before, or a row is missing between them."""
    head, seq = start_hash, start_seq
    for row in rows:
        broken = None
        if row.get("seq") != seq + 1:
            broken = Broken(seq + 1, f"row {seq + 1} is missing: the next row is {row.get('seq')}")
        elif row.get("prev_hash") != head:
            broken = Broken(row["seq"], "its prev_hash is not the hash of the row before it (a row was "
                                        "removed, inserted or reordered)")
        elif row_hash(head, content_of(row)) != row.get("hash"):
            broken = Broken(row["seq"], "its content does not match its hash (the row was edited)")
        yield row, broken
        head, seq = row.get("hash", ""), row.get("seq", seq + 1)


def checkpoint_message(seq: int, head: str, at: str) -> bytes:
    """What a checkpoint signs: the chain's length and head at a moment."""
    return canonical({"seq": seq, "hash": head, "at": at})


def parse_uuid(value: str) -> str | None:
    try:
        return str(UUID(value))
    except ValueError:
        return None


# ---- checkpoints ----------------------------------------------------------------------------------
def key_id(public_key: bytes) -> str:
    """A short name for a public key (raw 32 bytes): which key signed a checkpoint."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def signature_ok(checkpoint: dict[str, Any], public_key: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            bytes.fromhex(checkpoint["signature"]),
            checkpoint_message(checkpoint["seq"], checkpoint["hash"], checkpoint["at"]))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        return False
    return True


# ---- verifying a trail against the events it came from -------------------------------------------
@dataclass
class Report:
    ok: bool = True
    rows: int = 0  # rows the events make
    view_rows: int = 0  # rows the view holds
    first_broken: Broken | None = None
    checkpoints: int = 0
    checkpoints_verified: int = 0
    last_checkpoint_seq: int | None = None

    def fail(self, seq: int, why: str) -> None:
        if self.first_broken is None or seq < self.first_broken.seq:
            self.first_broken = Broken(seq, why)
        self.ok = False

    @property
    def unsigned_rows(self) -> int:
        """Rows after the last checkpoint: chained, but no signature vouches for them yet."""
        return max(self.rows - (self.last_checkpoint_seq or 0), 0)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "view_rows": self.view_rows,
                "first_broken": None if self.first_broken is None else self.first_broken.__dict__,
                "checkpoints": {"count": self.checkpoints, "verified": self.checkpoints_verified,
                                "last_seq": self.last_checkpoint_seq},
                "unsigned_rows": self.unsigned_rows}


def verify_trail(expected: Iterable[tuple[dict[str, Any], str]], stored: Iterable[tuple[int, int, str]],
                 checkpoints: list[dict[str, Any]], public_key: bytes | None,
                 every: int | None = None) -> Report:
    """Compare the rows the events make now (`expected`, from a fresh Chain over the store's log) with
    the rows the view recorded (`stored`: seq, position, JSON) and with the signed checkpoints.

    An edited event makes a different row; a deleted one leaves a recorded row with no event; a
    reordered pair makes different rows where they swapped; an event slipped in makes a row the view
    never had. A tail deleted from both the store and the view is caught by a checkpoint past it.
    `every`: the projector signs at least every so many rows, so a longer stretch without a checkpoint
    means checkpoints were deleted (to hide rows changed and re-made after them)."""
    report = Report(checkpoints=len(checkpoints))
    signed = {cp["seq"]: cp for cp in checkpoints}
    for cp in checkpoints:
        if public_key is None or key_id(public_key) != cp["key_id"] or not signature_ok(cp, public_key):
            report.fail(cp["seq"], f"the checkpoint at seq {cp['seq']} is not signed by the audit key")
        report.last_checkpoint_seq = cp["seq"]
    recorded = iter(stored)
    comparing = True
    for row, text in expected:
        report.rows = row["seq"]
        if "unreadable" in row:  # nothing after it can be checked: the chain runs through it
            report.fail(row["seq"], f"the event at position {row['position']} cannot be read (edited): "
                                    f"{row['unreadable']}")
            break
        if comparing:
            found = next(recorded, None)
            if found is None:
                comparing = False  # the view has not come this far yet: nothing recorded to compare
            else:
                report.view_rows = found[0]
                comparing = _compare(row, text, found, report)
        cp = signed.get(row["seq"])
        if cp is not None:
            if cp["hash"] != row["hash"]:
                report.fail(row["seq"], f"the events up to seq {row['seq']} do not make the chain signed at "
                                        f"{cp['at']}: a row at or before it was changed")
            else:
                report.checkpoints_verified += 1
    if comparing:
        extra = next(recorded, None)
        if extra is not None:
            report.fail(extra[0], f"the event recorded at position {extra[1]} is gone from the event store "
                                  "(deleted, or the store was truncated)")
    if every is not None:
        marks = [0, *sorted(signed), report.view_rows]
        for before, after in zip(marks, marks[1:]):
            if after - before > every:
                report.fail(before + 1, f"no checkpoint between seq {before} and seq {after}, though one is signed "
                                        f"at least every {every} rows: checkpoints were deleted")
                break
    beyond = [seq for seq in signed if seq > report.rows]
    if beyond:
        report.fail(report.rows + 1, f"a checkpoint signed seq {max(beyond)} but the events make only "
                                     f"{report.rows} rows: the newest events were deleted")
    return report


def _compare(row: dict[str, Any], text: str, found: tuple[int, int, str], report: Report) -> bool:
    seq, position, body = found
    if position < row["position"]:
        report.fail(seq, f"the event recorded at position {position} is gone from the event store (deleted)")
        return False
    if position > row["position"]:
        report.fail(row["seq"], f"the event at position {row['position']} was never recorded in the audit trail "
                                "(inserted afterwards)")
        return False
    if body != text:  # the same canonical text, or a different row
        recorded = json.loads(body)
        differing = sorted(k for k in {*row, *recorded} if row.get(k) != recorded.get(k))
        report.fail(seq, f"the event at position {position} does not make the row recorded for it (edited or "
                         f"reordered; differs in {', '.join(differing)})")
        return False
    return True
