"""The past, read back (issue 11 items 1 and 2), as properties over random lives on a SQLite store.

A deliverable (decisions, requests for changes, revisions, reminders, escalations that grant,
reassignments, a reject or a withdrawal) and a dependency (acknowledge, progress, reminders, stalls,
escalations, overdue, a new owner, resolve or cancel) live a random life through the application's
use cases, as the workflows drive them. Then:

- as of every event's time, the record is the fold of the events up to it: what eventsourcing's own
  repository rebuilds at that version (an event at exactly the moment is in, the next one is not);
- as of the time a command's recording ended, it is what a GET answered right after that command;
- a moment before the first event is a 404, saying when the record began;
- the timeline's intervals touch end to end, each holds the state `as_of` answers at its start, and
  one ends only where the life did.
"""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.application import event_time
from domain.commands import Decide, FireDeadline, Reassign, SubmitRevision, Withdraw
from domain.deliverable import Deliverable
from domain.dependency import Dependency
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    FireDependencyDeadline,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.errors import DomainError, NotFound
from domain.policies import policy_id
from domain.timeline import deliverable_key, dependency_key
from tests.builders import MEMBERS, make_policy, make_project, revision, submission

MICROSECOND = timedelta(microseconds=1)
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
GRANT = [{"after": "PT8H", "notify": ["pm"]}, {"after": "P1D", "notify": ["pmo"], "grant": ["pmo"]}]


def policy(on_revision: str) -> dict[str, Any]:
    timed = {"sla": "P1D", "reminders": ["PT4H"], "escalation": GRANT}
    return {"stages": [{"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", **timed},
                       {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2, **timed},
                       {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"}],
            "on_revision": on_revision}


# Weighted by repetition; what ends the life is rare, so most lives run long.
DELIVERABLE_MOVES = st.lists(st.sampled_from(["approve"] * 4 + ["deadline"] * 3 + ["revision"] * 2 + [
    "request_changes"] * 2 + ["reassign", "reject", "withdraw"]), min_size=3, max_size=24)


def deliverable_command(state: Any, move: str, n: int) -> Any:
    """The command `move` is for the deliverable as it is, or None where it makes no sense now."""
    stage, ids = state.stage, {"deliverable_id": state.id, "command_id": f"cmd-{n}"}
    if move in ("approve", "request_changes", "reject") and stage is not None and stage.open and stage.waiting_on:
        return Decide(actor=stage.waiting_on[0], verdict=move, comment="because", revision=state.revision, **ids)
    if move == "revision" and state.status == "changes_requested":
        return SubmitRevision(actor="alice", **revision(f"v{n}"), **ids)
    if move == "deadline" and stage is not None and stage.open and state.next_deadline is not None:
        due = state.next_deadline
        return FireDeadline(stage_index=stage.index, opened_at=stage.opened_at.isoformat(), kind=due.kind,
                            level=due.level, **ids)
    if move == "reassign" and stage is not None and stage.open:
        return Reassign(actor="paula", approvers=["pete", "paula"], reason="on leave", **ids)
    if move == "withdraw":
        return Withdraw(actor="alice", reason="paused", **ids)
    return None


def check_as_of(app: Any, uid: Any, kind: type, read: Any, after_commands: list[tuple[datetime, Any]]) -> None:
    events = list(app.events.get(uid))
    times = [event_time(e) for e in events]
    assert times == sorted(times)  # one process's clock: the fold's order is time order
    for i, at in enumerate(times):
        upto = max(j for j, t in enumerate(times) if t <= at) + 1  # events at the same microsecond, all in
        assert read(uid, at) == app.repository.get(uid, version=upto).to_state()
        before = sum(1 for t in times if t < at)  # a microsecond earlier: times have no finer grain
        if before == 0:
            with pytest.raises(NotFound, match="did not exist yet"):
                read(uid, at - MICROSECOND)
        else:
            assert read(uid, at - MICROSECOND) == app.repository.get(uid, version=before).to_state()
    for ended, state in after_commands:
        assert read(uid, ended) == state
    assert read(uid, datetime.now(UTC)) == read(uid, None)


def check_timeline(app: Any, uid: Any, kind: type, tl: dict[str, Any], key: Any, finished: bool) -> None:
    intervals = tl["intervals"]
    events = list(app.events.get(uid))
    assert intervals and intervals[0]["from"] == tl["started_at"] == event_time(events[0])
    for before, after in itertools.pairwise(intervals):
        assert before["to"] == after["from"] and before["duration_s"] >= 0
        assert {k: v for k, v in before.items() if k not in ("from", "to", "duration_s")} != {
            k: v for k, v in after.items() if k not in ("from", "to", "duration_s")}
    assert (intervals[-1]["to"] is None) is (not finished)
    assert tl["ended_at"] == intervals[-1]["to"]
    label = f"{kind.__name__.lower()} {uid}"
    first_step = next((i for i, e in enumerate(events) if i and getattr(e, "command_id", None)), len(events))
    for i, interval in enumerate(intervals):
        at = interval["from"] if i else event_time(events[first_step - 1])
        then = key(app.aggregate_as_of(uid, at, kind, label))
        assert then == {k: v for k, v in interval.items() if k not in ("from", "to", "duration_s")}
    assert len(tl["points"]) == len(events)


@EXAMPLES
@given(moves=DELIVERABLE_MOVES, on_revision=st.sampled_from(["restart", "resume"]))
def test_a_deliverable_as_of_every_event_is_the_fold_up_to_it(sqlite_app, moves, on_revision):
    app = sqlite_app
    project_id = make_project(app, GRANT)
    view = app.submit_deliverable(submission(project_id, make_policy(app, policy(on_revision)),
                                             command_id="submitted"))
    uid = uuid.UUID(view.id)
    state = app.get_deliverable(uid)
    after = [(state.updated_at, state)]
    for n, move in enumerate(moves):
        if state.status in ("approved", "rejected", "withdrawn"):
            break
        command = deliverable_command(state, move, n)
        if command is None:
            continue
        try:
            app.change_deliverable(command)
        except DomainError:
            continue  # refused: records nothing
        state = app.get_deliverable(uid)
        after.append((max(event_time(e) for e in app.events.get(uid)), state))
    check_as_of(app, uid, Deliverable, app.get_deliverable, after)
    tl = app.deliverable_timeline(uid, datetime.now(UTC))
    check_timeline(app, uid, Deliverable, tl, deliverable_key, state.status in ("approved", "rejected", "withdrawn"))
    # Each decision starts an interval in which the one who decided is waited on no more.
    decisions = [p for p in tl["points"] if p["kind"] == "decision"]
    assert len(decisions) == len(state.decisions)


PROVIDERS = [{"user": "omar", "roles": ["eng"]}, {"user": "olga", "roles": ["eng"]}, {"user": "pia", "roles": ["pm"]}]
DEPENDENCY_MOVES = st.lists(st.sampled_from(["stall"] * 3 + ["escalation"] * 3 + ["progress"] * 2 + [
    "acknowledge", "remind", "overdue", "reassign", "resolve", "cancel"]), min_size=3, max_size=16)


def dependency_command(app: Any, uid: Any, move: str, n: int, owner: str) -> Any:
    ids = {"dependency_id": str(uid), "command_id": f"cmd-{n}"}
    if move in ("remind", "stall", "escalation", "overdue"):
        watch = app.dependency_watch(uid)
        kind = "reminder" if move == "remind" else move
        due = next((d for d in watch.deadlines if d.kind == kind), None)
        if due is None:
            return None
        return FireDependencyDeadline(kind=kind, level=due.level, clock_started_at=watch.clock_started_at,
                                      due_at=due.due_at, **ids)
    match move:
        case "acknowledge":
            return Acknowledge(actor=owner, **ids)
        case "progress":
            return ReportProgress(actor=owner, note="on it", percent=n % 100, **ids)
        case "reassign":
            return ReassignOwner(actor="paula", actor_roles=("pmo",), owner={"user": "olga" if owner == "omar"
                                                                                else "omar"}, reason="leave", **ids)
        case "resolve":
            return Resolve(actor=owner, note="done", **ids)
        case _:
            return Cancel(actor="alice", reason="not needed", **ids)


@EXAMPLES
@given(moves=DEPENDENCY_MOVES)
def test_a_dependency_as_of_every_event_is_the_fold_up_to_it(sqlite_app, moves):
    app = sqlite_app
    requesting = app.create_project("Northwind website relaunch", MEMBERS, GRANT, [], "paula")
    providing = app.create_project("Platform team", PROVIDERS, [], [], "paula")
    uid = uuid.uuid4()
    app.open_dependency(OpenDependency(
        actor="alice", dependency_id=str(uid), command_id="opened", project_id=str(requesting.id),
        providing_project_id=str(providing.id), title="Sandbox credentials", owner={"user": "omar"},
        needed_by=datetime.now(UTC) + timedelta(days=10), stall_after="P2D", remind_before="P1D"))
    state, owner = app.get_dependency(uid), "omar"
    after = [(state.updated_at, state)]
    for n, move in enumerate(moves):
        if state.status in ("resolved", "cancelled"):
            break
        command = dependency_command(app, uid, move, n, owner)
        if command is None:
            continue
        try:
            app.change_dependency(command, frozenset({"pmo"}) if command.actor == "paula" else frozenset())
        except DomainError:
            continue
        state = app.get_dependency(uid)
        owner = state.owner.user or owner
        after.append((max(event_time(e) for e in app.events.get(uid)), state))
    check_as_of(app, uid, Dependency, app.get_dependency, after)
    tl = app.dependency_timeline(uid, datetime.now(UTC))
    check_timeline(app, uid, Dependency, tl, dependency_key, state.status in ("resolved", "cancelled"))


def test_projects_and_policies_as_of(sqlite_app):
    app = sqlite_app
    name = f"policy-{uuid.uuid4().hex[:8]}"
    first = make_policy(app, policy("restart"), name=name)
    second = make_policy(app, {**policy("restart"), "on_revision": "resume"}, name=name)
    published = [event_time(e) for e in app.events.get(policy_id(name))]  # created, v1, v2
    assert app.get_policy(name, as_of=published[1])["version"] == first["version"] == 1
    then = app.get_policy(name, as_of=published[1])
    assert (then["on_revision"], then["latest_version"]) == ("restart", 1)
    assert app.get_policy(name, as_of=published[2])["version"] == second["version"] == 2
    with pytest.raises(NotFound, match="did not exist yet"):
        app.get_policy(name, as_of=published[0] - MICROSECOND)
    with pytest.raises(NotFound, match="had no version yet"):
        app.get_policy(name, as_of=published[0])

    project_id = make_project(app)
    created = app.read_project(project_id).created_on
    without_erin = [m for m in MEMBERS if m["user"] != "erin"]
    app.change_project(project_id, "paula", "erin leaves", members=without_erin)
    assert app.project_as_of(project_id, created).members == MEMBERS
    assert app.project_as_of(project_id, datetime.now(UTC)).members == without_erin
    with pytest.raises(NotFound, match="did not exist yet"):
        app.project_as_of(project_id, created - MICROSECOND)
    deliverable = app.submit_deliverable(submission(project_id, first, command_id="s"))
    with pytest.raises(NotFound, match="no project"):  # an id of another kind of record
        app.project_as_of(deliverable.id, datetime.now(UTC))
