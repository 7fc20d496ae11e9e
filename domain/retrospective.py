"""Retrospective figures of approval chains and dependencies, from their audit rows alone.

Pure: the rows in, the figures out; no SQL, no HTTP, no clock. The same rows always give the same
figures, so a what-if (domain/what_if.py), which makes rows of its own, is measured by the same code.

The window: deliverables (and dependencies) made in [since, until); of them, every row before
`until` counts, so the figures are the state as of `until`, and an open one's age runs to `until`.
Every definition here is the README's ("Retrospectives"), word for word in intent.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

DELIVERABLE_ENDS = {"deliverable.approved": "approved", "deliverable.rejected": "rejected",
                    "deliverable.withdrawn": "withdrawn"}
DECISION_PREFIX = "deliverable.decision."
# What ends a stall of a dependency: its owner moved (the stall clock restarts) or it ended.
STALL_ENDS = {"dependency.acknowledged", "dependency.progress.reported", "dependency.resolved",
              "dependency.cancelled"}
GATES_NOTE = "phase gates are not built yet: no gate has been recorded, so there is nothing to compare"


@dataclass(slots=True)
class Fact:
    """One audit row, reduced to what the figures and the what-if need. `at` is epoch seconds."""
    at: float
    action: str
    actor: str
    revision: int | None
    details: dict[str, Any]
    cause: str | None = None  # the command id that caused it (a decision and what it set off share it)
    position: int = 0  # the row's place in the log: ties in `at` keep the log's order

    @property
    def stage_index(self) -> int | None:
        index = self.details.get("stage_index", self.details.get("index"))
        return index if isinstance(index, int) else None


@dataclass(slots=True)
class Case:
    """The rows of one deliverable or dependency, oldest first."""
    id: str
    kind: str
    title: str
    project_id: str | None
    facts: list[Fact] = field(default_factory=list)


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def fact_of(row: dict[str, Any]) -> Fact:
    correlation = row.get("correlation") or {}
    return Fact(at=epoch(row["at"]), action=row["action"], actor=row.get("actor", ""), revision=row.get("revision"),
                details=row.get("details") or {}, cause=correlation.get("command_id"),
                position=row.get("position", 0))


def cases_of(rows: Iterable[str | bytes | dict[str, Any]], since: float | None, until: float) -> list[Case]:
    """The deliverables and dependencies made in [since, until), each with its rows before `until`, in
    the order they were made. Rows of other kinds are passed over; rows are in log order."""
    cases: dict[str, Case] = {}
    collect(rows, cases)
    return in_window(cases.values(), since, until)


def collect(rows: Iterable[str | bytes | dict[str, Any]], cases: dict[str, Case]) -> None:
    """Add `rows` (in log order, after those `cases` holds) to the cases of their deliverables and
    dependencies. A row whose thing was made before the rows seen is passed over: its life is not whole."""
    for raw in rows:
        row = raw if isinstance(raw, dict) else orjson.loads(raw)
        subject = row["subject"]
        if subject["kind"] not in ("deliverable", "dependency"):
            continue
        case = cases.get(subject["id"])
        if case is None:
            if row["action"] not in ("deliverable.submitted", "dependency.opened"):
                continue
            case = cases[subject["id"]] = Case(subject["id"], subject["kind"], subject.get("title", ""),
                                               row.get("project_id"))
        case.facts.append(fact_of(row))


def in_window(cases: Iterable[Case], since: float | None, until: float) -> list[Case]:
    """Those made in [since, until), each with its facts before `until` (a list of its own)."""
    chosen = []
    for case in cases:
        made = case.facts[0].at
        if made >= until or (since is not None and made < since):
            continue
        facts = list(case.facts) if case.facts[-1].at < until else [f for f in case.facts if f.at < until]
        chosen.append(Case(case.id, case.kind, case.title, case.project_id, facts))
    return chosen


# ---- one deliverable, folded --------------------------------------------------------------------
@dataclass(slots=True)
class Run:
    """One opening of a stage, until it closed (or until `until`)."""
    index: int
    name: str
    revision: int
    opened: float
    approvers: list[str]
    after_revision: float  # when the revision it reviews was submitted
    closed: float | None = None
    closed_by: str | None = None  # passed, changes_requested, rejected, withdrawn, superseded
    closer: str | None = None  # whose decision closed it
    decisions: list[tuple[str, str, float]] = field(default_factory=list)  # (actor, verdict, at)
    has_sla: bool = False
    sla_breached: bool = False
    escalations: list[tuple[int, float, list[str]]] = field(default_factory=list)  # (level, at, notified)
    reminders: list[tuple[int, float]] = field(default_factory=list)


@dataclass(slots=True)
class Chain:
    id: str
    title: str
    submitted: float
    stages: list[str]
    outcome: str | None = None
    ended: float | None = None
    revisions: int = 1
    runs: list[Run] = field(default_factory=list)


def fold(case: Case) -> Chain:
    """What happened to one deliverable, stage opening by stage opening."""
    first = case.facts[0]
    policy = first.details.get("policy") or {}
    stages = [s.get("name", str(i)) for i, s in enumerate(policy.get("stages", []))]
    chain = Chain(case.id, case.title, first.at, stages)
    run: Run | None = None
    revision_at = first.at
    last_decider: str | None = None
    for fact in case.facts:
        action = fact.action
        if action == "deliverable.stage.opened":
            if run is not None and run.closed is None:
                run.closed, run.closed_by = fact.at, "superseded"
            index = fact.details.get("index", 0)
            run = Run(index=index, name=stages[index] if index < len(stages) else str(index),
                      revision=fact.revision or chain.revisions, opened=fact.at,
                      approvers=list(fact.details.get("approvers") or []), after_revision=revision_at,
                      has_sla=any(d.get("kind") == "sla" for d in fact.details.get("deadlines") or []))
            chain.runs.append(run)
        elif action.startswith(DECISION_PREFIX):
            if run is not None:
                run.decisions.append((fact.actor, fact.details.get("verdict", ""), fact.at))
            last_decider = fact.actor
        elif action in ("deliverable.stage.passed", "deliverable.changes_requested"):
            if run is not None and run.closed is None:
                run.closed = fact.at
                run.closed_by = "passed" if action == "deliverable.stage.passed" else "changes_requested"
                run.closer = fact.actor if action == "deliverable.stage.passed" else last_decider
        elif action in DELIVERABLE_ENDS:
            chain.outcome, chain.ended = DELIVERABLE_ENDS[action], fact.at
            if run is not None and run.closed is None:
                run.closed, run.closed_by = fact.at, chain.outcome
                run.closer = last_decider if action == "deliverable.rejected" else None
        elif action == "deliverable.revision.submitted":
            chain.revisions = max(chain.revisions, fact.details.get("number") or fact.revision or 1)
            revision_at = fact.at
        elif run is None:
            continue
        elif action == "sla.breached":
            run.sla_breached = True
        elif action == "escalation.raised":
            run.escalations.append((fact.details.get("level", 0), fact.at, list(fact.details.get("notified") or [])))
        elif action == "reminder.sent":
            run.reminders.append((fact.details.get("level", 0), fact.at))
        elif action == "deliverable.stage.reassigned":
            run.approvers = list(fact.details.get("approvers") or run.approvers)
    return chain


# ---- statistics ---------------------------------------------------------------------------------
def nearest_rank(values: list[float], p: float) -> float | None:
    """The p-th percentile by nearest rank: the smallest value with at least p% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return seconds(ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1])


def mean(values: list[float]) -> float | None:
    return seconds(sum(values) / len(values)) if values else None


def seconds(value: float) -> float:
    return round(value, 3)


def share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


# ---- the figures --------------------------------------------------------------------------------
def retrospective(cases: list[Case], since: float | None, until: float) -> dict[str, Any]:
    chains = [fold(c) for c in cases if c.kind == "deliverable"]
    return figures(chains, [c for c in cases if c.kind == "dependency"], since, until)


def figures(chains: list[Chain], dependencies: list[Case], since: float | None, until: float) -> dict[str, Any]:
    """The retrospective of deliverables already folded (the what-if folds each once for two uses)."""
    return {
        "window": {"since": iso(since) if since is not None else None, "until": iso(until)},
        "deliverables": _counts(chains),
        "cycle_time_s": _cycle_time(chains, until),
        "per_stage": _per_stage(chains, until),
        "rework": _rework(chains),
        "escalations": _escalations(chains),
        "sla_breach_rate": _sla_breach_rate(chains),
        "dependencies": _dependencies(dependencies, until),
        "gates": {"phases": [], "note": GATES_NOTE},
    }


def _counts(chains: list[Chain]) -> dict[str, Any]:
    outcomes = Counter(c.outcome or "open" for c in chains)
    return {"submitted": len(chains), **{k: outcomes.get(k, 0) for k in ("approved", "rejected", "withdrawn", "open")},
            "ids": [c.id for c in chains]}


def _cycle_time(chains: list[Chain], until: float) -> dict[str, Any]:
    ended = [c for c in chains if c.ended is not None]
    times = [c.ended - c.submitted for c in ended]  # type: ignore[operator]
    still = [c for c in chains if c.ended is None]
    ages = [until - c.submitted for c in still]
    return {"p50": nearest_rank(times, 50), "p90": nearest_rank(times, 90), "mean": mean(times), "count": len(times),
            "ids": [c.id for c in ended],
            "open": {"count": len(still), "age_p50_s": nearest_rank(ages, 50), "age_max_s": seconds(max(ages)) if ages
                     else None, "ids": [c.id for c in still]}}


def _per_stage(chains: list[Chain], until: float) -> dict[str, Any]:
    names: list[str] = []
    runs_of: dict[str, list[tuple[Chain, Run]]] = defaultdict(list)
    for chain in chains:
        for name in chain.stages:
            if name not in runs_of:
                names.append(name)
                runs_of[name] = []
        for run in chain.runs:
            runs_of[run.name].append((chain, run))
    return {name: _stage(runs_of[name], until) for name in names}


def _stage(runs: list[tuple[Chain, Run]], until: float) -> dict[str, Any]:
    closed = [(c, r) for c, r in runs if r.closed is not None]
    open_times = [r.closed - r.opened for _, r in closed]  # type: ignore[operator]
    with_sla = [(c, r) for c, r in runs if r.has_sla]
    breached = [(c, r) for c, r in with_sla if r.sla_breached]
    changes = [(c, r) for c, r in runs if any(v == "request_changes" for _, v, _ in r.decisions)]
    people: dict[str, dict[str, Any]] = {}
    for chain, run in runs:
        end = run.closed if run.closed is not None else until
        for actor, verdict, at in run.decisions:
            figures = _person(people, actor)
            figures["decisions"] += 1
            figures["_responses"].append(at - max(run.opened, run.after_revision))
            figures["_ids"].add(chain.id)
        decided = {actor: at for actor, _, at in run.decisions}
        for person in run.approvers:
            figures = _person(people, person)
            figures["_waiting"] += min(decided.get(person, end), end) - run.opened
            figures["_open"] += end - run.opened
            figures["_ids"].add(chain.id)
        if run.closer is not None and run.closed_by in ("passed", "changes_requested", "rejected"):
            figures = _person(people, run.closer)
            figures["last_waited_on"] += 1
            figures["_ids"].add(chain.id)
    return {
        "openings": len(runs), "closed": len(closed), "still_open": len(runs) - len(closed),
        "p50_open_s": nearest_rank(open_times, 50), "p90_open_s": nearest_rank(open_times, 90),
        "sla_breach_rate": share(len(breached), len(with_sla)), "sla_breaches": len(breached),
        "sla_breach_ids": _ids(c for c, _ in breached),
        "changes_requested": sum(1 for _, r in runs for _, v, _ in r.decisions if v == "request_changes"),
        "changes_requested_ids": _ids(c for c, _ in changes),
        "per_approver": {person: {
            "decisions": f["decisions"], "p50_response_s": nearest_rank(f["_responses"], 50),
            "last_waited_on": f["last_waited_on"], "waiting_share": share(f["_waiting"], f["_open"]),
            "ids": sorted(f["_ids"])} for person, f in sorted(people.items())},
        "ids": _ids(c for c, _ in runs),
    }


def _person(people: dict[str, dict[str, Any]], person: str) -> dict[str, Any]:
    found = people.get(person)
    if found is None:
        found = people[person] = {"decisions": 0, "last_waited_on": 0, "_responses": [], "_waiting": 0.0,
                                  "_open": 0.0, "_ids": set()}
    return found


def _ids(chains: Iterable[Chain]) -> list[str]:
    return list(dict.fromkeys(c.id for c in chains))


def _rework(chains: list[Chain]) -> dict[str, Any]:
    revisions = [c.revisions for c in chains]
    ended = [c for c in chains if c.outcome is not None]
    first_pass = [c for c in ended if c.outcome == "approved" and c.revisions == 1]
    by_stage: Counter[str] = Counter()
    for chain in chains:
        for run in chain.runs:
            by_stage[run.name] += sum(1 for _, v, _ in run.decisions if v == "request_changes")
    return {"revisions_mean": round(sum(revisions) / len(revisions), 4) if revisions else None,
            "revisions_max": max(revisions) if revisions else None,
            "first_pass_yield": share(len(first_pass), len(ended)),
            "changes_requested_by_stage": {name: n for name, n in sorted(by_stage.items()) if n},
            "ids": [c.id for c in chains], "reworked_ids": [c.id for c in chains if c.revisions > 1],
            "first_pass_ids": [c.id for c in first_pass]}


def _escalations(chains: list[Chain]) -> dict[str, Any]:
    by_level: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    ids: list[str] = []
    for chain in chains:
        for run in chain.runs:
            for level, _, _ in run.escalations:
                by_level[str(level)] += 1
                by_stage[run.name] += 1
                ids.append(chain.id)
    return {"total": sum(by_level.values()), "by_level": dict(sorted(by_level.items(), key=lambda kv: int(kv[0]))),
            "by_stage": dict(sorted(by_stage.items())), "ids": list(dict.fromkeys(ids))}


def _sla_breach_rate(chains: list[Chain]) -> dict[str, Any]:
    with_sla = [(c, r) for c in chains for r in c.runs if r.has_sla]
    breached = [(c, r) for c, r in with_sla if r.sla_breached]
    by_stage: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, run in with_sla:
        by_stage[run.name][0] += 1
        by_stage[run.name][1] += run.sla_breached
    return {"overall": share(len(breached), len(with_sla)), "openings_with_sla": len(with_sla),
            "breaches": len(breached),
            "by_stage": {name: share(b, n) for name, (n, b) in sorted(by_stage.items())},
            "ids": _ids(c for c, _ in breached)}


def _dependencies(cases: list[Case], until: float) -> dict[str, Any]:
    stalled_ids: list[str] = []
    overdue_ids: list[str] = []
    resolved_ids: list[str] = []
    stalled_s = 0.0
    to_resolve: list[float] = []
    outcomes: Counter[str] = Counter()
    for case in cases:
        opened = case.facts[0].at
        stall_from: float | None = None
        outcome = "open"
        for fact in case.facts:
            if fact.action == "dependency.stalled":
                if stall_from is None:
                    due = fact.details.get("due_at")
                    stall_from = epoch(due) if isinstance(due, str) else fact.at
                if not stalled_ids or stalled_ids[-1] != case.id:
                    stalled_ids.append(case.id)
            elif fact.action in STALL_ENDS:
                if stall_from is not None:
                    stalled_s += fact.at - stall_from
                    stall_from = None
                if fact.action == "dependency.resolved":
                    outcome = "resolved"
                    to_resolve.append(fact.at - opened)
                    resolved_ids.append(case.id)
                elif fact.action == "dependency.cancelled":
                    outcome = "cancelled"
            elif fact.action == "dependency.overdue" and case.id not in overdue_ids[-1:]:
                overdue_ids.append(case.id)
        if stall_from is not None:
            stalled_s += until - stall_from
        outcomes[outcome] += 1
    return {"opened": len(cases), "resolved": outcomes["resolved"], "cancelled": outcomes["cancelled"],
            "open": outcomes["open"], "stalled": len(stalled_ids), "stalled_s": seconds(stalled_s),
            "stalled_ids": stalled_ids, "overdue": len(overdue_ids), "overdue_ids": overdue_ids,
            "p50_resolve_s": nearest_rank(to_resolve, 50), "resolved_ids": resolved_ids,
            "ids": [c.id for c in cases]}
