"""The audit rows a retrospective reads, kept parsed between requests.

Reading and parsing ~100k rows of a project (about 1 KB of JSON each) takes seconds; the figures from
parsed rows take a fraction of that. So each API process keeps the parsed rows of the few projects
asked about last, and on the next request reads only the rows after the last one it holds (the trail
only grows, in seq order, and the caller waited for the projector first). A rebuilt trail makes the
same rows again, so what is kept stays true.
"""

import gc
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from domain.retrospective import Case, collect, in_window
from store.audit_view import AuditFilter, AuditRows

# Rows per read: one read of every kind, as a filter on the kind makes SQLite sort each page's
# candidates by seq again (MULTI-INDEX OR on the project's two columns); large pages sort less often.
PAGE = 10_000
KEPT = 4  # projects (or the portfolio) kept parsed per process


@dataclass
class Kept:
    after: int | None = None  # the last seq read
    cases: dict[str, Case] = field(default_factory=dict)


class RowCache:
    def __init__(self, view: AuditRows, size: int = KEPT):
        self.view, self.size = view, size
        self.kept: OrderedDict[str | None, Kept] = OrderedDict()
        self.lock = threading.Lock()

    def cases(self, project_id: str | None, since: float | None, until: float) -> list[Case]:
        """The deliverables and dependencies of the project (None: all) made in [since, until), in the
        order they were made, with their facts before `until`."""
        with self.lock:
            kept = self.kept.pop(project_id, None) or Kept()
            self.kept[project_id] = kept
            while len(self.kept) > self.size:
                self.kept.popitem(last=False)
            self._read_on(kept, project_id)
            return in_window(kept.cases.values(), since, until)

    def _read_on(self, kept: Kept, project_id: str | None) -> None:
        where = AuditFilter(project_id=project_id)  # every kind: collect() keeps deliverables and dependencies
        while True:
            page = self.view.page(where, None, kept.after, PAGE, True)
            if not page:
                return
            collect((body for _, body in page), kept.cases)
            kept.after = page[-1][0]
            if len(page) < PAGE:
                return


_caches: dict[int, RowCache] = {}
_caches_lock = threading.Lock()


def cache_for(view: AuditRows) -> RowCache:
    with _caches_lock:
        found = _caches.get(id(view))
        if found is None or found.view is not view:
            found = _caches[id(view)] = RowCache(view)
        return found


_paused = 0  # computations running now that want the collector paused (they overlap across threads)
_paused_lock = threading.Lock()


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while many small objects are made and read: it would scan
    them all again and again (4x the time of the figures), and they hold no cycles. Counted, so that of
    overlapping computations in several threads only the last one to end turns it back on."""
    global _paused
    with _paused_lock:
        _paused += 1
        gc.disable()
    try:
        yield
    finally:
        with _paused_lock:
            _paused -= 1
            if _paused == 0:
                gc.enable()
