"""Fault injection for the crash tests: off unless SIGNOFF_FAULTS names a fault.

`kill-after-record:MARK` kills the worker process (SIGKILL) right after a decision whose comment
contains MARK is durably recorded, before Temporal hears of it; `raise-after-record:MARK` makes
that activity attempt fail once after recording. Both prove that a retried recording is a no-op.
"""

import os
import signal

from workers.settings import get_settings


def after_record(comment: str, attempt: int) -> None:
    fault = get_settings().faults
    if not fault or ":" not in fault:
        return
    name, mark = fault.split(":", 1)
    if not mark or mark not in comment:
        return
    if name == "kill-after-record":
        os.kill(os.getpid(), signal.SIGKILL)
    if name == "raise-after-record" and attempt == 1:
        raise RuntimeError("injected fault after the decision was recorded")
