"""Retrospectives: one project's figures and a what-if over ~10,000 deliverables, and as-of reads of a long record.

    .venv/bin/python bench/retro.py [--deliverables N] [--runs R] [--postgresql]

1. load: N deliverables (default 10,000) of one project, and dependencies between it and a second one,
   recorded through the domain's aggregates by bench/audit.py's loader (its lives of approvals,
   requests for changes, revisions, rejections, withdrawals, reminders, escalations), then the audit
   projector catches up (timed, for reference).
2. retrospective: what GET /api/retrospectives/{project} does after waiting for the projector: read
   the project's deliverable and dependency rows from the audit view and parse them (api/retro_rows.py),
   compute the figures (domain/retrospective.py) and write the JSON. Goal < 1 s. Cold: a new cache
   reads and parses every row, as the first request of a process does; warm: the cache of the requests
   before reads only rows added since. R runs each; printed: each part's median and the total's median
   and worst, and the ratio to the goal.
3. what-if: what POST …/what-if does: the same read, the figures as recorded, the deliverables of
   `standard-review` re-run with engineering on `any` and a 1 ms SLA and design escalating after
   0.5 ms (so every stage opening gets new deadlines and the quorum closes stages earlier), the figures
   again, the difference and the stories. Goal < 2 s.
4. as-of: one deliverable with 500 events (request for changes and a revision, 125 times), read
   `get_deliverable(id, as_of=…)` at 200 moments spread over its life (domain/application.py, what
   GET /api/deliverables/{id}?as_of= calls). Goal p95 < 20 ms.
No asserts on time: the figures and the ratios are printed. See bench/README.md.
"""

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from audit import Loader
from decisions import percentile
from stores import store_url

from api.retro_rows import RowCache, no_collection
from domain.commands import Decide, SubmitDeliverable, SubmitRevision
from domain.policy_spec import PolicySpec
from domain.retrospective import fact_of, retrospective
from domain.what_if import Changes, members_over_time, what_if
from store.audit_keys import SigningKey
from store.audit_view import AuditFilter, open_audit_view
from store.events import open_application
from workers.projector import Projector

RETRO_GOAL, WHAT_IF_GOAL, AS_OF_GOAL = 1.0, 2.0, 0.020
CHANGES = Changes(stages={
    "engineering": {"rule": "any", "n": None, "sla": "PT0.001S"},
    "design": {"escalation": [{"after": "PT0.0005S", "notify": ["pmo"], "grant": ["pm"]}]}})


class OneProject(Loader):
    """bench/audit.py's lives, with every deliverable in the first project; dependencies (one life in
    ten) between the two projects."""

    def create_projects(self, count: int) -> None:
        super().create_projects(2)

    def life(self) -> Iterator[Any]:
        return self.dependency() if self.rng.random() < 0.1 else self._in_first(self.deliverable())

    def _in_first(self, life: Iterator[Any]) -> Iterator[Any]:
        teams, self.teams = self.teams, self.teams[:1]
        try:
            first = next(life)  # the life picks its project on its first step
        finally:
            self.teams = teams
        yield first
        yield from life


def timed(work: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - began


def measure_retro(view: Any, project_id: str, runs: int) -> None:
    """Cold: a new cache reads and parses every row; warm: the API's next request, which reads only rows
    added since (none here)."""
    until = time.time()
    for temperature in ("cold", "warm"):
        parts: dict[str, list[float]] = {"read+parse": [], "figures": [], "json": [], "total": []}
        cache = RowCache(view)
        if temperature == "warm":
            cache.cases(project_id, None, until)  # what the requests before left
        for _ in range(runs):
            if temperature == "cold":
                cache = RowCache(view)
            with no_collection():
                cases, read = timed(cache.cases, project_id, None, until)
                figures, compute = timed(retrospective, cases, None, until)
                body, dump = timed(orjson.dumps, figures)
            for name, value in zip(parts, (read, compute, dump, read + compute + dump)):
                parts[name].append(value)
        report(f"retrospective, {temperature}", parts, RETRO_GOAL)
    counts = figures["deliverables"]
    rows = sum(len(c.facts) for c in cases)
    print(f"  rows: {rows:,}  deliverables: {counts['submitted']:,} (approved {counts['approved']:,}, "
          f"rejected {counts['rejected']:,}, withdrawn {counts['withdrawn']:,}, open {counts['open']:,})  "
          f"dependencies: {figures['dependencies']['opened']:,}  answer: {len(body) / 1e6:.1f} MB")


def measure_what_if(view: Any, project_id: str, runs: int) -> None:
    until = time.time()
    project_rows = [fact_of(orjson.loads(b)) for _, b in view.stream(
        AuditFilter(subject_id=project_id, subject_kind="project"), None, True)]
    for temperature in ("cold", "warm"):
        parts: dict[str, list[float]] = {"read+parse": [], "what-if": [], "json": [], "total": []}
        cache = RowCache(view)
        if temperature == "warm":
            cache.cases(project_id, None, until)  # what the requests before left
        for _ in range(runs):
            if temperature == "cold":
                cache = RowCache(view)
            with no_collection():
                cases, read = timed(cache.cases, project_id, None, until)
                answer, compute = timed(what_if, cases, None, until, "standard-review", CHANGES,
                                        members_over_time(project_rows))
                body, dump = timed(orjson.dumps, answer)
            for name, value in zip(parts, (read, compute, dump, read + compute + dump)):
                parts[name].append(value)
        report(f"what-if, {temperature}", parts, WHAT_IF_GOAL)
    rerun = sum(1 for c in cases if c.kind == "deliverable"
                and (c.facts[0].details.get("policy") or {}).get("name") == "standard-review")
    print(f"  what-if re-ran {rerun:,} deliverables of standard-review; {len(answer['deliverables']):,} with a story; "
          f"escalations {answer['actual']['escalations']['total']:,} -> {answer['what_if']['escalations']['total']:,}; "
          f"answer: {len(body) / 1e6:.1f} MB")


def report(what: str, parts: dict[str, list[float]], goal: float) -> None:
    medians = "  ".join(f"{name} {statistics.median(values) * 1000:.0f} ms" for name, values in parts.items()
                        if name != "total")
    total = parts["total"]
    print(f"  {what}: {medians}")
    print(f"  {what}: total median {statistics.median(total):.3f} s, worst {max(total):.3f} s over {len(total)} runs; "
          f"goal < {goal:.0f} s: ratio {statistics.median(total) / goal:.2f}")


def long_record(app: Any) -> tuple[str, list[datetime]]:
    """A deliverable with about 500 events: submitted, then rounds of a request for changes (2 events)
    and a revision (2: the revision and its stage opening)."""
    members = [{"user": "alice", "roles": ["author"]}, {"user": "bob", "roles": ["design-lead"]}]
    project_id = str(app.create_project("A long review", members, [], [], "paula").id)
    spec = PolicySpec.model_validate({"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]},
                                                  "rule": "any"}]}).model_dump()
    policy, _ = app.put_policy(f"as-of-{uuid.uuid4().hex[:6]}", spec, "paula")
    did = str(uuid.uuid4())
    app.submit_deliverable(SubmitDeliverable(deliverable_id=did, actor="alice", project_id=project_id,
                                             title="Brand book", policy=policy, revision=cut(1), command_id="c0"))
    moments = []
    n = 1
    while True:
        events = app.get_deliverable(did).version
        if events >= 500:
            break
        moments.append(datetime.now(UTC))
        app.change_deliverable(Decide(deliverable_id=did, actor="bob", verdict="request_changes", comment="again",
                                      revision=n, command_id=f"d{n}"))
        if app.get_deliverable(did).version >= 498:
            break
        n += 1
        app.change_deliverable(SubmitRevision(deliverable_id=did, actor="alice", command_id=f"r{n}",
                                              **cut(n)))
    moments.append(datetime.now(UTC))
    return did, moments


def cut(n: int) -> dict[str, str]:
    return {"uri": f"https://files.example/brand-v{n}.pdf", "sha256": hashlib.sha256(f"v{n}".encode()).hexdigest(),
            "note": f"cut {n}"}


def measure_as_of(app: Any, reads: int = 200) -> None:
    did, moments = long_record(app)
    events = app.get_deliverable(did).version
    rng = random.Random(11)
    first, last = moments[0], moments[-1]
    latencies = []
    for _ in range(reads):
        at = first + (last - first) * rng.random()
        _, took = timed(app.get_deliverable, did, at)
        latencies.append(took)
    _, latest = timed(app.get_deliverable, did, last)
    p95 = percentile(latencies, 0.95)
    print(f"  as-of: a deliverable with {events} events, {reads} reads at moments over its life: "
          f"p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, at its end {latest * 1000:.1f} ms; "
          f"goal p95 < {AS_OF_GOAL * 1000:.0f} ms: ratio {p95 / AS_OF_GOAL:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliverables", "-n", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgresql", action="store_true", help="also on PostgreSQL at 127.0.0.1:5432")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="signoff-retro-"))
    try:
        for kind in ["sqlite"] + (["postgresql"] if args.postgresql else []):
            url, drop = store_url(kind, tmp, prefix="bench_retro")
            try:
                run_store(kind, url, args.deliverables, args.runs, tmp)
            finally:
                drop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def run_store(kind: str, url: str, deliverables: int, runs: int, tmp: Path) -> None:
    print(f"{kind}:")
    app = open_application(url)
    loader = OneProject(app, random.Random(10))
    began = time.perf_counter()
    # The loader stops at a number of events: about 11.8 events a deliverable (a tenth of the lives are dependencies).
    loaded = loader.run(int(deliverables * 11.8))
    project_id = loaded.projects[0]
    print(f"  load: {loaded.events:,} events, {loaded.counts.get('deliverable.submitted', 0):,} deliverables, "
          f"{loaded.counts.get('dependency.opened', 0):,} dependencies in {time.perf_counter() - began:.0f} s")
    view = open_audit_view(url)
    projector = Projector(app, view, SigningKey.load(tmp / f"{uuid.uuid4().hex}.pem", make=True))
    read, seconds = timed(projector.catch_up)
    print(f"  projector: {read:,} events to audit rows in {seconds:.1f} s")
    measure_retro(view, project_id, runs)
    measure_what_if(view, project_id, runs)
    measure_as_of(app)
    app.close()


if __name__ == "__main__":
    sys.exit(main())
