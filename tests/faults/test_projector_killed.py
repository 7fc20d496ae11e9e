"""The real `signoff projector` process killed (-9) again and again while it works through a log of
thousands of events in small batches, then restarted: the trail it ends with equals a rebuild from
zero, row for row, and verifies. Nothing skipped, nothing repeated."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from store.audit_keys import SigningKey
from store.audit_view import AuditFilter, open_audit_view
from store.events import open_application
from tests.store.test_audit_trail import record_history
from workers.audit_verify import verify_store
from workers.projector import Projector

HISTORIES = 150  # 14 events each


def start_projector(store_url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SIGNOFF_EVENT_STORE": store_url, "SIGNOFF_DATA_DIR": str(data_dir),
           "SIGNOFF_AUDIT_BATCH_ROWS": "40", "SIGNOFF_AUDIT_CHECKPOINT_ROWS": "100"}
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "projector"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_projector_killed_mid_batch_neither_skips_nor_repeats(store_url: str, tmp_path: Path) -> None:
    app = open_application(store_url)
    for _ in range(HISTORIES):
        record_history(app)
    end = app.recorder.max_notification_id()
    view = open_audit_view(store_url)
    kills = 0
    process = start_projector(store_url, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while view.position() < end and time.monotonic() < deadline:
            time.sleep(0.15 + 0.05 * kills)
            if 0 < view.position() < end and kills < 4:
                process.send_signal(signal.SIGKILL)  # wherever it was: most of its time is inside a batch
                process.wait(10)
                kills += 1
                process = start_projector(store_url, tmp_path)
        assert view.position() == end, process.stderr
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert kills >= 2
    live = list(view.stream(AuditFilter(), None, True))
    assert [seq for seq, _ in live] == list(range(1, end + 1))
    key = SigningKey.load(tmp_path / "audit-signing-key.pem")
    assert verify_store(app, view, key.public).ok
    rebuilt = Projector(app, view, key)
    assert rebuilt.rebuild() == end
    assert list(view.stream(AuditFilter(), None, True)) == live
    app.close()
