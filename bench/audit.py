"""Audit trail: a million events through the domain, then the projector, five queries over HTTP and verify.

    .venv/bin/python bench/audit.py [--events N] [--no-postgresql] [--keep DIR]

For each store (a SQLite file in a temp dir, then a fresh schema of the PostgreSQL at 127.0.0.1:5432):
1. load: N events (default 1,000,000) generated through the domain application (`Signoff`, opened with
   `store.events.open_application`): projects and their members, policies and new versions of them,
   deliverables submitted, decided on (approvals, requests for changes, revisions, rejections,
   withdrawals), escalated, reminded; dependencies opened, stalled, escalated, acknowledged,
   progressed, resolved or cancelled; a few charter changes. Many lives run side by side, so their
   events interleave in the log as they would in production, and the touched aggregates are saved
   together, about 1,400 events per `app.save(*aggregates)`. Printed: events/s.
2. the decoded read of the whole notification log (select_notifications in batches of 1000, each
   mapped to its domain event): the ceiling of any projector.
3. the projector's catch-up from zero (`workers.projector.open_projector(url, key).catch_up()`): rows/s;
   then the API's list views caught up (a member's scope comes from them), timed.
4. five filtered queries through HTTP against `signoff api` in its own process (uvicorn, a pmo token):
   by actor, by project + action prefix, by subject, by time window, a page 50 pages deep; p50/p95
   of 50 runs each. On PostgreSQL again after VACUUM ANALYZE of the view.
5. verify (`workers.audit_verify.verify_store`): the chain recomputed from the store, compared with the view.
No timing fails the run. See bench/README.md.
"""

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from decisions import cpu_seconds, free_port, percentile, spawn, stop_process
from stores import POSTGRES_URL, store_url

from api.auth import mint_token
from domain.application import Signoff
from domain.commands import (
    Decide,
    FireDeadline,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.deliverable import Deliverable
from domain.dependency import Dependency
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    FireDependencyDeadline,
    OpenDependency,
    ReportProgress,
    Resolve,
)
from domain.dependency_rules import Parties
from domain.policy_spec import PolicySpec
from store.events import open_application

# ---- wording (from the PMO support article in ../shared/seed) ------------------------------------
CLIENTS = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Adatum", "Litware", "Proseware",
           "Woodgrove", "Coho", "Lucerne", "Margie's Travel", "Alpine Ski House", "Trey Research", "Humongous"]
PROGRAMMES = ["website relaunch", "product launch", "e-commerce checkout", "project coordination",
              "milestone tracking", "resource coordination", "cross-functional collaboration",
              "portfolio reporting", "warehouse shipping timelines", "marketing assets"]
TITLES = [
    "Task breakdown structure for each project phase", "Approval workflow without bottlenecks",
    "Automated notifications for upcoming deadlines", "Shared dashboard for real-time progress",
    "Standard operating procedures for recurring projects", "Gantt timeline for the active projects",
    "Weekly milestone review pack", "Buffer plan for critical path activities",
    "Actual versus planned progress report", "Centralized resource calendar",
    "Capacity planning for the quarter", "Workload balance by skill set", "Resource sharing agreement",
    "Utilization report", "Shared project charter", "Escalation paths for cross-team dependencies",
    "Interdepartmental deliverables tracker", "Launch date alignment memo", "Homepage mockups",
    "Checkout specification", "Shipping timeline handoff", "Reporting templates", "Risk management protocol",
    "Governance framework", "Status report for stakeholders",
]
COMMENTS = [
    "Handoffs between teams are not clear enough yet", "The timeline has no buffer on the critical path",
    "Roles in the charter are not clearly defined", "The dashboard does not show actual versus planned",
    "Please flag capacity issues before they cause delays", "Milestones need an owner each",
    "The launch date is misaligned with the warehouse timeline", "Assets from the design team are missing",
    "Status-chasing is still manual here", "The escalation path skips the project lead",
]
NOTES = [
    "clearer task ownership", "buffer time added to the critical path", "roles defined in the charter",
    "actual versus planned added", "weekly milestone reviews scheduled", "workload rebalanced",
    "specifications from product management attached", "shipping timelines from the warehouse added",
]
DEPENDENCIES = [
    "Specifications from product management", "Assets from the design team", "Shipping timelines from the warehouse",
    "Sandbox credentials", "Resource allocation plan", "Headcount approval for the bottleneck team",
    "Reporting template", "Shared timeline for the launch", "Risk register review", "Brand guidelines",
]
REASONS = ["Resource sharing with the platform team", "Coordinating with department heads on capacity",
           "Balancing workloads based on skill sets and availability", "A new engineer joined the project"]
FIRST = ["alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "lena",
         "mike", "nina", "oscar", "peggy", "quinn", "rosa", "sam", "trent", "uma", "victor", "wendy", "xavier",
         "yara", "zack", "amir", "bea", "chen", "dara", "eli", "fatima", "gus", "hana", "igor", "jess",
         "kofi", "lars", "mei", "nils", "olga", "pia", "raj", "sofia", "tom", "ugo", "vera", "wim", "yusuf", "zoe"]
# A project's team: who holds which role (every policy below names only these roles).
TEAM = [("author", 2), ("design-lead", 1), ("eng", 3), ("pm", 1), ("pmo", 1), ("sponsor", 1), ("legal", 1)]

PM_STEP = {"after": "P2D", "notify": ["pm"], "grant": ["pm"]}
POLICIES: dict[str, dict[str, Any]] = {
    "standard-review": {"stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "escalation": [PM_STEP]},
        {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2},
        {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "all"}], "on_revision": "restart"},
    "fast-track": {"stages": [
        {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "any", "escalation": [PM_STEP]}]},
    "creative-signoff": {"stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "reminders": ["P1D"]},
        {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "any", "escalation": [PM_STEP]}],
        "on_revision": "resume"},
    "legal-review": {"stages": [
        {"name": "legal", "approvers": {"roles": ["legal"]}, "rule": "all", "reminders": ["P3D"], "sla": "P5D"},
        {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "any"}]},
    "launch-gate": {"stages": [
        {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "all", "escalation": [PM_STEP]},
        {"name": "pm", "approvers": {"roles": ["pm"]}, "rule": "any"},
        {"name": "sponsor", "approvers": {"roles": ["sponsor"]}, "rule": "all"}], "on_revision": "resume"},
}
POLICY_WEIGHTS = {"standard-review": 5, "fast-track": 3, "creative-signoff": 2, "legal-review": 1, "launch-gate": 2}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Team:
    project_id: str
    members: list[dict[str, Any]]
    escalation_path: list[dict[str, Any]]

    def holders(self, role: str) -> list[str]:
        return [m["user"] for m in self.members if role in m["roles"]]


@dataclass
class Loaded:
    events: int  # what the log holds at the end (max_notification_id)
    seconds: float
    saves: int
    counts: dict[str, int] = field(default_factory=dict)  # lives by kind and how they ended
    projects: list[str] = field(default_factory=list)
    busiest_actor: str = ""  # the user who did the most (the "by actor" query's filter)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    sample_subjects: list[str] = field(default_factory=list)  # deliverable ids, for the "by subject" query


class Loader:
    """Lives of deliverables and dependencies, interleaved, recorded through the domain's aggregates and
    saved in batches. Each life is a generator that makes one command per step and yields the
    aggregate it changed."""

    def __init__(self, app: Signoff, rng: random.Random) -> None:
        self.app, self.rng = app, rng
        self.teams: list[Team] = []
        self.policies: dict[str, dict[str, Any]] = {}
        self.counts: dict[str, int] = {}
        self.actions: dict[str, int] = {}  # per actor
        self.subjects: list[str] = []

    # ---- set-up through the application's own use cases ----------------------------------------
    def create_projects(self, count: int) -> None:
        for k in range(count):
            people = self.rng.sample(FIRST, sum(n for _, n in TEAM))
            members, it = [], iter(people)
            for role, n in TEAM:
                members += [{"user": next(it), "roles": [role]} for _ in range(n)]
            name = f"{CLIENTS[k % len(CLIENTS)]} {PROGRAMMES[(k // len(CLIENTS)) % len(PROGRAMMES)]}"
            if k >= len(CLIENTS) * len(PROGRAMMES):
                name += f" {k // (len(CLIENTS) * len(PROGRAMMES)) + 1}"
            pmo = members[7]["user"]
            path = [{"after": "P3D", "notify": ["pm"]}, {"after": "P5D", "notify": ["pmo", "sponsor"], "grant": ["pm"]}]
            project = self.app.create_project(name, members, path, [], pmo)
            self.teams.append(Team(str(project.id), members, path))

    def publish(self, name: str, spec: dict[str, Any], actor: str = "paula") -> None:
        checked = PolicySpec.model_validate(spec).model_dump()
        self.app.put_policy(name, checked, actor)
        self.policies[name] = self.app.get_policy(name)

    def change_charter(self) -> None:
        """A pmo swaps one engineer of a project for someone new (running chains keep their approvers)."""
        team = self.rng.choice(self.teams)
        members = [dict(m) for m in team.members]
        engineers = [i for i, m in enumerate(members) if "eng" in m["roles"]]
        taken = {m["user"] for m in members}
        newcomer = self.rng.choice([u for u in FIRST if u not in taken])
        members[self.rng.choice(engineers)] = {"user": newcomer, "roles": ["eng"]}
        self.app.change_project(team.project_id, team.holders("pmo")[0], self.rng.choice(REASONS), members=members)
        team.members = members
        self.count("project.charter_changed")

    # ---- lives ---------------------------------------------------------------------------------
    @staticmethod
    def command_id(workflow_id: str, name: str | None = None) -> str:
        """As the subject's workflow stamps a command: `{workflow id}:update:{update id}` for one that came
        as an Update, `{workflow id}:{name}` for one the workflow made itself (a deadline that fell due)."""
        return f"{workflow_id}:{name or f'update:{uuid.uuid4()}'}"

    def count(self, what: str, actor: str | None = None) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
        if actor:
            self.actions[actor] = self.actions.get(actor, 0) + 1

    def deadline(self, d: Deliverable, kind: str, level: int) -> FireDeadline:
        """The stage deadline `kind`/`level` falling due, as the chain's timer records it."""
        stage = d.stage
        assert stage is not None
        due = next(x for x in stage.deadlines if x.kind == kind and x.level == level)
        name = d.to_view().deadline_id(due)  # as the chain names it: one id per deadline of one stage opening
        return FireDeadline(deliverable_id=str(d.id), command_id=self.command_id(f"deliverable-{d.id}", name),
                            stage_index=stage.index, opened_at=stage.opened_at.isoformat(), kind=kind, level=level)

    def deliverable(self) -> Iterator[Any]:
        rng, team = self.rng, self.rng.choice(self.teams)
        name = rng.choices(list(POLICY_WEIGHTS), weights=list(POLICY_WEIGHTS.values()))[0]
        submitter = rng.choice(team.holders("author"))
        uid = uuid.uuid4()
        wid = f"deliverable-{uid}"
        cmd = SubmitDeliverable(
            deliverable_id=str(uid), actor=submitter, command_id=self.command_id(wid), project_id=team.project_id,
            title=rng.choice(TITLES), policy=self.policies[name],
            revision={"uri": f"https://files.example/{uid.hex[:8]}-v1.pdf", "sha256": sha(f"{uid}-1"),
                      "note": "first cut"})
        d = Deliverable.submit(cmd, team.members, team.escalation_path, uid)
        self.count("deliverable.submitted", submitter)
        if len(self.subjects) < 1000:
            self.subjects.append(str(uid))
        yield d
        members = lambda: team.members
        did = str(uid)
        while d.status in ("in_review", "changes_requested"):
            r = rng.random()
            if r < 0.03:
                self.count("deliverable.left_open")
                return  # still in review when the load ends, as many are
            if d.status == "changes_requested":
                n = len(d.revisions) + 1
                d.handle(SubmitRevision(deliverable_id=did, actor=submitter, command_id=self.command_id(wid),
                                        uri=f"https://files.example/{uid.hex[:8]}-v{n}.pdf", sha256=sha(f"{uid}-{n}"),
                                        note=rng.choice(NOTES)), members)
                self.count("deliverable.revision", submitter)
                yield d
                continue
            stage = d.stage
            assert stage is not None
            pending = {(x.kind, x.level) for x in stage.deadlines if not x.done}
            if r < 0.04:
                d.handle(Withdraw(deliverable_id=did, actor=submitter, command_id=self.command_id(wid),
                                  reason=rng.choice(COMMENTS)), members)
                self.count("deliverable.withdrawn", submitter)
            elif r < 0.10 and ("escalation", 1) in pending:
                d.handle(self.deadline(d, "escalation", 1), members)
                self.count("deliverable.escalated")
            elif r < 0.14 and ("reminder", 1) in pending:
                d.handle(self.deadline(d, "reminder", 1), members)
                self.count("deliverable.reminded")
            elif r < 0.15 and ("sla", 0) in pending:
                d.handle(self.deadline(d, "sla", 0), members)
                self.count("deliverable.sla_breached")
            else:
                actor = rng.choice(stage.waiting_on)
                verdict = ("request_changes" if r < 0.25 and len(d.revisions) < 4
                           else "reject" if r < 0.26 else "approve")
                d.handle(Decide(deliverable_id=did, actor=actor, command_id=self.command_id(wid), verdict=verdict,
                                comment="" if verdict == "approve" else rng.choice(COMMENTS),
                                revision=len(d.revisions)), members)
                self.count(f"deliverable.{verdict}", actor)
            yield d
        self.count(f"deliverable.ended_{d.status}")

    def dependency(self) -> Iterator[Any]:
        rng = self.rng
        requesting, providing = rng.sample(self.teams, 2)
        if rng.random() < 0.2:
            providing = None  # owed within the project
        owed_by = providing or requesting
        owner = rng.choice(owed_by.holders("eng"))
        opener = rng.choice(requesting.holders("pm") + requesting.holders("author"))
        uid = uuid.uuid4()
        wid = f"dependency-{uid}"
        parties = lambda: Parties(requesting=requesting.members,
                                  providing=providing.members if providing else None)
        cmd = OpenDependency(
            actor=opener, dependency_id=str(uid), command_id=self.command_id(wid, "open"),
            project_id=requesting.project_id,
            providing_project_id=providing.project_id if providing else None, title=rng.choice(DEPENDENCIES),
            owner={"user": owner}, needed_by=datetime.now(UTC) + timedelta(days=rng.randint(7, 90)),
            stall_after="P2D", escalation=[{"after": "P1D", "notify": ["pm"], "grant": ["pm"]}])
        d = Dependency.open(cmd, parties(), requesting.escalation_path, uid)
        self.count("dependency.opened", opener)
        yield d
        did = str(uid)
        if rng.random() < 0.2:  # nobody took it up: it stalls, and half of those escalate
            d.handle(FireDependencyDeadline(dependency_id=did, command_id=self.command_id(wid, "deadline:stall:0"),
                                            kind="stall", clock_started_at=d.clock.started_at), parties)
            self.count("dependency.stalled")
            yield d
            if rng.random() < 0.5:
                d.handle(FireDependencyDeadline(dependency_id=did, kind="escalation", level=1,
                                                command_id=self.command_id(wid, "deadline:escalation:1"),
                                                clock_started_at=d.clock.started_at), parties)
                self.count("dependency.escalated")
                yield d
        if rng.random() < 0.05:
            d.handle(Cancel(dependency_id=did, actor=opener, command_id=self.command_id(wid),
                            reason="No longer needed after the re-plan"), parties)
            self.count("dependency.cancelled", opener)
            yield d
            return
        if d.status in ("open",) and d.owner.user in [m["user"] for m in owed_by.members]:
            d.handle(Acknowledge(dependency_id=did, actor=owner, command_id=self.command_id(wid)), parties)
            self.count("dependency.acknowledged", owner)
            yield d
        else:
            self.count("dependency.owner_left")
            return
        for _ in range(rng.randint(0, 3)):
            if owner not in [m["user"] for m in owed_by.members]:
                return  # a charter change took the owner off the project meanwhile
            d.handle(ReportProgress(dependency_id=did, actor=owner, command_id=self.command_id(wid),
                                    note=rng.choice(NOTES), percent=rng.choice([25, 50, 75, 90])), parties)
            self.count("dependency.progress", owner)
            yield d
        if rng.random() < 0.85 and owner in [m["user"] for m in owed_by.members]:
            d.handle(Resolve(dependency_id=did, actor=owner, command_id=self.command_id(wid), note="delivered"), parties)
            self.count("dependency.resolved", owner)
            yield d

    def life(self) -> Iterator[Any]:
        return self.dependency() if self.rng.random() < 0.2 else self.deliverable()

    # ---- the run --------------------------------------------------------------------------------
    def run(self, target: int, pool: int = 300, batch_steps: int = 700,
            progress: Callable[[int, float], None] | None = None) -> Loaded:
        app, rng = self.app, self.rng
        began, started_at = time.perf_counter(), datetime.now(UTC)
        self.create_projects(max(4, target // 2500))
        for name, spec in POLICIES.items():
            self.publish(name, spec)
        charter_every = max(target // 20, 1000)  # about 20 charter changes per run
        policy_every = max(target // 8, 1000)  # and a new policy version now and then
        lives = [self.life() for _ in range(pool)]
        touched: dict[Any, Any] = {}
        saved = app.recorder.max_notification_id() or 0
        saves, steps, next_charter, next_policy, next_report = 0, 0, charter_every, policy_every, 0
        while saved < target:
            i = rng.randrange(pool)
            try:
                aggregate = next(lives[i])
            except StopIteration:
                lives[i] = self.life()
                continue
            touched[aggregate.id] = aggregate
            steps += 1
            if steps % batch_steps == 0:
                app.save(*touched.values())
                saves += 1
                touched.clear()
                saved = app.recorder.max_notification_id() or 0
                if saved >= next_charter:
                    self.change_charter()
                    next_charter += charter_every
                if saved >= next_policy:
                    name = rng.choice(list(POLICIES))
                    spec = {**POLICIES[name], "stages": [dict(s) for s in POLICIES[name]["stages"]]}
                    spec["stages"][-1]["sla"] = f"P{self.policies[name]['version'] + rng.randint(3, 9)}D"
                    self.publish(name, spec, actor=rng.choice(["paula", "priya"]))
                    next_policy += policy_every
                if progress and saved >= next_report:
                    progress(saved, time.perf_counter() - began)
                    next_report += max(target // 10, 1)
        if touched:
            app.save(*touched.values())
            saves += 1
        seconds = time.perf_counter() - began
        busiest = max(self.actions, key=self.actions.get)  # type: ignore[arg-type]
        return Loaded(events=app.recorder.max_notification_id() or 0, seconds=seconds, saves=saves,
                      counts=dict(sorted(self.counts.items())), projects=[t.project_id for t in self.teams],
                      busiest_actor=busiest, started_at=started_at, ended_at=datetime.now(UTC),
                      sample_subjects=self.subjects)


def load(app: Signoff, events: int = 1_000_000, seed: int = 10, verbose: bool = True) -> Loaded:
    """About `events` events (up to one batch more) through the domain into `app`'s store."""
    def progress(saved: int, seconds: float) -> None:
        if verbose:
            print(f"  loaded {saved:,} events in {seconds:.0f} s ({saved / max(seconds, 1e-9):,.0f}/s)",
                  file=sys.stderr, flush=True)
    return Loader(app, random.Random(seed)).run(events, progress=progress)


def decoded_read(app: Signoff, batch: int = 1000) -> tuple[int, float]:
    """Read the whole notification log in batches and map each to its domain event: (events, seconds)."""
    recorder, mapper = app.recorder, app.mapper
    began, position, count = time.perf_counter(), 1, 0
    while notifications := recorder.select_notifications(position, batch):
        for notification in notifications:
            mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id + 1
    return count, time.perf_counter() - began


# ---- the projector, the queries and verify -------------------------------------------------------------
JWT_SECRET = "bench-secret-that-is-long-enough-for-hs256"
RUNS = 50  # timed requests per query
DEEP = 50  # pages followed before the deep page is timed


@dataclass
class Query:
    name: str
    params: list[dict[str, str]]  # one per run (rotating over several filters), or the same every time
    latencies: list[float] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    api_cpu: float = 0.0  # seconds of the API process's CPU while this query's runs were timed
    user: str | None = None  # a member asking (rows of their projects only); None: pmo
    warm: float = 0.0  # seconds the untimed first request took


def start_api(url: str, tmp: Path, extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """`signoff api` in a process of its own (uvicorn, as deployed) on a free port; Temporal on a port
    nobody listens on: the audit routes read the view only."""
    port = free_port()
    env = {"SIGNOFF_EVENT_STORE": url, "SIGNOFF_DATA_DIR": str(tmp), "SIGNOFF_PORT": str(port),
           "SIGNOFF_JWT_SECRET": JWT_SECRET, "SIGNOFF_DEMO": "false",
           "SIGNOFF_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}", **extra}
    process = spawn([str(Path(sys.executable).with_name("signoff")), "api"], env, tmp / "api.log", "api")
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"signoff api exited with {process.returncode}; see {tmp / 'api.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("signoff api did not start")
        time.sleep(0.1)


def get(http: httpx.Client, params: dict[str, str], user: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {mint_token(JWT_SECRET, user, [])}"} if user else None
    r = http.get("/api/audit", params=params, headers=headers)
    if r.status_code != 200:
        raise RuntimeError(f"GET /api/audit {params}: {r.status_code} {r.text[:300]}")
    return r.json()


def queries(http: httpx.Client, rng: random.Random) -> list[Query]:
    """The five queries (pmo), their filters taken from the trail itself (untimed reads), and two of a member."""
    newest = get(http, {"limit": "1000"})["items"]
    oldest = get(http, {"order": "asc", "limit": "1"})["items"][0]
    actors = Counter(row["actor"] for row in newest if row["actor"] != "signoff")
    projects = Counter(row["project_id"] for row in newest if row["project_id"])
    subjects = list(dict.fromkeys(row["subject"]["id"] for row in newest if row["subject"]["kind"] == "deliverable"))
    first, last = datetime.fromisoformat(oldest["at"]), datetime.fromisoformat(newest[0]["at"])
    width = (last - first) / 100  # a window of about 1% of the trail

    def window() -> dict[str, str]:
        since = first + (last - first - width) * rng.random()
        return {"since": since.isoformat(), "until": (since + width).isoformat()}

    top = [a for a, _ in actors.most_common(10)]
    busy = [p for p, _ in projects.most_common(10)]
    deep = {"limit": "100"}
    for _ in range(DEEP):  # follow the cursor: newest first, 100 a page
        cursor = get(http, deep)["next_cursor"]
        if cursor is None:
            break
        deep = {"limit": "100", "cursor": cursor}
    return [
        Query("by actor", [{"actor": top[i % len(top)]} for i in range(RUNS)]),
        Query("by project + action prefix", [{"project_id": busy[i % len(busy)], "action": "deliverable.decision"}
                                             for i in range(RUNS)]),
        Query("by subject", [{"subject_id": subjects[i % len(subjects)]} for i in range(RUNS)]),
        Query("by time window (1%)", [window() for _ in range(RUNS)]),
        Query(f"deep cursor page ({DEEP} pages in)", [deep] * RUNS),
        # The busiest user as a member (about a fifth of the projects at the defaults): scoped to them.
        Query("member: no filter (scoped)", [{}] * RUNS, user=top[0]),
        Query("member: action prefix escalation", [{"action": "escalation"}] * RUNS, user=top[0]),
    ]


def time_queries(port: int, api: subprocess.Popen, rng: random.Random) -> list[Query]:
    """Each query RUNS times, one request at a time, after one untimed request each, and the API's CPU meanwhile."""
    token = mint_token(JWT_SECRET, "paula", ["pmo"])
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"},
                      timeout=1800) as http:
        chosen = queries(http, rng)
        for query in chosen:
            started = time.perf_counter()
            get(http, query.params[0], query.user)  # warm
            query.warm = time.perf_counter() - started
            cpu_before = cpu_seconds(api.pid)
            for params in query.params:
                started = time.perf_counter()
                body = get(http, params, query.user)
                query.latencies.append(time.perf_counter() - started)
                query.items.append(len(body["items"]))
            query.api_cpu = cpu_seconds(api.pid) - cpu_before
        return chosen


def run_store(kind: str, url: str, events: int, tmp: Path) -> None:
    app = open_application(url)
    try:
        have = app.recorder.max_notification_id() or 0
        if have >= events:
            print(f"{kind}: the kept store holds {have:,} events already: not loaded again")
        else:
            if have:
                raise SystemExit(f"{kind}: the store holds {have:,} events, fewer than {events:,}: start afresh")
            loaded = load(app, events)
            print(f"{kind}: loaded {loaded.events:,} events in {loaded.seconds:.1f} s = "
                  f"{loaded.events / loaded.seconds:,.0f} events/s ({loaded.saves} saves, "
                  f"{loaded.events / max(loaded.saves, 1):,.0f} events each)")
            print(f"  lives: {loaded.counts}")
        count, seconds = decoded_read(app)
        ceiling = count / seconds
        print(f"{kind}: decoded read of the log: {count:,} events in {seconds:.1f} s = {ceiling:,.0f} events/s")
    finally:
        app.close()

    from store.audit_keys import SigningKey
    from workers.projector import open_projector

    key_path = tmp / f"{kind}-audit-signing-key.pem"
    key = SigningKey.load(key_path, make=True)
    projector = open_projector(url, key)
    try:
        if projector.view.position():  # a kept store's view: emptied first (untimed), as a rebuild does
            projector.view.clear()
            projector.projection.reset()
        began = time.perf_counter()
        rows = projector.catch_up()
        seconds = time.perf_counter() - began
        checkpoints = len(projector.view.checkpoints())
    finally:
        close(projector.app, projector.view)
    print(f"{kind}: projector catch-up from zero: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
          f"(goal >= 50,000/s; {rows / seconds / ceiling:.2f} of the decoded read; {checkpoints} checkpoints signed)")
    print(f"  on disk: {store_sizes(url)}")

    # The API's list views, from which a member's scope comes: `signoff projector` keeps them beside the trail;
    # here they are caught up once, so that no member request below pays for it.
    from store.views import ReadModel

    app = open_application(url)
    try:
        began = time.perf_counter()
        read = ReadModel(app, url).catch_up()
        print(f"{kind}: the API's list views caught up from zero: {read:,} events in {time.perf_counter() - began:.1f} s")
    finally:
        app.close()

    api, port = start_api(url, tmp, {"SIGNOFF_AUDIT_SIGNING_KEY": str(key_path)})
    try:
        report_queries(kind, time_queries(port, api, random.Random(10)), "as the projector left the view")
        if kind == "postgresql":
            # This server runs without autovacuum, so the planner has no statistics of the view (as anywhere
            # right after a rebuild); what autovacuum would do soon after, done here, then the same queries again.
            seconds = vacuum_analyze(url)
            report_queries(kind, time_queries(port, api, random.Random(10)),
                           f"after VACUUM ANALYZE of the view's tables ({seconds:.1f} s)")
    finally:
        stop_process(api)

    from store.audit_view import open_audit_view
    from workers.audit_verify import verify_store

    app, view = open_application(url), open_audit_view(url)
    try:
        began = time.perf_counter()
        report = verify_store(app, view, key.public)
        seconds = time.perf_counter() - began
    finally:
        close(app, view)
    print(f"{kind}: verify (recompute the chain from the event store, compare with the view and the checkpoints): "
          f"{'ok' if report.ok else 'NOT OK'} in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")
    if not report.ok:
        print(f"  {report}")


def store_sizes(url: str) -> str:
    """The event store's and the audit view's size on disk (PostgreSQL: tables with their indexes)."""
    if url.startswith("sqlite"):
        events = Path(urlsplit(url).path)
        files = [events, events.with_suffix(".audit.sqlite")]
        sizes = [sum(f.stat().st_size for f in f.parent.glob(f.name + "*")) for f in files]
    else:
        import psycopg

        schema = parse_qs(urlsplit(url).query)["schema"][0]
        with psycopg.connect(POSTGRES_URL) as conn:
            sizes = [conn.execute("SELECT pg_total_relation_size(%s)", (f'"{schema}".{table}',)).fetchone()[0]
                     for table in ("signoff_events", "signoff_audit")]
    return f"event store {sizes[0] / 2**20:,.0f} MB, audit view {sizes[1] / 2**20:,.0f} MB"


def report_queries(kind: str, measured: list[Query], when: str) -> None:
    print(f"{kind}: queries through HTTP, {when} (signoff api, uvicorn, its own process; pmo token; {RUNS} runs "
          "each, one at a time)")
    print(f"  {'query':34}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'rows':>7}{'API CPU ms':>12}")
    for q in measured:
        print(f"  {q.name:34}{percentile(q.latencies, 0.5) * 1000:>9.1f}{percentile(q.latencies, 0.95) * 1000:>9.1f}"
              f"{max(q.latencies) * 1000:>9.1f}{sum(q.items) / len(q.items):>7.0f}"
              f"{q.api_cpu * 1000 / len(q.latencies):>12.1f}")
    worst = max(percentile(q.latencies, 0.95) for q in measured if q.user is None)
    print(f"  worst p95 of the five {worst * 1000:.1f} ms (goal < 20 ms); rows: the mean returned; API CPU: per "
          "request, the API process's user + system time")
    for q in measured:
        if q.warm > 1:
            print(f"  the first (untimed) request of {q.name!r} took {q.warm:.1f} s")


def vacuum_analyze(url: str) -> float:
    import psycopg
    from psycopg import sql

    schema = parse_qs(urlsplit(url).query)["schema"][0]
    began = time.perf_counter()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for table in ("signoff_audit", "signoff_audit_subjects"):
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
    return time.perf_counter() - began


def close(*things: Any) -> None:
    for thing in things:
        if hasattr(thing, "close"):
            thing.close()
        elif hasattr(getattr(thing, "datastore", None), "close"):
            thing.datastore.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", "-n", type=int, default=1_000_000, help="events to load (about: whole batches)")
    parser.add_argument("--no-postgresql", action="store_true", help="SQLite only")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the stores: the SQLite one in DIR, the PostgreSQL one in schema bench_audit; "
                             "a later run with the same DIR loads nothing and measures them again")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    def git(*words: str) -> str:
        return subprocess.run(["git", *words], cwd=root, capture_output=True, text=True, check=False).stdout

    commit, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no").split()
    print(f"signoff at {commit.strip() or '?'}{' with uncommitted changes' if dirty else ''}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    tmp = Path(tempfile.mkdtemp(prefix="signoff-audit-"))
    try:
        for kind in ["sqlite"] + ([] if args.no_postgresql else ["postgresql"]):
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                url = (f"sqlite:///{args.keep.resolve() / 'events.sqlite'}" if kind == "sqlite"
                       else f"{POSTGRES_URL}?schema=bench_audit")
                drop: Callable[[], None] = lambda: None
            else:
                url, drop = store_url(kind, tmp, prefix="bench_audit")
            try:
                run_store(kind, url, args.events, args.keep or tmp)
            finally:
                drop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
