"""Checking the audit trail: against the event store it came from, or an exported file alone."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from domain.application import Signoff
from domain.audit import (
    Broken,
    Chain,
    Report,
    check_links,
    key_id,
    signature_ok,
    verify_trail,
)
from store.audit_view import AuditRows
from store.event_facts import facts_of

READ = 2000


def rows_from_events(app: Signoff) -> Iterator[tuple[dict[str, Any], str]]:
    """The rows (and their canonical JSON) the event store's log makes today, from the first event, as
    the projector makes them."""
    chain = Chain()
    position = None
    while True:
        batch = app.recorder.select_notifications(start=position, limit=READ, inclusive_of_start=position is None)
        if not batch:
            return
        for notification in batch:
            try:
                facts = facts_of(app, notification)
            except Exception as exc:  # noqa: BLE001 - a stored event that no longer decodes was tampered with
                yield {"seq": chain.seq + 1, "position": notification.id, "hash": "", "unreadable": str(exc)[:300]}, ""
                return
            yield chain.add_text(*facts)
        position = batch[-1].id


def recorded_rows(view: AuditRows) -> Iterator[tuple[int, int, str]]:
    seq = 0
    while chunk := view.rows_after(seq):
        yield from chunk
        seq = chunk[-1][0]


def verify_store(app: Signoff, view: AuditRows, public_key: bytes | None) -> Report:
    """Recompute the chain from the event store and compare it with the view and its checkpoints."""
    return verify_trail(rows_from_events(app), recorded_rows(view), view.checkpoints(), public_key)


def verify_file(lines: TextIO, public_key: bytes) -> Report:
    """Check an export (JSON lines, oldest first, as `signoff audit export --format jsonl` writes
    them) with no access to the service: every row's hash, every link, every checkpoint's signature,
    and that each checkpoint's row is in the file with the signed hash."""
    report = Report()
    rows: list[dict[str, Any]] = []
    checkpoints: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            report.fail(0, f"line {number} is not JSON")
            return report
        (checkpoints.append(item["checkpoint"]) if "checkpoint" in item else rows.append(item))
    if not rows:
        report.fail(0, "the file holds no audit rows")
        return report
    first = rows[0]
    hashes: dict[int, str] = {}
    # A file may start past seq 1 (an export of a time window): its first row's prev_hash is taken as given.
    for row, broken in check_links(rows, first.get("prev_hash", ""), int(first.get("seq", 1)) - 1):
        if broken is not None:
            report.fail(broken.seq, broken.why)
            break
        hashes[row["seq"]] = row["hash"]
        report.rows = report.view_rows = row["seq"]
    report.checkpoints = len(checkpoints)
    for cp in checkpoints:
        report.last_checkpoint_seq = cp.get("seq")
        if cp.get("key_id") != key_id(public_key) or not signature_ok(cp, public_key):
            report.fail(cp.get("seq", 0), f"the checkpoint at seq {cp.get('seq')} is not signed by this key")
        elif cp["seq"] > max(hashes, default=0):
            report.fail(max(hashes, default=0) + 1, f"a checkpoint signed seq {cp['seq']} but the file ends at seq "
                                                    f"{max(hashes, default=0)}: rows were cut off")
        elif cp["seq"] in hashes and hashes[cp["seq"]] != cp["hash"]:
            report.fail(cp["seq"], f"row {cp['seq']} is not the row signed at {cp['at']}")
        elif cp["seq"] in hashes:
            report.checkpoints_verified += 1
    if report.ok and not report.checkpoints_verified:
        report.fail(0, "no signed checkpoint covers the file's rows: its hashes prove nothing on their own")
    return report


def verify_path(path: Path, public_key: bytes) -> Report:
    with path.open(encoding="utf-8") as lines:
        return verify_file(lines, public_key)


__all__ = ["Broken", "rows_from_events", "verify_file", "verify_path", "verify_store"]
