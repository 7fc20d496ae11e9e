"""Checking the audit trail: against the event store it came from, or an exported file alone."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from domain.application import Signoff
from domain.audit import (
    GENESIS,
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


def verify_store(app: Signoff, view: AuditRows, public_key: bytes | None, every: int | None = None) -> Report:
    """Recompute the chain from the event store and compare it with the view and its checkpoints
    (`every`: the most rows the projector lets pass without one, SIGNOFF_AUDIT_CHECKPOINT_ROWS)."""
    return verify_trail(rows_from_events(app), recorded_rows(view), view.checkpoints(), public_key, every)


def verify_file(lines: TextIO, public_key: bytes, allow_unsigned_tail: bool = False) -> Report:
    """Check an export (JSON lines, oldest first, as `signoff audit export --format jsonl` writes them)
    with no access to the service: every row's hash, every link, every checkpoint's signature, and
    that each checkpoint's row is in the file with the signed hash. Rows past the last checkpoint are
    a failure unless `allow_unsigned_tail`: anyone can recompute hashes, so only a signature vouches
    for a row (export with `until_signed` to end the file at a signed head). Reads the file once, in
    32 bytes of memory per row."""
    report = Report()
    checkpoints: dict[int, dict[str, Any]] = {}
    # Every row's hash, 32 bytes each (32 MB for a million rows): checkpoint lines come after the rows.
    hashes = bytearray()

    def rows() -> Iterator[dict[str, Any]]:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                report.fail(0, f"line {number} is not JSON")
                return
            if "checkpoint" in item:
                cp = item["checkpoint"]
                checkpoints.setdefault(int(cp.get("seq", 0)), cp)  # a line repeated counts once
            else:
                yield item

    stream = rows()
    first = next(stream, None)
    if first is None:
        report.fail(0, "the file holds no audit rows")
        return report
    start_seq = int(first.get("seq", 1)) - 1
    if not re.fullmatch(r"[0-9a-f]{64}", str(first.get("prev_hash", ""))):
        report.fail(start_seq + 1, "the first row's prev_hash is not a SHA-256 in hex")
        return report
    if start_seq == 0 and first.get("prev_hash") != GENESIS:
        report.fail(1, "the first row of the trail does not start from 64 zeros")
        return report

    def all_rows() -> Iterator[dict[str, Any]]:
        yield first
        yield from stream

    # A file may start past seq 1 (an export of a time window): its first row's prev_hash is taken as given.
    for row, broken in check_links(all_rows(), first.get("prev_hash", ""), start_seq):
        if broken is not None:
            report.fail(broken.seq, broken.why)
            return report
        hashes += bytes.fromhex(row["hash"])
        report.rows = report.view_rows = row["seq"]
    last = report.rows
    report.checkpoints = len(checkpoints)
    for seq in sorted(checkpoints):
        cp = checkpoints[seq]
        if cp.get("key_id") != key_id(public_key) or not signature_ok(cp, public_key):
            report.fail(seq, f"the checkpoint at seq {seq} is not signed by this key")
        elif seq > last:
            report.fail(last + 1, f"a checkpoint signed seq {seq} but the file ends at seq {last}: rows were cut off")
        elif seq <= start_seq:
            continue  # before the file's first row: nothing of it to check
        elif hashes[(seq - start_seq - 1) * 32:(seq - start_seq) * 32].hex() != cp["hash"]:
            report.fail(seq, f"row {seq} is not the row signed at {cp['at']}")
        else:
            report.checkpoints_verified += 1
            report.last_checkpoint_seq = max(report.last_checkpoint_seq or 0, seq)
    if report.ok and not report.checkpoints_verified:
        report.fail(start_seq + 1, "no signed checkpoint covers the file's rows: its hashes prove nothing on their own")
    elif report.ok and report.unsigned_rows and not allow_unsigned_tail:
        report.fail((report.last_checkpoint_seq or 0) + 1,
                    f"the {report.unsigned_rows} rows after the last signed checkpoint (seq {report.last_checkpoint_seq}) "
                    "are vouched for by no signature (export with until_signed=true, or pass --allow-unsigned-tail)")
    return report


def verify_path(path: Path, public_key: bytes, allow_unsigned_tail: bool = False) -> Report:
    with path.open(encoding="utf-8") as lines:
        return verify_file(lines, public_key, allow_unsigned_tail)


__all__ = ["Broken", "rows_from_events", "verify_file", "verify_path", "verify_store"]
