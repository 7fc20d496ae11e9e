"""The retrospective's figures and the what-if's re-run, on audit rows written by hand: every definition
of the README's "Retrospectives" checked on a case whose answer is known."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.errors import Invalid
from domain.retrospective import cases_of, nearest_rank, retrospective
from domain.what_if import Changes, what_if

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
POLICY = {"name": "standard-review", "version": 1, "on_revision": "restart", "stages": [
    {"name": "design", "approvers": {"roles": ["design-lead"], "users": []}, "rule": "any", "n": None,
     "sla": "PT1H", "reminders": [], "escalation": [{"after": "PT30M", "notify": ["pm"], "grant": []}]},
    {"name": "engineering", "approvers": {"roles": ["eng"], "users": []}, "rule": "n_of_m", "n": 2,
     "sla": None, "reminders": [], "escalation": None},
]}
MEMBERS = [{"user": "alice", "roles": ["author"]}, {"user": "bob", "roles": ["design-lead"]},
           {"user": "carol", "roles": ["eng"]}, {"user": "dan", "roles": ["eng"]}, {"user": "pete", "roles": ["pm"]},
           {"user": "paula", "roles": ["pmo"]}]


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


class Log:
    """Audit rows of one project, as the projector writes them (the fields the figures read)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, subject: str, kind: str, minutes: float, action: str, actor: str = "signoff",
            details: dict[str, Any] | None = None, revision: int | None = 1, cause: str | None = None) -> None:
        self.rows.append({"position": len(self.rows) + 1, "at": at(minutes), "actor": actor, "action": action,
                          "subject": {"kind": kind, "id": subject, "title": subject}, "project_id": "p",
                          "revision": revision, "details": details or {},
                          "correlation": {"command_id": cause, "workflow_id": None, "update_id": None}})

    def submit(self, d: str, minutes: float, policy: dict[str, Any] = POLICY) -> None:
        self.add(d, "deliverable", minutes, "deliverable.submitted", "alice",
                 {"policy": policy, "escalation_path": []}, cause=f"{d}-submit")
        self.open(d, minutes, 0, f"{d}-submit", "alice")

    def open(self, d: str, minutes: float, index: int, cause: str, actor: str, revision: int = 1,
             approvers: list[str] | None = None) -> None:
        spec = POLICY["stages"][index]
        deadlines = []
        if spec["escalation"]:
            deadlines.append({"kind": "escalation", "level": 1, "due_at": at(minutes + 30), "done": False})
        if spec["sla"]:
            deadlines.append({"kind": "sla", "level": 0, "due_at": at(minutes + 60), "done": False})
        self.add(d, "deliverable", minutes, "deliverable.stage.opened", actor,
                 {"index": index, "approvers": approvers or (["bob"] if index == 0 else ["carol", "dan"]),
                  "deadlines": deadlines, "calendar": None}, revision, cause)

    def decide(self, d: str, minutes: float, actor: str, verdict: str, index: int, revision: int = 1,
               then: tuple[str, ...] = ()) -> None:
        cause = f"{d}-{actor}-{minutes}"
        action = {"approve": "approved", "reject": "rejected", "request_changes": "changes_requested"}[verdict]
        self.add(d, "deliverable", minutes, f"deliverable.decision.{action}", actor,
                 {"verdict": verdict, "stage_index": index, "revision": revision}, revision, cause)
        for what in then:
            if what == "open":
                self.open(d, minutes, index + 1, cause, actor, revision)
            elif what == "deliverable.stage.passed" or what == "deliverable.changes_requested":
                self.add(d, "deliverable", minutes, what, actor, {"stage_index": index}, revision, cause)
            else:
                self.add(d, "deliverable", minutes, what, actor, {}, revision, cause)

    def deadline(self, d: str, minutes: float, action: str, index: int, level: int = 0,
                 notified: list[str] | None = None, granted: list[str] | None = None) -> None:
        details: dict[str, Any] = {"stage_index": index, "level": level}
        if action == "escalation.raised":
            details.update(notified=notified or ["pete"], granted=granted or [])
        self.add(d, "deliverable", minutes, action, details=details, cause=f"{d}-timer-{minutes}")

    def run(self, since: float | None = None, until: float = 24 * 60) -> tuple[list[Any], float | None, float]:
        begin = None if since is None else (T0 + timedelta(minutes=since)).timestamp()
        end = (T0 + timedelta(minutes=until)).timestamp()
        return cases_of(self.rows, begin, end), begin, end


def scripted() -> Log:
    """d1: design 90 min (escalated at 30, SLA breached at 60), engineering 30 min (carol, dan): approved.
    d2: changes asked at 10 min, revision 2 at 20, design again, rejected by carol at 50.
    d3: withdrawn at 5 min. d4: open in design from 100 min (escalated at 130)."""
    log = Log()
    log.submit("d1", 0)
    log.deadline("d1", 30, "escalation.raised", 0, 1)
    log.deadline("d1", 60, "sla.breached", 0)
    log.decide("d1", 90, "bob", "approve", 0, then=("deliverable.stage.passed", "open"))
    log.decide("d1", 100, "carol", "approve", 1)
    log.decide("d1", 120, "dan", "approve", 1, then=("deliverable.stage.passed", "deliverable.approved"))
    log.submit("d2", 0)
    log.decide("d2", 10, "bob", "request_changes", 0, then=("deliverable.changes_requested",))
    log.add("d2", "deliverable", 20, "deliverable.revision.submitted", "alice", {"number": 2}, 2, "d2-rev2")
    log.open("d2", 20, 0, "d2-rev2", "alice", revision=2)
    log.decide("d2", 25, "bob", "approve", 0, 2, then=("deliverable.stage.passed", "open"))
    log.decide("d2", 50, "carol", "reject", 1, 2, then=("deliverable.rejected",))
    log.submit("d3", 0)
    log.add("d3", "deliverable", 5, "deliverable.withdrawn", "alice", {}, 1, "d3-w")
    log.submit("d4", 100)
    log.deadline("d4", 130, "escalation.raised", 0, 1)
    return log


def test_nearest_rank_is_the_smallest_value_with_p_percent_at_or_below_it():
    assert nearest_rank([], 50) is None
    assert nearest_rank([5.0], 90) == 5.0
    assert nearest_rank([4.0, 1.0, 3.0, 2.0], 50) == 2.0  # ceil(0.5 * 4) = 2nd
    assert nearest_rank([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == 9.0
    assert nearest_rank([1.0, 2.0, 3.0], 90) == 3.0


def test_the_figures_of_a_scripted_project():
    cases, since, until = scripted().run(until=150)
    retro = retrospective(cases, since, until)
    assert {k: retro["deliverables"][k] for k in ("submitted", "approved", "rejected", "withdrawn", "open")} == {
        "submitted": 4, "approved": 1, "rejected": 1, "withdrawn": 1, "open": 1}
    cycle = retro["cycle_time_s"]
    assert (cycle["p50"], cycle["p90"], cycle["mean"], cycle["count"]) == (3000.0, 7200.0, 3500.0, 3)
    assert cycle["open"] == {"count": 1, "age_p50_s": 3000.0, "age_max_s": 3000.0, "ids": ["d4"]}
    design = retro["per_stage"]["design"]
    # Openings: d1 (90 min), d2 r1 (10), d2 r2 (5), d3 (5, withdrawn), d4 (open 50 at `until`).
    assert (design["openings"], design["closed"], design["still_open"]) == (5, 4, 1)
    assert (design["p50_open_s"], design["p90_open_s"]) == (300.0, 5400.0)
    assert design["sla_breach_rate"] == 0.2 and design["sla_breach_ids"] == ["d1"]
    bob = design["per_approver"]["bob"]
    assert (bob["decisions"], bob["last_waited_on"], bob["p50_response_s"]) == (3, 3, 600.0)
    # Open time with bob an approver: 90 + 10 + 5 + 5 + 50 = 160 min; before his decision: 90 + 10 + 5 + 5 + 50.
    assert bob["waiting_share"] == 1.0
    engineering = retro["per_stage"]["engineering"]
    assert (engineering["openings"], engineering["p50_open_s"], engineering["sla_breach_rate"]) == (2, 1500.0, None)
    people = engineering["per_approver"]
    assert {p: (f["decisions"], f["last_waited_on"], f["p50_response_s"]) for p, f in people.items()} == {
        "carol": (2, 1, 600.0), "dan": (1, 1, 1800.0)}
    # dan waited on in d1 for all 30 min, in d2 for all 25 (never decided): 55 of 55.
    assert people["dan"]["waiting_share"] == 1.0 and people["carol"]["waiting_share"] == round(35 / 55, 4)
    rework = retro["rework"]
    assert (rework["revisions_mean"], rework["revisions_max"], rework["first_pass_yield"]) == (1.25, 2, 0.3333)
    assert rework["changes_requested_by_stage"] == {"design": 1} and rework["reworked_ids"] == ["d2"]
    assert retro["escalations"] == {"total": 2, "by_level": {"1": 2}, "by_stage": {"design": 2},
                                    "ids": ["d1", "d4"]}
    assert retro["gates"]["phases"] == []


def test_the_window_counts_deliverables_submitted_in_it_as_of_its_end():
    log = scripted()
    cases, since, until = log.run(since=50, until=150)
    assert [c.id for c in cases] == ["d4"]
    cases, since, until = log.run(until=95)  # d1 had passed design but not engineering; d4 not submitted
    retro = retrospective(cases, since, until)
    assert retro["deliverables"]["submitted"] == 3 and retro["deliverables"]["open"] == 1
    assert retro["per_stage"]["engineering"]["still_open"] == 1


def test_dependency_stalls_are_timed_until_the_owner_moves():
    log = Log()
    log.add("x", "dependency", 0, "dependency.opened", "alice", {})
    log.add("x", "dependency", 61, "dependency.stalled", details={"due_at": at(60)})
    log.add("x", "dependency", 90, "dependency.progress.reported", "omar")
    log.add("x", "dependency", 200, "dependency.stalled", details={"due_at": at(150)})
    log.add("x", "dependency", 210, "dependency.overdue")
    log.add("x", "dependency", 240, "dependency.resolved", "omar")
    log.add("y", "dependency", 10, "dependency.opened", "alice", {})
    log.add("y", "dependency", 20, "dependency.stalled", details={"due_at": at(20)})
    cases, since, until = log.run(until=300)
    dep = retrospective(cases, since, until)["dependencies"]
    assert (dep["opened"], dep["resolved"], dep["open"], dep["stalled"], dep["overdue"]) == (2, 1, 1, 2, 1)
    assert dep["stalled_s"] == (30 + 90 + 280) * 60.0  # x: 60-90, 150-240; y: 20-300 (`until`)
    assert dep["p50_resolve_s"] == 240 * 60.0 and dep["overdue_ids"] == ["x"]


def members_at(_: float) -> list[dict[str, Any]]:
    return MEMBERS


def test_a_what_if_with_no_changes_is_the_record_exactly():
    cases, since, until = scripted().run(until=150)
    answer = what_if(cases, since, until, "standard-review", Changes(), members_at)
    assert answer["what_if"] == answer["actual"] == retrospective(cases, since, until)
    assert answer["deliverables"] == []
    # Changes that restate the policy are no changes either.
    restated = Changes(stages={"design": {"sla": "PT1H"}, "engineering": {"rule": "n_of_m", "n": 2}})
    assert what_if(cases, since, until, "standard-review", restated, members_at) == answer


def test_a_shorter_sla_and_an_earlier_escalation_fire_before_the_stage_closes():
    cases, since, until = scripted().run(until=150)
    changes = Changes(stages={"design": {"sla": "PT20M", "escalation": [{"after": "PT15M", "notify": ["pmo"]}]}})
    answer = what_if(cases, since, until, "standard-review", changes, members_at)
    imagined = answer["what_if"]
    # d1 (90 min), d4 (50 min so far) and d2's first opening (10 min: no) and second (5: no), d3 (5: no).
    assert imagined["per_stage"]["design"]["sla_breach_rate"] == 0.4
    assert imagined["per_stage"]["design"]["sla_breach_ids"] == ["d1", "d4"]
    assert imagined["escalations"]["by_level"] == {"1": 2}  # the recorded two, 15 min after opening instead of 30
    stories = {d["id"]: d["changes"] for d in answer["deliverables"]}
    assert stories["d1"] == [("the escalation to level 1 in design would have fired at 2026-03-02 09:15:00 UTC "
                             "instead of 2026-03-02 09:30:00 UTC")]
    assert "the SLA of design would have been breached" in stories["d4"]
    assert answer["difference"]["per_stage"]["design"]["sla_breach_rate"] == 0.2
    assert what_if(cases, since, until, "standard-review", changes, members_at) == answer


def test_any_closes_a_stage_at_the_first_approval_and_later_decisions_there_do_not_happen():
    cases, since, until = scripted().run(until=150)
    answer = what_if(cases, since, until, "standard-review",
                     Changes(stages={"engineering": {"rule": "any"}}), members_at)
    d1 = next(d for d in answer["deliverables"] if d["id"] == "d1")["changes"]
    assert d1 == [
        ("engineering would have closed at 2026-03-02 10:40:00 UTC on carol's approval instead of "
        "2026-03-02 11:00:00 UTC"),
        ("dan's approval on engineering at 2026-03-02 11:00:00 UTC would not have happened: the chain had already "
        "ended (approved)"),
        "it would have been approved at 2026-03-02 10:40:00 UTC instead of approved at 2026-03-02 11:00:00 UTC"]
    assert answer["what_if"]["cycle_time_s"]["p90"] == 6000.0
    assert answer["what_if"]["per_stage"]["engineering"]["per_approver"]["dan"]["decisions"] == 0


def test_a_stricter_rule_holds_the_chain_where_the_record_moved_on():
    cases, since, until = scripted().run(until=150)
    answer = what_if(cases, since, until, "standard-review",
                     Changes(stages={"design": {"rule": "all"}}), members_at)  # bob is the only approver: same
    assert answer["deliverables"] == []
    answer = what_if(cases, since, until, "standard-review",
                     Changes(stages={"engineering": {"rule": "n_of_m", "n": 3}}), members_at)
    d1 = next(d for d in answer["deliverables"] if d["id"] == "d1")["changes"]
    assert d1[0] == ("engineering would still have been open at 2026-03-02 11:30:00 UTC, waiting on nobody who had "
                     "not decided instead of closing at 2026-03-02 11:00:00 UTC")
    assert answer["what_if"]["deliverables"]["approved"] == 0


def test_a_calendar_moves_the_deadlines_to_working_time():
    log = Log()
    log.submit("late", 7 * 60 + 30)  # 16:30 on a Monday
    log.deadline("late", 8 * 60, "escalation.raised", 0, 1)  # on wall time: 17:00 and 17:30
    log.deadline("late", 8 * 60 + 30, "sla.breached", 0)
    log.decide("late", 24 * 60, "bob", "approve", 0, then=("deliverable.stage.passed", "open"))  # 09:00 Tuesday
    cases, since, until = log.run(until=25 * 60)
    calendar = {"timezone": "UTC", "working_days": ["mon", "tue", "wed", "thu", "fri"],
                "working_hours": ["09:00", "17:00"]}
    answer = what_if(cases, since, until, "standard-review", Changes(calendar=calendar, calendar_given=True),
                     members_at)
    # Working time: 30 min on Monday; the escalation (PT30M) falls due at 17:00, the SLA (PT1H) at 09:30 Tuesday.
    assert answer["actual"]["per_stage"]["design"]["sla_breach_rate"] == 1.0
    imagined = answer["what_if"]
    assert imagined["per_stage"]["design"]["sla_breach_rate"] == 0.0
    assert imagined["escalations"]["total"] == 1
    [story] = answer["deliverables"]
    assert "the SLA of design would not have been breached" in story["changes"]


def test_changes_are_checked_as_a_published_policy_is():
    cases, since, until = scripted().run(until=150)
    for changes in (Changes(stages={"nope": {"sla": "PT1H"}}), Changes(stages={"design": {"rule": "n_of_m"}}),
                    Changes(stages={"design": {"sla": "soon"}}),
                    Changes(calendar={"timezone": "Mars/Olympus"}, calendar_given=True)):
        with pytest.raises(Invalid):
            what_if(cases, since, until, "standard-review", changes, members_at)


def test_a_grantee_decides_only_once_an_escalation_has_granted_it():
    log = Log()
    log.submit("g", 0)
    log.deadline("g", 30, "escalation.raised", 0, 1, notified=["paula"], granted=["paula"])
    log.decide("g", 40, "paula", "approve", 0, then=("deliverable.stage.passed", "open"))
    cases, since, until = log.run(until=50)
    grant = [{"after": "PT30M", "notify": ["pmo"], "grant": ["pmo"]}]
    same = what_if(cases, since, until, "standard-review", Changes(stages={"design": {"escalation": grant}}),
                   members_at)
    assert same["deliverables"] == [] and same["what_if"] == same["actual"]  # the same escalation, made again
    later = [{"after": "PT45M", "notify": ["pmo"], "grant": ["pmo"]}]
    answer = what_if(cases, since, until, "standard-review", Changes(stages={"design": {"escalation": later}}),
                     members_at)
    [story] = answer["deliverables"]
    assert story["changes"] == [
        ("design would still have been open at 2026-03-02 09:50:00 UTC, waiting on bob instead of closing "
        "at 2026-03-02 09:40:00 UTC"),
        ("the escalation to level 1 in design would have fired at 2026-03-02 09:45:00 UTC instead of "
        "2026-03-02 09:30:00 UTC"),
        "engineering would not have opened",
        ("paula's approval on design at 2026-03-02 09:40:00 UTC would not have happened: paula could not yet "
        "decide there (no escalation had granted it)")]
