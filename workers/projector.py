"""The projector: follows the event store's notification log and keeps the audit view.

eventsourcing's machinery: an `AuditProjection` (a `Projection`) writes into an `AuditView` (a
`TrackingRecorder`), and the position read is recorded in the same transaction as the rows. The
runner here reads the log in batches rather than one event per transaction (eventsourcing's
`ProjectionRunner` commits per event and needs subscriptions, which its SQLite store lacks), so a
catch-up from zero runs at the speed of reading the log. A projector killed mid-batch has committed
nothing of that batch; the next one starts where the last commit left off.

It also signs checkpoints of the chain's head with the audit key, every so many rows or minutes.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from domain.application import Signoff
from domain.audit import CREATIONS, Chain, Subject, checkpoint_message, subject_of
from store.audit_keys import SigningKey
from store.audit_view import (
    APPLICATION,
    NAME,
    AuditRows,
    Stale,
    open_audit_view,
)
from store.event_facts import Facts, facts_of, facts_of_event
from store.events import open_application

log = logging.getLogger("signoff.projector")
BATCH = 2000
# Subjects kept in memory between catch-ups; past it they are read back from the view as needed.
MAX_SUBJECTS = 200_000


class AuditProjection(Projection[AuditRows]):
    """Turns the log's events into hash-chained audit rows (domain/audit.py) in the view."""

    name = NAME

    def __init__(self, view: AuditRows):
        super().__init__(view)
        self.chain: Chain | None = None
        self.position: int | None = None

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """eventsourcing's one-event contract: the event after the position read so far."""
        self.process_batch([facts_of_event(tracking.notification_id, domain_event)])

    def process_batch(self, events: list[Facts]) -> list[dict[str, Any]]:
        """Append the rows of `events`, which follow the position read so far, and record the last
        position, in one transaction. Stale if someone else moved the view on."""
        rows, write = self.prepare(events)
        self.written(write)
        return strip(rows)

    def prepare(self, events: list[Facts]) -> tuple[list[dict[str, Any]], Callable[[], None]]:
        """The rows of `events` (the chain and the position move on in memory), and the write that
        appends them to the view. Until that write is done, a failure must `reset` the projection."""
        chain = self._chain()
        rows = []
        try:
            for position, name, uid, version, recorded_at, fields in events:
                if uid not in chain.subjects and name not in CREATIONS:
                    known = self.view.subject(uid)
                    chain.subjects[uid] = known if known is not None else subject_of(name, uid, {})
                row, text = chain.add_text(position, name, uid, version, recorded_at, fields)
                row["_body"] = text
                row["_other_project_id"] = chain.subjects[uid].other_project_id
                rows.append(row)
        except BaseException:
            self.chain = None
            raise
        subjects, read_from = chain.take_changed(), self.position
        self.position = read_to = events[-1].position
        return rows, lambda: self.view.append(rows, subjects, read_from, read_to)

    def written(self, write: Callable[[], None]) -> None:
        """Do a write `prepare` gave; on its failure, forget the chain (read it back from the view)."""
        try:
            write()
        except BaseException:
            self.chain = None
            raise

    def _chain(self) -> Chain:
        if self.chain is None:
            self.position, seq, head = self.view.where_it_stands()
            self.chain = Chain(seq=seq, head=head)
        return self.chain

    def reset(self) -> None:
        self.chain = None


class Projector:
    def __init__(self, app: Signoff, view: AuditRows, key: SigningKey | None = None, checkpoint_rows: int = 1000,
                 checkpoint_seconds: float = 60.0, batch: int = BATCH):
        self.app, self.view, self.key = app, view, key
        self.projection = AuditProjection(view)
        self.checkpoint_rows, self.checkpoint_seconds, self.batch = checkpoint_rows, checkpoint_seconds, batch
        last = view.checkpoints()
        self.signed_seq = last[-1]["seq"] if last else 0
        # What was signed stays true: rows made again (a rebuild) must agree with every checkpoint.
        self.signed = {cp["seq"]: cp["hash"] for cp in last}
        self.signed_at = float("-inf")  # a (re)started projector signs the head it finds as soon as caught up

    def step(self) -> int:
        """Project one batch of the log; answer how many events it held (0: caught up)."""
        return self.catch_up(batches=1, checkpoint=False)

    def catch_up(self, batches: int | None = None, checkpoint: bool = True) -> int:
        """Project everything recorded so far (or so many batches); answer how many events were read.
        (Committing one batch while the next is made was tried: no faster, as the writes hold the GIL.)"""
        read = 0
        try:
            while batches is None or batches > 0:
                self.projection._chain()
                position = self.projection.position
                notifications = self.app.recorder.select_notifications(start=position, limit=self.batch,
                                                                       inclusive_of_start=position is None)
                if not notifications:
                    break
                rows, write = self.projection.prepare([facts_of(self.app, n) for n in notifications])
                self._agree_with_checkpoints(rows)
                self._finish(write, rows)
                read += len(notifications)
                batches = None if batches is None else batches - 1
            chain = self.projection.chain
            if chain is not None and len(chain.subjects) > MAX_SUBJECTS:
                chain.subjects.clear()  # read back from the view as needed
        except Stale:
            log.info("another projector moved the audit view on; reading where it stands")
            return read + self.catch_up(batches, checkpoint)
        except BaseException:
            self.projection.reset()
            raise
        if checkpoint:
            self.checkpoint()
        return read

    def _finish(self, write: Callable[[], None], rows: list[dict[str, Any]]) -> None:
        self.projection.written(write)
        strip(rows)
        if self.key is not None:  # every so many rows: a checkpoint at each row that completes the count
            for row in rows:
                if row["seq"] - self.signed_seq >= self.checkpoint_rows:
                    self.sign(row["seq"], row["hash"])

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign the chain's head if rows came since the last checkpoint and, unless caught up from
        nothing signed at all, the checkpoint interval has passed."""
        chain = self.projection.chain
        if self.key is None or chain is None or chain.seq <= self.signed_seq:
            return None
        if self.signed_seq and time.monotonic() - self.signed_at < self.checkpoint_seconds:
            return None
        return self.sign(chain.seq, chain.head)

    def _agree_with_checkpoints(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            signed = self.signed.get(row["seq"])
            if signed is not None and signed != row["hash"]:
                self.projection.reset()
                raise CheckpointBroken(f"the event store no longer makes the trail signed at seq {row['seq']}: an "
                                       "event at or before it was changed; nothing was written (run `signoff audit "
                                       "verify` to find it)")

    def sign(self, seq: int, head: str) -> dict[str, Any]:
        assert self.key is not None
        at = datetime.now(UTC).isoformat()
        signature = self.key.sign(checkpoint_message(seq, head, at))
        self.view.add_checkpoint(seq, head, at, self.key.key_id, signature)
        self.signed_seq, self.signed_at = seq, time.monotonic()
        self.signed[seq] = head
        return {"seq": seq, "hash": head, "at": at, "key_id": self.key.key_id, "signature": signature}

    def rebuild(self) -> int:
        """Drop the audit rows and make them again from the first event; answer the rows made."""
        self.view.clear()
        self.projection.reset()
        return self.catch_up()

    def run(self, stop: threading.Event, poll_seconds: float = 0.2,
            also: tuple[Callable[[], int], ...] = ()) -> None:
        """Follow the log until `stop`; `also` are other catch-ups to keep going beside it (the list views),
        so that readers find them caught up rather than paying for it in a request."""
        while not stop.is_set():
            try:
                read = self.catch_up()
                for follower in also:
                    read += follower()
                if not read:
                    stop.wait(poll_seconds)
            except Exception:
                log.exception("the projector could not read or write; trying again")
                self.projection.reset()
                stop.wait(1.0)


class CheckpointBroken(Exception):
    """Rows made from the store disagree with a signed checkpoint: the store was changed."""


def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows without what only the write needed (their text and the providing project)."""
    for row in rows:
        row.pop("_body", None)
        row.pop("_other_project_id", None)
    return rows


def open_projector(event_store_url: str, key: SigningKey | None = None, **options: Any) -> Projector:
    return Projector(open_application(event_store_url), open_audit_view(event_store_url), key, **options)


def wait_for_view(app: Signoff, view: AuditRows, timeout: float) -> bool:
    """Wait until the view holds every event the store held when called (read-your-writes); False on
    timeout."""
    target = app.recorder.max_notification_id() or 0
    deadline = time.monotonic() + timeout
    pause = 0.005
    while view.position() < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return True


__all__ = ["APPLICATION", "AuditProjection", "Projector", "Subject", "open_projector", "wait_for_view"]
