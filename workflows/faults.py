"""Fault injection for the crash tests: off unless SIGNOFF_FAULTS names a fault.

- `kill-after-record:MARK` kills the worker (SIGKILL) right after a decision whose comment contains
  MARK is durably recorded, before Temporal hears of it;
- `raise-after-record:MARK` makes that activity attempt fail once after recording;
- `kill-after-deadline:KIND` kills the worker right after a deadline of that kind is recorded.
Each proves that a retried recording is a no-op and nothing accepted is lost.
"""

import os
import signal

from config.settings import get_settings


def _active() -> tuple[str, str]:
    name, _, arg = get_settings().faults.partition(":")
    return name, arg


def after_record(comment: str, attempt: int) -> None:
    name, mark = _active()
    if not mark or mark not in comment:
        return
    if name == "kill-after-record":
        os.kill(os.getpid(), signal.SIGKILL)
    if name == "raise-after-record" and attempt == 1:
        raise RuntimeError("injected fault after the decision was recorded")


def after_deadline(kind: str) -> None:
    name, wanted = _active()
    if name == "kill-after-deadline" and wanted == kind:
        os.kill(os.getpid(), signal.SIGKILL)
