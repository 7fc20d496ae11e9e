"""`signoff projector` and `signoff audit …`: keep the audit view, export it, verify it."""

import gc
import json
import logging
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from config.settings import Settings
from domain.errors import Invalid
from store.audit_keys import SigningKey, parse_public_key, public_key_for
from store.audit_view import AuditFilter, open_audit_view
from store.views import ReadModel

log = logging.getLogger("signoff.projector")


def signing_key(settings: Settings) -> SigningKey:
    """The key at the configured path, made there (with its public half beside it) on first start."""
    return SigningKey.load(settings.audit_signing_key_path(), make=True)


def run_projector(settings: Settings, rebuild: bool = False) -> int:
    from workers.projector import open_projector

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A catch-up makes a few dicts per event and keeps a subject per aggregate: collecting the young
    # generation every 700 allocations (the default) cost about a tenth of its time.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    key = signing_key(settings)
    projector = open_projector(settings.event_store_url(), key, checkpoint_rows=settings.audit_checkpoint_rows,
                               checkpoint_seconds=settings.audit_checkpoint_seconds, batch=settings.audit_batch_rows)
    if rebuild:
        lists = ReadModel(projector.app, settings.event_store_url())
        lists.rebuild()
        made = projector.rebuild()
        print(f"rebuilt the list views and the audit view: {made} rows; checkpoints kept: "
              f"{len(projector.view.checkpoints())}")
        return 0
    log.info("projector: audit key %s (public key %s)", key.key_id, key.public_text())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    projector.run(stop, also=(ReadModel(projector.app, settings.event_store_url()).catch_up,))
    return 0


def export(settings: Settings, fmt: str, out: Path | None, where: AuditFilter, until_signed: bool = False) -> int:
    from api.routers.audit import csv_lines, jsonl_lines
    from store.events import open_application
    from workers.projector import wait_for_view

    view = open_audit_view(settings.event_store_url())
    app = open_application(settings.event_store_url())
    if not wait_for_view(app, view, settings.audit_wait_seconds):
        print("signoff audit export: the projector is behind the event store (is `signoff projector` running?)",
              file=sys.stderr)
        return 1
    if until_signed:
        signed = view.checkpoints()
        where = replace(where, to_seq=signed[-1]["seq"] if signed else 0)
    lines = (jsonl_lines if fmt == "jsonl" else csv_lines)(view, where, None, True)
    target: TextIO = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
    count = 0
    try:
        for line in lines:
            target.write(line)
            count += line.count("\n")
    finally:
        if out:
            target.close()
    if out:
        print(f"wrote {out}", file=sys.stderr)
    return 0


def verify(settings: Settings, file: Path | None, public_key: str | None, allow_unsigned_tail: bool = False) -> int:
    from workers.audit_verify import verify_path, verify_store

    if file is not None:
        if not public_key:
            print("signoff audit verify: --file needs --public-key (base64, or a file holding it)", file=sys.stderr)
            return 2
        try:
            key = parse_public_key(public_key)
        except Invalid as exc:
            print(f"signoff audit verify: {exc}", file=sys.stderr)
            return 2
        report = verify_path(file, key, allow_unsigned_tail)
    else:
        from store.events import open_application

        key_bytes: Any = parse_public_key(public_key) if public_key else public_key_for(settings)
        report = verify_store(open_application(settings.event_store_url()),
                              open_audit_view(settings.event_store_url()), key_bytes, settings.audit_checkpoint_rows)
    print(json.dumps(report.to_json(), indent=2))
    if report.ok:
        after = (f"; the {report.unsigned_rows} rows after seq {report.last_checkpoint_seq or 0} are chained but not "
                 "signed yet" if report.unsigned_rows else "")
        print(f"ok: {report.rows} rows, {report.checkpoints_verified} signed checkpoints hold{after}", file=sys.stderr)
    else:
        broken = report.first_broken
        print(f"BROKEN at seq {broken.seq if broken else '?'}: {broken.why if broken else ''}", file=sys.stderr)
    return 0 if report.ok else 1


def print_public_key(settings: Settings) -> int:
    key = signing_key(settings)
    print(key.public_text())
    return 0
