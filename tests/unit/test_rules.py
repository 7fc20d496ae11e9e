from datetime import datetime, timedelta, timezone

import pytest

from domain.deadlines import stage_deadlines
from domain.durations import parse_duration
from domain.errors import Invalid
from domain.policy_spec import PolicySpec
from domain.rules import required_approvals, satisfiable, stage_passes


@pytest.mark.parametrize("text,expected", [("PT4H", timedelta(hours=4)), ("P2D", timedelta(days=2)),
                                           ("PT1.5S", timedelta(seconds=1.5)), ("P1DT30M", timedelta(days=1, minutes=30))])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["2 days", "P1M", "P1Y", "PT0S", "", "P"])
def test_durations_refused(text):
    with pytest.raises(Invalid):
        parse_duration(text)


def test_rules():
    assert stage_passes("any", None, ["a", "b"], ["b"])
    assert not stage_passes("all", None, ["a", "b"], ["b"])
    assert stage_passes("all", None, ["a", "b"], ["b", "a"])
    assert not stage_passes("n_of_m", 2, ["a", "b", "c"], ["a"])
    assert stage_passes("n_of_m", 2, ["a", "b", "c"], ["a", "c"])
    # an approval from someone reassigned away no longer counts
    assert not stage_passes("any", None, ["a"], ["z"])
    assert required_approvals("all", None, 3) == 3
    assert not satisfiable("n_of_m", 3, ["a", "b"])
    assert not satisfiable("all", None, [])


def test_deadlines_stage_escalation_wins_over_project_path():
    opened = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    stage = {"sla": "P2D", "reminders": ["PT4H"], "escalation": [{"after": "P1D", "notify": ["pm"]}]}
    got = [(d["kind"], d["level"], d["due_at"]) for d in stage_deadlines(stage, [{"after": "PT1H"}], opened)]
    assert got == [("reminder", 1, "2026-11-27T13:00:00+00:00"), ("escalation", 1, "2026-11-28T09:00:00+00:00"),
                   ("sla", 0, "2026-11-29T09:00:00+00:00")]
    inherited = stage_deadlines({"escalation": None}, [{"after": "PT1H"}], opened)
    assert [(d["kind"], d["due_at"]) for d in inherited] == [("escalation", "2026-11-27T10:00:00+00:00")]
    assert stage_deadlines({"escalation": []}, [{"after": "PT1H"}], opened) == []


@pytest.mark.parametrize("spec,message", [
    ({"stages": []}, "at least 1"),
    ({"stages": [{"name": "a", "approvers": {}, "rule": "any"}]}, "names no approvers"),
    ({"stages": [{"name": "a", "approvers": {"users": ["x"]}, "rule": "n_of_m"}]}, "needs n"),
    ({"stages": [{"name": "a", "approvers": {"users": ["x"]}, "rule": "any", "sla": "soon"}]}, "ISO 8601"),
    ({"stages": [{"name": "a", "approvers": {"users": ["x"]}, "rule": "any"}] * 2}, "unique"),
])
def test_policy_validation(spec, message):
    with pytest.raises(ValueError, match=message):
        PolicySpec.model_validate(spec)
