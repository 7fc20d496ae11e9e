"""A project's calendar: its stages' deadlines count working time, recorded when the stage opens."""

from datetime import datetime
from zoneinfo import ZoneInfo

import holidays
import pytest

from domain import deliverable as deliverable_module
from domain.application import Signoff
from domain.calendar import Calendar
from domain.commands import Decide
from domain.deadlines import stage_deadlines
from domain.project import Project
from tests.builders import MEMBERS, make_policy, submission

BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = {"timezone": "Europe/Berlin", "country": "DE", "subdivision": "BE",
            "working_days": ["mon", "tue", "wed", "thu", "fri"], "working_hours": ["09:00", "17:00"]}
FRIDAY_4PM = datetime(2026, 11, 27, 16, 0, tzinfo=BERLIN)
MONDAY_10AM = datetime(2026, 11, 30, 10, 0, tzinfo=BERLIN)
SLA_STAGE = {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any", "sla": "PT2H"}


@pytest.fixture
def app():
    return Signoff(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def friday_4pm(monkeypatch):
    monkeypatch.setattr(deliverable_module, "utcnow", lambda: FRIDAY_4PM.astimezone(ZoneInfo("UTC")))


def due(deadlines, kind="sla"):
    return next(datetime.fromisoformat(d["due_at"]) for d in deadlines if d["kind"] == kind)


def test_sla_counts_working_hours_on_a_calendar():
    deadlines = stage_deadlines(SLA_STAGE, [], FRIDAY_4PM, Calendar.model_validate(CALENDAR))
    assert due(deadlines) == MONDAY_10AM  # one hour on Friday, one on Monday


def test_sla_is_wall_time_without_a_calendar():
    deadlines = stage_deadlines(SLA_STAGE, [], FRIDAY_4PM)
    assert due(deadlines) == datetime(2026, 11, 27, 18, 0, tzinfo=BERLIN)


def test_escalation_and_reminders_count_working_days():
    stage = {**SLA_STAGE, "reminders": ["PT1H"], "escalation": [{"after": "P1D", "notify": ["pm"]}]}
    deadlines = stage_deadlines(stage, [], FRIDAY_4PM, Calendar.model_validate(CALENDAR))
    assert due(deadlines, "reminder") == datetime(2026, 11, 27, 17, 0, tzinfo=BERLIN)
    assert due(deadlines, "escalation") == datetime(2026, 11, 30, 16, 0, tzinfo=BERLIN)
    assert [d["kind"] for d in deadlines] == ["reminder", "sla", "escalation"]  # earliest first


def project_with(app, calendar):
    return str(app.create_project("Northwind website relaunch", MEMBERS, [], [], "paula", calendar).id)


def submit(app, project_id):
    policy = make_policy(app, {"stages": [SLA_STAGE, {**SLA_STAGE, "name": "engineering",
                                                      "approvers": {"roles": ["eng"]}}],
                               "on_revision": "restart"})
    return app.get_deliverable(app.submit_deliverable(submission(project_id, policy, command_id="c0")).id)


def test_a_stage_opened_on_a_calendar_records_its_due_time_and_the_calendar(app, friday_4pm):
    state = submit(app, project_with(app, CALENDAR))
    assert state.stage.sla_due_at == MONDAY_10AM
    assert state.next_deadline.model_dump() == {"kind": "sla", "level": 0, "due_at": MONDAY_10AM}
    opened = next(e for e in app.deliverable_history(state.id) if e["type"] == "StageOpened")
    assert opened["calendar"] == CALENDAR
    assert opened["holidays_version"] == holidays.__version__
    assert datetime.fromisoformat(opened["deadlines"][0]["due_at"]) == MONDAY_10AM


def test_a_stage_opened_after_a_charter_change_uses_the_new_calendar(app, friday_4pm):
    project_id = project_with(app, None)
    state = submit(app, project_id)
    assert state.stage.sla_due_at == datetime(2026, 11, 27, 18, 0, tzinfo=BERLIN)  # wall time
    opened = next(e for e in app.deliverable_history(state.id) if e["type"] == "StageOpened")
    assert "calendar" not in opened or opened["calendar"] is None
    app.change_project(project_id, "paula", "the team works Berlin hours", calendar=CALENDAR)
    assert app.get_project(project_id).calendar == CALENDAR
    state = app.get_deliverable(app.change_deliverable(Decide(
        deliverable_id=state.id, actor="bob", verdict="approve", comment="fine", revision=1, command_id="d1")).id)
    assert state.stage.name == "engineering"
    assert state.stage.sla_due_at == MONDAY_10AM


def test_next_deadline_is_null_when_nothing_is_pending(app, friday_4pm):
    policy = make_policy(app, {"stages": [{k: v for k, v in SLA_STAGE.items() if k != "sla"}],
                               "on_revision": "restart"})
    state = app.get_deliverable(app.submit_deliverable(
        submission(project_with(app, CALENDAR), policy, command_id="c0")).id)
    assert state.stage.open and state.next_deadline is None


def test_an_unchanged_calendar_records_nothing(app):
    project_id = project_with(app, CALENDAR)
    version = app.get_project(project_id).version
    assert app.change_project(project_id, "paula", "again", calendar=dict(CALENDAR)).version == version


def test_a_project_stored_before_calendars_still_loads(app):
    """An old Created event has no `calendar`: it replays as a project on wall time."""
    project = Project.create(name="Old", members=MEMBERS, escalation_path=[], phases=[], created_by="paula")
    created = project.collect_events()[0]
    stored = app.mapper.to_stored_event(created)
    state = app.mapper.transcoder.decode(stored.state)
    assert "calendar" in state
    del state["calendar"]
    old = type(stored)(originator_id=stored.originator_id, originator_version=stored.originator_version,
                       topic=stored.topic, state=app.mapper.transcoder.encode(state))
    app.recorder.insert_events([old])
    loaded = app.get_project(project.id)
    assert loaded.name == "Old" and loaded.calendar is None
    changed = app.change_project(project.id, "paula", "now on Berlin hours", calendar=CALENDAR)
    assert app.get_project(changed.id).calendar == CALENDAR
