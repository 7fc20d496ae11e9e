"""Hostile or careless input is refused by the models themselves, naming the field (issue 5, items 7 and 8)."""

from datetime import timedelta

import pytest
from pydantic import ValidationError

from api.models import (
    DecisionIn,
    DeliverableCreate,
    ProjectCreate,
    ReassignIn,
    RevisionIn,
)
from domain.durations import parse_duration
from domain.errors import Invalid
from domain.policy_spec import EscalationStep, PolicySpec
from tests.builders import MEMBERS, STANDARD, revision

STAGE = {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"}
BIDI_AND_ZERO_WIDTH = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
                       "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff"]


def refused(model, data, *, json: str | None = None) -> list[tuple]:
    """The locations of the errors a refusal names (it must refuse)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(json) if json is not None else model.model_validate(data)
    return [tuple(e["loc"]) for e in caught.value.errors()]


# ---- item 7: durations ------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["P1825D", "PT43800H", "PT2628000M", "P260W5D"])
def test_five_years_is_the_longest_duration(text):
    assert parse_duration(text) <= timedelta(days=1825)


@pytest.mark.parametrize("text", ["P1826D", "PT43801H", "P999999999D", "P9999999999D", "PT99999999999999999999S",
                                  "P261W", "P" + "9" * 5000 + "D"])
def test_longer_durations_are_invalid_not_overflows(text):
    with pytest.raises(Invalid, match="5 years|at most 40 characters"):
        parse_duration(text)


@pytest.mark.parametrize("field,value", [("sla", "P999999999D"), ("sla", "P9999999999D"),
                                         ("reminders", ["PT1H", "P3000D"])])
def test_policy_durations_are_bounded(field, value):
    locs = refused(PolicySpec, {"stages": [{**STAGE, field: value}]})
    assert locs and locs[0][:3] == ("stages", 0, field)


def test_escalation_after_is_bounded_in_policies_and_projects():
    assert refused(EscalationStep, {"after": "P999999999D"})[0] == ("after",)
    locs = refused(ProjectCreate, {"name": "P", "members": MEMBERS,
                                   "escalation_path": [{"after": "P9999999999D", "notify": ["pm"]}]})
    assert locs[0] == ("escalation_path", 0, "after")


# ---- item 7: lists ------------------------------------------------------------------------------
@pytest.mark.parametrize("stage_extra,loc", [
    ({"reminders": ["PT1H"] * 30_000}, ("stages", 0, "reminders")),
    ({"approvers": {"users": [f"u{i}" for i in range(1000)]}}, ("stages", 0, "approvers", "users")),
    ({"approvers": {"roles": [f"r{i}" for i in range(1000)]}}, ("stages", 0, "approvers", "roles")),
    ({"escalation": [{"after": "PT1H"}] * 1000}, ("stages", 0, "escalation")),
    ({"escalation": [{"after": "PT1H", "notify": [f"u{i}" for i in range(1000)]}]},
     ("stages", 0, "escalation", 0, "notify")),
    ({"escalation": [{"after": "PT1H", "grant": [f"r{i}" for i in range(1000)]}]},
     ("stages", 0, "escalation", 0, "grant")),
])
def test_policy_lists_are_bounded(stage_extra, loc):
    assert refused(PolicySpec, {"stages": [{**STAGE, **stage_extra}]})[0] == loc


def test_stage_count_is_bounded():
    stages = [{**STAGE, "name": f"s{i}"} for i in range(1000)]
    assert refused(PolicySpec, {"stages": stages})[0] == ("stages",)


@pytest.mark.parametrize("extra,loc", [
    ({"members": [{"user": f"u{i}", "roles": ["eng"]} for i in range(5000)]}, ("members",)),
    ({"members": [{"user": "alice", "roles": [f"r{i}" for i in range(100)]}]}, ("members", 0, "roles")),
    ({"phases": [{"name": f"phase {i}"} for i in range(1000)]}, ("phases",)),
    ({"escalation_path": [{"after": "PT1H"}] * 1000}, ("escalation_path",)),
    ({"escalation_path": [{"after": "PT1H", "notify": ["pm"] * 1000}]}, ("escalation_path", 0, "notify")),
])
def test_project_lists_are_bounded(extra, loc):
    assert refused(ProjectCreate, {"name": "P", "members": MEMBERS, **extra})[0] == loc


# ---- item 8: strict numbers ----------------------------------------------------------------------
@pytest.mark.parametrize("raw", ['"1"', "1.0", "true"])
def test_revision_is_a_json_integer(raw):
    assert refused(DecisionIn, None, json=f'{{"verdict": "approve", "revision": {raw}}}')[0] == ("revision",)
    assert DecisionIn.model_validate_json('{"verdict": "approve", "revision": 1}').revision == 1


@pytest.mark.parametrize("raw", ['"2"', "2.0", "true"])
def test_n_is_a_json_integer(raw):
    body = ('{"stages": [{"name": "eng", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": %s}]}' % raw)
    assert refused(PolicySpec, None, json=body)[0] == ("stages", 0, "n")


# ---- item 8: names, titles and text ---------------------------------------------------------------
@pytest.mark.parametrize("bad", ["\u202eevil.pdf", "Home\u200bpage", "   ", "\t", "\u3000\u00a0", "two\nlines",
                                 "tab\there", "bell\x07", "esc\x1b[31m", "c1\x85", "line\u2028sep", ""] +
                         [f"x{c}y" for c in BIDI_AND_ZERO_WIDTH])
def test_names_and_titles_refuse_invisible_and_control_characters(bad):
    submission = {"project_id": "p", "title": bad, "policy": "standard", "revision": revision()}
    assert refused(DeliverableCreate, submission)[0] == ("title",)
    assert refused(ProjectCreate, {"name": bad, "members": MEMBERS})[0] == ("name",)
    assert refused(ProjectCreate, {"name": "P", "members": MEMBERS, "phases": [{"name": bad}]})[0] == ("phases", 0, "name")
    assert refused(PolicySpec, {"stages": [{**STAGE, "name": bad}]})[0] == ("stages", 0, "name")


def test_names_and_titles_are_trimmed():
    submission = DeliverableCreate.model_validate({"project_id": "p", "title": "  Homepage mockups\u3000",
                                                   "policy": "standard", "revision": revision()})
    assert submission.title == "Homepage mockups"
    assert ProjectCreate.model_validate({"name": " Relaunch ", "members": MEMBERS}).name == "Relaunch"
    assert PolicySpec.model_validate({"stages": [{**STAGE, "name": " design "}]}).stages[0].name == "design"
    # trimming first, so " design" and "design" are the same stage name twice
    assert refused(PolicySpec, {"stages": [STAGE, {**STAGE, "name": " design"}]})


@pytest.mark.parametrize("bad", ["esc\x1b[2J", "bell\x07", "nul\x00", "lone cr\r", "\u202eevil", "zero\u200bwidth",
                                 "bom\ufeff", "del\x7f"])
def test_text_refuses_control_and_invisible_characters(bad):
    assert refused(DecisionIn, {"verdict": "reject", "revision": 1, "comment": bad})[0] == ("comment",)
    assert refused(RevisionIn, {**revision(), "note": bad})[0] == ("note",)
    assert refused(ReassignIn, {"approvers": ["bob"], "reason": bad})[0] == ("reason",)


def test_text_keeps_newlines_and_tabs_and_a_reason_needs_visible_text():
    comment = "Two points:\n\t1. contrast\n\t2. logo size"
    assert DecisionIn.model_validate({"verdict": "reject", "revision": 1, "comment": comment}).comment == comment
    assert refused(ReassignIn, {"approvers": ["bob"], "reason": " \n\t "})[0] == ("reason",)
    # A textarea's \r\n line ends are line ends, kept as \n.
    windows = DecisionIn.model_validate({"verdict": "reject", "revision": 1, "comment": "a\r\nb"})
    assert windows.comment == "a\nb"


@pytest.mark.parametrize("uri", ["javascript:alert(1)", "JavaScript://%0aalert(1)", "data:text/html,<b>x</b>",
                                 "file:///etc/passwd", "ftp://files.example/a.pdf", "https://", "https:///path",
                                 "http://:80/a", "https:files.example/a.pdf", "//files.example/a.pdf",
                                 "https://user:pw@files.example/a.pdf", "https://files.example:99999/a",
                                 "https://files.example/\u202eevil", "https://files.\u200bexample/a"])
def test_uris_are_http_or_https_with_a_host(uri):
    assert refused(RevisionIn, {**revision(), "uri": uri})[0] == ("uri",)


@pytest.mark.parametrize("uri", ["https://files.example/mockups-v1.pdf", "HTTP://files.example:8080/a?b=c#d",
                                 "https://例え.jp/ファイル.pdf", "http://[::1]:8000/x"])
def test_good_uris_are_kept_as_sent(uri):
    assert RevisionIn.model_validate({**revision(), "uri": uri}).uri == uri


def test_people_and_roles_in_policies_are_ids():
    for approvers in ({"users": ["bob\u202e"]}, {"users": ["bob smith"]}, {"roles": ["Design Lead"]}):
        locs = refused(PolicySpec, {"stages": [{**STAGE, "approvers": approvers}]})
        assert locs[0][:4] == ("stages", 0, "approvers", next(iter(approvers)))
    assert refused(EscalationStep, {"after": "PT1H", "notify": ["pm\x1b"]})[0] == ("notify", 0)
    assert refused(EscalationStep, {"after": "PT1H", "grant": ["PMO!"]})[0] == ("grant", 0)


def test_planned_dates_are_dates():
    ok = ProjectCreate.model_validate({"name": "P", "members": MEMBERS, "phases": [
        {"name": "Discovery", "planned_start": "2026-01-05", "planned_end": "2026-02-27"}]})
    assert ok.phases[0].planned_end == "2026-02-27"
    for bad in ("next week", "2026-02-30", "2026-01-05\x1b"):
        locs = refused(ProjectCreate, {"name": "P", "members": MEMBERS, "phases": [{"name": "D", "planned_start": bad}]})
        assert locs[0] == ("phases", 0, "planned_start")


def test_the_standard_policy_still_passes():
    assert PolicySpec.model_validate(STANDARD).stages[1].n == 2
