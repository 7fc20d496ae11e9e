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
           "SIGNOFF_AUDIT_BATCH_ROWS": "10", "SIGNOFF_AUDIT_CHECKPOINT_ROWS": "100"}
    return subprocess.Popen([sys.executable, "-m", "workers.cli", "projector"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_projector_killed_mid_batch_neither_skips_nor_repeats(store_url: str, tmp_path: Path) -> None:
    app = open_application(store_url)
    for _ in range(HISTORIES):
        record_history(app)
    end = app.recorder.max_notification_id()
    view = open_audit_view(store_url)
    kills, killed_at = 0, 0
    process = start_projector(store_url, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while view.position() < end and time.monotonic() < deadline:
            time.sleep(0.01)
            # Killed as soon as it has committed something since its last start: wherever it is then, in
            # a batch or between two (most of its time is inside one).
            if killed_at < view.position() < end and kills < 4:
                process.send_signal(signal.SIGKILL)
                process.wait(10)
                kills, killed_at = kills + 1, view.position()
                process = start_projector(store_url, tmp_path)
        assert view.position() == end, process.stderr
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert kills >= 3
    live = list(view.stream(AuditFilter(), None, True))
    assert [seq for seq, _ in live] == list(range(1, end + 1))
    key = SigningKey.load(tmp_path / "audit-signing-key.pem")
    assert verify_store(app, view, key.public).ok
    rebuilt = Projector(app, view, key)
    assert rebuilt.rebuild() == end
    assert list(view.stream(AuditFilter(), None, True)) == live
    # The same through the commands an operator runs.
    env = {**os.environ, "SIGNOFF_EVENT_STORE": store_url, "SIGNOFF_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "workers.cli", "projector", "--rebuild"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and f"{end} rows" in done.stdout, done.stderr
    assert list(view.stream(AuditFilter(), None, True)) == live
    checked = subprocess.run([sys.executable, "-m", "workers.cli", "audit", "verify"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0 and '"ok": true' in checked.stdout, checked.stderr
    app.close()
