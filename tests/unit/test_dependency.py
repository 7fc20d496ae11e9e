"""The Dependency aggregate, its rules and the application's use cases on the in-memory store."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.application import Signoff
from domain.business_time import add
from domain.calendar import Calendar
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    FireDependencyDeadline,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_state import Clock, Schedule, pending_deadlines
from domain.errors import Conflict, DependencyClosed, Forbidden, Invalid, NotFound
from tests.builders import MEMBERS, make_policy, submission

# The team that owes the sandbox credentials; nobody here is on the requesting project.
PROVIDERS = [
    {"user": "omar", "roles": ["eng"]},
    {"user": "olga", "roles": ["eng"]},
    {"user": "pia", "roles": ["pm"]},
    {"user": "vic", "roles": ["vp"]},
]
PATH = [{"after": "PT1H", "notify": ["pm"]}, {"after": "PT2H", "notify": ["pmo", "vp", "zoe"], "grant": ["pm"]}]


@pytest.fixture
def app():
    return Signoff(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def projects(app):
    requesting = app.create_project("Northwind website relaunch", MEMBERS, PATH, [], "paula")
    providing = app.create_project("Platform team", PROVIDERS, [], [], "paula")
    return str(requesting.id), str(providing.id)


def later(**delta):
    return datetime.now(UTC) + timedelta(**delta)


def open_one(app, projects, actor="alice", dependency_id=None, **fields):
    requesting, providing = projects
    body = {"project_id": requesting, "providing_project_id": providing, "title": "Sandbox credentials",
            "owner": {"user": "omar"}, "needed_by": later(days=10), "stall_after": "P2D", **fields}
    return app.open_dependency(OpenDependency(actor=actor, dependency_id=dependency_id or str(uuid.uuid4()),
                                              command_id=f"open-{uuid.uuid4()}", **body))


def change(app, state, command, **fields):
    return app.change_dependency(command(dependency_id=state.id, command_id=fields.pop("command_id", None)
                                         or str(uuid.uuid4()), **fields))


def fire(app, state, kind, level=0, clock=None, command_id=None):
    clock = clock or app.dependency_watch(state.id).clock_started_at
    return change(app, state, FireDependencyDeadline, kind=kind, level=level, clock_started_at=clock,
                  command_id=command_id or f"{kind}-{level}-{clock.isoformat()}")


def test_open_answers_the_issue_shape(app, projects):
    state = open_one(app, projects, remind_before="P1D")
    shown = state.model_dump(mode="json")
    assert set(shown) == {"id", "project_id", "providing_project_id", "title", "owner", "needed_for", "status",
                          "stalled", "overdue", "needed_by", "stall_after", "last_progress_at", "percent",
                          "escalations", "next_deadline", "created_by", "created_at", "updated_at", "version"}
    assert (state.status, state.stalled, state.overdue, state.created_by) == ("open", False, False, "alice")
    assert state.next_deadline.kind == "stall"
    assert state.next_deadline.due_at == state.created_at + timedelta(days=2)
    kinds = [(d.kind, d.level) for d in app.dependency_watch(state.id).deadlines]
    assert kinds == [("stall", 0), ("reminder", 0), ("overdue", 0)]


def test_lifecycle_open_acknowledge_progress_resolve(app, projects):
    state = open_one(app, projects, owner={"role": "eng"})
    state = change(app, state, Acknowledge, actor="olga")  # any holder of the owner role
    assert state.status == "in_progress"
    state = change(app, state, ReportProgress, actor="omar", note="requested from vendor", percent=40)
    assert (state.percent, state.last_progress_at is not None) == (40, True)
    state = change(app, state, Resolve, actor="omar", note="in the vault")
    assert (state.status, state.next_deadline) == ("resolved", None)
    assert app.dependency_watch(state.id).deadlines == []


def test_only_the_owner_acknowledges_progresses_resolves(app, projects):
    state = open_one(app, projects)
    for command, fields in [(Acknowledge, {}), (ReportProgress, {"note": "x"}), (Resolve, {"note": "x"})]:
        for actor in ("olga", "alice", "paula", "stranger"):  # same role as the owner, requester, pmo, nobody
            with pytest.raises(Forbidden):
                change(app, state, command, actor=actor, **fields)
    assert app.get_dependency(state.id).version == state.version


def test_any_action_on_a_closed_dependency_is_a_conflict(app, projects):
    for close, closer in [(Resolve, {"actor": "omar", "note": "done"}), (Cancel, {"actor": "alice", "reason": "no"})]:
        state = change(app, open_one(app, projects), close, **closer)
        for command, fields in [(Acknowledge, {"actor": "omar"}), (ReportProgress, {"actor": "omar"}),
                                (Resolve, {"actor": "omar"}), (Cancel, {"actor": "paula", "reason": "x"}),
                                (ReassignOwner, {"actor": "paula", "owner": {"user": "olga"}, "reason": "x"})]:
            with pytest.raises(DependencyClosed) as caught:
                change(app, state, command, **fields)
            assert isinstance(caught.value, Conflict)
        assert app.get_dependency(state.id).version == state.version
        fire(app, state, "overdue")  # a timer racing the close is a no-op, not an error
        assert app.get_dependency(state.id).version == state.version


def test_acknowledging_twice_is_a_conflict(app, projects):
    state = change(app, open_one(app, projects), Acknowledge, actor="omar")
    with pytest.raises(Conflict):
        change(app, state, Acknowledge, actor="omar")


@pytest.mark.parametrize("fields, field", [
    ({"needed_by": later(minutes=-1)}, "needed_by"),
    ({"stall_after": "PT0S"}, "stall_after"),
    ({"stall_after": "P367D"}, "stall_after"),
    ({"stall_after": "soon"}, "stall_after"),
    ({"remind_before": "P1M"}, "remind_before"),
    ({"owner": {"user": "zoe"}}, "owner"),  # nobody by that name in the providing project
    ({"owner": {"user": "alice"}}, "owner"),  # a requester is not on the providing project
    ({"owner": {"role": "design-lead"}}, "owner"),  # a role nobody there holds
])
def test_invalid_openings_name_the_field_and_record_nothing(app, projects, fields, field):
    dependency_id = str(uuid.uuid4())
    with pytest.raises(Invalid) as caught:
        open_one(app, projects, dependency_id=dependency_id, **fields)
    assert caught.value.field[0] == field and field in caught.value.detail
    with pytest.raises(NotFound):
        app.get_dependency(dependency_id)


def test_without_a_providing_project_the_owner_is_on_the_requesting_one(app, projects):
    requesting, _ = projects
    state = open_one(app, (requesting, None), owner={"user": "carol"})
    assert state.providing_project_id is None
    with pytest.raises(Invalid):
        open_one(app, (requesting, None), owner={"user": "omar"})


def test_openings_checked_for_projects_deliverables_and_members(app, projects):
    requesting, providing = projects
    with pytest.raises(Invalid) as caught:
        open_one(app, (requesting, str(uuid.uuid4())))
    assert caught.value.field == ("providing_project_id",)
    with pytest.raises(Invalid) as caught:
        open_one(app, projects, needed_for=str(uuid.uuid4()))
    assert caught.value.field == ("needed_for",)
    with pytest.raises(Forbidden):
        open_one(app, projects, actor="omar")  # a provider does not open on the requesting project's behalf
    with pytest.raises(NotFound):
        open_one(app, (str(uuid.uuid4()), providing))
    deliverable = app.submit_deliverable(submission(requesting, make_policy(app)))
    assert open_one(app, projects, needed_for=deliverable.id).needed_for == deliverable.id


def test_commands_refuse_malformed_fields():
    with pytest.raises(ValidationError):
        Cancel(actor="alice", reason="  ")  # a cancel says why
    with pytest.raises(ValidationError):
        ReportProgress(actor="omar", percent=101)
    with pytest.raises(ValidationError):
        OpenDependency(actor="alice", project_id="p", title="t", owner={"user": "omar", "role": "eng"},
                       needed_by=later(days=1), stall_after="P1D")
    with pytest.raises(ValidationError):
        OpenDependency(actor="alice", project_id="p", title="t", owner={"user": "omar"},
                       needed_by=datetime(2030, 1, 1), stall_after="P1D")  # no time zone


def test_cancel_by_requester_pmo_or_admin_only(app, projects):
    state = open_one(app, projects)
    for actor in ("omar", "carol", "pia"):  # the owner, another requesting member, the provider's pm
        with pytest.raises(Forbidden):
            change(app, state, Cancel, actor=actor, reason="not needed")
    assert change(app, state, Cancel, actor="paula", reason="scope cut").status == "cancelled"  # pmo member
    other = open_one(app, projects)
    admin = app.change_dependency(Cancel(actor="root", dependency_id=other.id, command_id="c", reason="dup"),
                                  global_roles=frozenset({"admin"}))
    assert admin.status == "cancelled"


def test_the_stall_clock_restarts_and_progress_starts_escalation_over(app, projects):
    state = open_one(app, projects)
    first = app.dependency_watch(state.id).clock_started_at
    state = fire(app, state, "stall")
    assert state.stalled and state.next_deadline.kind == "escalation" and state.next_deadline.level == 1
    state = fire(app, state, "escalation", 1)
    assert [e.level for e in state.escalations] == [1]
    assert state.escalations[0].notified == ["pete", "pia"]  # pm of both projects
    state = change(app, state, ReportProgress, actor="omar", note="asked the vendor")
    second = app.dependency_watch(state.id).clock_started_at
    assert second > first and not state.stalled
    assert state.next_deadline.kind == "stall"
    assert state.next_deadline.due_at == second + timedelta(days=2)
    # The same escalation level fires again in the new run, from its own stall.
    state = fire(app, state, "stall")
    state = fire(app, state, "escalation", 1)
    assert [e.level for e in state.escalations] == [1, 1]


def test_acknowledging_restarts_the_clock_and_ends_a_stall(app, projects):
    state = fire(app, open_one(app, projects), "stall")
    first = app.dependency_watch(state.id).clock_started_at
    state = change(app, state, Acknowledge, actor="omar")
    assert not state.stalled and state.next_deadline.kind == "stall"
    assert app.dependency_watch(state.id).clock_started_at > first


def test_a_deadline_of_a_restarted_clock_is_a_no_op(app, projects):
    state = open_one(app, projects)
    old = app.dependency_watch(state.id).clock_started_at
    state = change(app, state, Acknowledge, actor="omar")
    after = fire(app, state, "stall", clock=old)
    assert (after.version, after.stalled) == (state.version, False)
    stalled = fire(app, state, "stall")
    late = fire(app, stalled, "escalation", 1, clock=old)
    assert late.version == stalled.version and late.escalations == []


def test_deadlines_not_pending_are_no_ops(app, projects):
    state = open_one(app, projects)  # no remind_before: no reminder
    assert fire(app, state, "reminder").version == state.version
    assert fire(app, state, "escalation", 1).version == state.version  # not stalled yet
    state = fire(app, state, "stall")
    assert fire(app, state, "escalation", 3).version == state.version  # the path has two steps
    twice = fire(app, state, "stall", command_id="another-id")
    assert twice.version == state.version


def test_same_command_id_records_once(app, projects):
    state = open_one(app, projects)
    once = change(app, state, ReportProgress, actor="omar", note="half", percent=50, command_id="p1")
    twice = change(app, state, ReportProgress, actor="omar", note="half", percent=50, command_id="p1")
    assert once.version == twice.version
    assert [e["type"] for e in app.dependency_history(state.id)] == ["Opened", "ProgressReported"]
    dependency_id = str(uuid.uuid4())
    first = open_one(app, projects, dependency_id=dependency_id)
    again = open_one(app, projects, dependency_id=dependency_id, title="another title")
    assert (again.version, again.title) == (first.version, first.title)


def test_escalation_never_reaches_outsiders_and_grants_resolve(app, projects):
    state = fire(app, open_one(app, projects), "stall")
    state = fire(app, state, "escalation", 1)
    state = fire(app, state, "escalation", 2)
    second = state.escalations[1]
    assert second.notified == ["paula", "vic"]  # "zoe" is on neither project: nobody is told
    assert second.granted == ["pete", "pia"]
    assert "zoe" not in {p for e in state.escalations for p in e.notified}
    change(app, state, ReassignOwner, actor="pia", owner={"user": "olga"}, reason="omar is on leave")
    with pytest.raises(Forbidden):
        change(app, state, ReportProgress, actor="omar", note="back")
    assert change(app, state, Resolve, actor="pete", note="found them").status == "resolved"


def test_own_escalation_steps_win_and_notify_both_projects(app, projects):
    steps = [{"after": "PT30M", "notify": ["eng", "carol", "omar", "nobody"]}]
    state = fire(app, open_one(app, projects, escalation=steps), "stall")
    stalled_at = datetime.fromisoformat(app.dependency_history(state.id)[-1]["due_at"])  # when its clock ran out
    assert (state.next_deadline.kind, state.next_deadline.due_at) == ("escalation", stalled_at + timedelta(minutes=30))
    state = fire(app, state, "escalation", 1)
    assert state.escalations[0].notified == ["carol", "dan", "erin", "omar", "olga"]
    assert state.next_deadline.kind == "overdue"


def test_reassign_checks_who_and_to_whom(app, projects):
    state = open_one(app, projects)
    with pytest.raises(Forbidden):
        change(app, state, ReassignOwner, actor="omar", owner={"user": "olga"}, reason="swap")
    with pytest.raises(Invalid) as caught:
        change(app, state, ReassignOwner, actor="paula", owner={"user": "alice"}, reason="swap")
    assert caught.value.field == ("owner",)
    with pytest.raises(Conflict):
        change(app, state, ReassignOwner, actor="paula", owner={"user": "omar"}, reason="same")
    state = change(app, state, ReassignOwner, actor="paula", owner={"role": "eng"}, reason="team owns it")
    assert state.owner.role == "eng"
    assert change(app, state, Acknowledge, actor="olga").status == "in_progress"


def test_reminder_and_overdue_fire_once(app, projects):
    state = open_one(app, projects, remind_before="P1D")
    due = app.dependency_watch(state.id).deadlines
    assert next(d for d in due if d.kind == "reminder").due_at == state.needed_by - timedelta(days=1)
    state = fire(app, state, "reminder")
    assert fire(app, state, "reminder", command_id="again").version == state.version
    state = fire(app, state, "overdue")
    assert state.overdue and state.status == "open"
    assert [d.kind for d in app.dependency_watch(state.id).deadlines] == ["stall"]
    history = app.dependency_history(state.id)
    assert [e["type"] for e in history] == ["Opened", "ReminderSent", "BecameOverdue"]
    assert history[1]["to"] == ["omar"] and history[2]["told"] == ["alice"]


def test_as_of_shows_the_dependency_as_it_was(app, projects):
    state = open_one(app, projects)
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    change(app, state, Acknowledge, actor="omar")
    assert app.get_dependency(state.id, as_of=between).status == "open"
    assert app.get_dependency(state.id).status == "in_progress"
    with pytest.raises(NotFound):
        app.get_dependency(state.id, as_of=state.created_at - timedelta(seconds=1))


def test_unknown_or_other_kinds_of_ids_are_not_found(app, projects):
    with pytest.raises(NotFound):
        app.get_dependency(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        app.get_dependency(projects[0])  # a project's id is no dependency
    with pytest.raises(NotFound):
        app.dependency_history("not-a-uuid")


def test_pending_deadlines_are_a_pure_function_of_the_schedule():
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    schedule = Schedule(needed_by=start + timedelta(days=5), stall_after="P2D", remind_before="P1D",
                        escalation=[{"after": "PT4H"}, {"after": "P1D"}], clock=Clock(started_at=start))
    assert [(d.kind, d.due_at - start) for d in pending_deadlines(schedule)] == [
        ("stall", timedelta(days=2)), ("reminder", timedelta(days=4)), ("overdue", timedelta(days=5))]
    stalled = schedule.model_copy(update={"clock": Clock(started_at=start, stalled_at=start + timedelta(days=2),
                                                         escalation_level=1)})
    assert [(d.kind, d.level, d.due_at - start) for d in pending_deadlines(stalled)] == [
        ("escalation", 2, timedelta(days=3)), ("reminder", 0, timedelta(days=4)), ("overdue", 0, timedelta(days=5))]
    assert pending_deadlines(schedule.model_copy(update={"status": "resolved"})) == []


def test_parties_see_members_of_either_project_only(app, projects):
    state = open_one(app, projects)
    parties = app.dependency_parties(state.id)
    assert parties.sees("alice") and parties.sees("omar") and not parties.sees("zoe")
    assert app.dependency_parties(state.id, frozenset({"pmo"})).sees("zoe")


def test_a_calendar_project_counts_the_dependency_in_working_time_and_records_the_calendar(app):
    berlin = {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
              "working_days": ["mon", "tue", "wed", "thu", "fri"], "working_hours": ["09:00", "17:00"]}
    requesting = app.create_project("Northwind website relaunch", MEMBERS, PATH, [], "paula", calendar=berlin)
    providing = app.create_project("Platform team", PROVIDERS, [], [], "paula")
    # Needed on Monday 4 January 2027 10:00 Berlin; a reminder one working day before is Thursday
    # 31 December 10:00 (New Year's Day is a holiday, then the weekend).
    needed_by = datetime(2027, 1, 4, 9, tzinfo=UTC)
    state = open_one(app, (str(requesting.id), str(providing.id)), needed_by=needed_by, remind_before="P1D",
                     stall_after="PT4H")
    opened = app.dependency_history(state.id)[0]
    assert opened["calendar"]["country"] == "DE" and opened["holidays_version"]
    reminder = next(d for d in app.dependency_watch(state.id).deadlines if d.kind == "reminder")
    assert reminder.due_at == datetime(2026, 12, 31, 9, tzinfo=UTC)
    stall = next(d for d in app.dependency_watch(state.id).deadlines if d.kind == "stall")
    assert stall.due_at == add(state.created_at, "PT4H", Calendar.model_validate(berlin))
    # A fired deadline records the due time it was fired for.
    fired = fire(app, state, "reminder")
    entry = [e for e in app.dependency_history(fired.id) if e["type"] == "ReminderSent"][0]
    assert datetime.fromisoformat(entry["due_at"]) == reminder.due_at


def test_escalation_counts_from_when_the_clock_ran_out_not_from_a_late_recording(app, projects):
    state = open_one(app, projects, stall_after="PT1H")
    watch = app.dependency_watch(state.id)
    due = next(d.due_at for d in watch.deadlines if d.kind == "stall")
    # The worker was down: the stall is recorded three hours after it was due.
    change(app, state, FireDependencyDeadline, kind="stall", clock_started_at=watch.clock_started_at, due_at=due,
           command_id="late-stall")
    first_step = next(d for d in app.dependency_watch(state.id).deadlines if d.kind == "escalation")
    assert first_step.due_at == due + timedelta(hours=1)  # PATH's first step: PT1H after the stall
