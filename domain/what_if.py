"""What-if: the recorded facts of approval chains re-run under a changed policy. Pure.

People's acts keep the times they happened at: decisions, revisions, withdrawals, reassignments.
What the policy decides is re-decided with the live chain's own rules: when a stage closes
(`quorum.stage_passes`, a grantee's verdict settles it, as in `Deliverable.decide`), which deadlines it
has (`deadlines.stage_deadlines`, counted by `business_time` on the calendar) and which of them fall
due before it closes, and whom an escalation notifies and grants (`project.resolve_people`).

How an act is matched to the re-run chain, and what happens when it no longer fits:
- A decision applies to the open stage of its recorded stage index and revision, if its actor may
  decide there (an approver, or granted by an escalation that has fired by then) and has not yet.
  Otherwise it does not happen (the stage closed earlier, had not opened, or the actor was not yet
  granted), and the deliverable's story says so. A later stage that opens earlier keeps its
  decisions at their recorded times; a stage that would close later, or never, holds the chain
  there: decisions recorded on later stages do not happen.
- A revision happens at its recorded time if the chain is still running then (the rules allow a
  revision while in review), even where the request for changes it answered did not happen.
- A withdrawal happens if the chain is still running; a reassignment if its stage is open.
- A stage opening that is the recorded one (same stage, revision and cause) keeps its recorded
  time, approvers and, when its rules and calendar are unchanged, its recorded deadlines and the
  reminders, breaches and escalations recorded for them. Any other opening gets the approvers of the
  recorded opening of that stage (the same revision's first, else the latest before it, else the
  policy's approvers among the members of then) and deadlines computed from its own time.
- Where the re-run does what the record did, it emits the recorded rows themselves, so a what-if
  with no changes is the record, exactly.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from domain.calendar import Calendar
from domain.commands import SYSTEM_ACTOR
from domain.deadlines import escalation_steps, stage_deadlines
from domain.deliverable import role_holders, stage_approvers
from domain.errors import Invalid
from domain.policy_spec import PolicySpec
from domain.project import resolve_people
from domain.quorum import stage_passes
from domain.retrospective import DECISION_PREFIX, Case, Chain, Fact, figures, fold

Members = list[dict[str, Any]]
MembersAt = Callable[[float], Members]  # the project's members at a moment (epoch seconds)
STAGE_FIELDS = ("sla", "rule", "n", "escalation", "reminders")
TRIGGERS = ("deliverable.revision.submitted", "deliverable.withdrawn", "deliverable.stage.reassigned")
CONSEQUENCES = ("deliverable.stage.passed", "deliverable.stage.opened", "deliverable.approved",
                "deliverable.rejected", "deliverable.changes_requested")
DEADLINE_FACTS = ("reminder.sent", "sla.breached", "escalation.raised")
VERDICT_WORDS = {"approve": "approval", "reject": "rejection", "request_changes": "request for changes"}


@dataclass(frozen=True)
class Changes:
    """What changes: per stage name, the fields given (`sla`, `rule`, `n`, `escalation`, `reminders`:
    a field not given keeps its value, null clears it); `calendar` when given (None: wall time)."""
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    calendar: dict[str, Any] | None = None
    calendar_given: bool = False


def changed_policy(policy: dict[str, Any], changes: Changes) -> dict[str, Any]:
    """The recorded policy with the changes applied, checked as a policy is when published."""
    stages = []
    for stage in policy.get("stages", []):
        change = changes.stages.get(stage["name"])
        merged = dict(stage)
        if change:
            merged.update({k: v for k, v in change.items() if k in STAGE_FIELDS})
            if "rule" in change and change["rule"] != "n_of_m" and "n" not in change:
                merged["n"] = None  # n goes with n_of_m only
            if merged.get("escalation") is not None:
                merged["escalation"] = [dict(step) for step in merged["escalation"]]
        stages.append(merged)
    try:
        PolicySpec.model_validate({"stages": stages, "on_revision": policy.get("on_revision", "restart")})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(f"the changed policy {policy.get('name')!r} version {policy.get('version')} is not a valid "
                      f"policy: {where}: {first.get('msg')}", ("changes",)) from None
    return {**policy, "stages": stages}


def check_changes(policies: list[dict[str, Any]], changes: Changes) -> None:
    """Refuse changes naming a stage that none of the policies has, or making one invalid."""
    names = {stage["name"] for policy in policies for stage in policy.get("stages", [])}
    unknown = sorted(set(changes.stages) - names)
    if unknown:
        raise Invalid(f"no stage named {', '.join(map(repr, unknown))} in this policy", ("changes", "stages"))
    if changes.calendar_given and changes.calendar is not None:
        try:
            Calendar.model_validate(changes.calendar)
        except ValidationError as exc:
            raise Invalid(f"calendar: {exc.errors()[0].get('msg')}", ("changes", "calendar")) from None
    for policy in policies:
        changed_policy(policy, changes)


# ---- the re-run of one chain ------------------------------------------------------------------
@dataclass
class Opening:
    fact: Fact
    deadline_facts: list[Fact] = field(default_factory=list)


@dataclass
class Trigger:
    fact: Fact
    consequences: list[Fact] = field(default_factory=list)


@dataclass
class Stage:
    index: int
    opened: float
    approvers: list[str]
    spec: dict[str, Any]
    timers: list[tuple[float, int, Any]]  # (due, position, recorded Fact or (kind, level))
    granted: list[str] = field(default_factory=list)
    decided: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    open: bool = True


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _timer_order(timer: tuple[float, int, Any]) -> tuple[float, int]:
    return timer[0], timer[1]


def clock(seconds: float) -> str:
    return _moment(seconds).isoformat(sep=" ", timespec="seconds")[:19] + " UTC"


class Rerun:
    """One deliverable's chain re-run under `changed` (its recorded policy with the changes)."""

    def __init__(self, case: Case, changed: dict[str, Any], changes: Changes, members_at: MembersAt, until: float):
        self.case, self.changed, self.changes, self.members_at, self.until = case, changed, changes, members_at, until
        self.submitted = case.facts[0]
        self.policy = self.submitted.details.get("policy") or {}
        self.path = self.submitted.details.get("escalation_path") or []
        self.submitter = self.submitted.actor
        self.out: list[Fact] = []
        self.notes: list[str] = []
        self.status = "in_review"
        self.revision = 1
        self.stage: Stage | None = None
        self.openings: dict[tuple[int, int, str | None], Opening] = {}
        self.opened_facts: list[Fact] = []
        self.triggers: list[Trigger] = []
        self._read_record()

    def _read_record(self) -> None:
        submit = Trigger(self.submitted)
        latest: Trigger = submit
        current: Opening | None = None
        for fact in self.case.facts[1:]:
            action = fact.action
            if action.startswith(DECISION_PREFIX) or action in TRIGGERS:
                latest = Trigger(fact)
                self.triggers.append(latest)
            elif action in CONSEQUENCES:
                if action == "deliverable.stage.opened":
                    current = Opening(fact)
                    self.openings.setdefault((fact.details.get("index", 0), fact.revision or 1, fact.cause), current)
                    self.opened_facts.append(fact)
                if fact.cause == latest.fact.cause:
                    latest.consequences.append(fact)
            elif action in DEADLINE_FACTS and current is not None:
                current.deadline_facts.append(fact)
        self.submit = submit

    # ---- running ------------------------------------------------------------------------------
    def run(self) -> Case:
        self.out.append(self.submitted)
        self._open(0, self.submitted, self.submit.consequences)
        for trigger in self.triggers:
            self._fire_timers(trigger.fact.at, trigger.fact.position)
            self._apply(trigger)
        self._fire_timers(self.until, 1 << 62)
        return replace(self.case, facts=self.out)

    def _running(self) -> bool:
        return self.status in ("in_review", "changes_requested")

    def _apply(self, trigger: Trigger) -> None:
        fact = trigger.fact
        action = fact.action
        if not self._running():
            self._drop(fact, f"the chain had already ended ({self.status})")
        elif action.startswith(DECISION_PREFIX):
            self._decide(trigger)
        elif action == "deliverable.revision.submitted":
            self.out.append(fact)
            self.revision = fact.details.get("number") or self.revision + 1
            resume = (self.policy.get("on_revision") == "resume" and self.status == "changes_requested"
                      and self.stage is not None)
            index = self.stage.index if resume and self.stage is not None else 0
            if self.stage is not None:
                self.stage.open = False
            self._open(index, fact, trigger.consequences)
        elif action == "deliverable.withdrawn":
            self.out.append(fact)
            self.status = "withdrawn"
            self._close()
        elif action == "deliverable.stage.reassigned":
            stage = self.stage
            if stage is None or not stage.open or stage.index != fact.stage_index:
                self._drop(fact, f"{self._name(fact.stage_index)} was not open then")
                return
            self.out.append(fact)
            stage.approvers = list(fact.details.get("approvers") or stage.approvers)
            if stage_passes(self.changed["stages"][stage.index]["rule"], self.changed["stages"][stage.index].get("n"),
                            stage.approvers, stage.approvals):
                self._advance(trigger)

    def _decide(self, trigger: Trigger) -> None:
        fact = trigger.fact
        stage, actor = self.stage, fact.actor
        revision = fact.details.get("revision", fact.revision)
        name = self._name(fact.stage_index)
        if revision != self.revision:
            why = f"revision {revision} was not the current one (revision {self.revision} was)"
        elif stage is None or not stage.open:
            why = "no stage was open for decisions"
        elif stage.index != fact.stage_index:
            why = f"{name} was not open ({self._name(stage.index)} was)"
        elif actor not in stage.approvers and actor not in stage.granted:
            why = f"{actor} could not yet decide there (no escalation had granted it)"
        elif actor in stage.decided:
            why = f"{actor} had already decided there"
        else:
            why = ""
        if why:
            self._drop(fact, why)
            return
        assert stage is not None
        self.out.append(fact)
        verdict = fact.details.get("verdict")
        granted_only = actor in stage.granted and actor not in stage.approvers
        stage.decided.append(actor)
        if verdict == "approve":
            stage.approvals.append(actor)
        spec = self.changed["stages"][stage.index]
        if verdict == "reject":
            self._emit("deliverable.rejected", trigger, None)
            self.status = "rejected"
            self._close()
        elif verdict == "request_changes":
            self._emit("deliverable.changes_requested", trigger, stage.index)
            self.status = "changes_requested"
            stage.open = False
        elif granted_only or stage_passes(spec["rule"], spec.get("n"), stage.approvers, stage.approvals):
            self._advance(trigger)

    def _advance(self, trigger: Trigger) -> None:
        assert self.stage is not None
        index = self.stage.index
        self._emit("deliverable.stage.passed", trigger, index)
        self.stage.open = False
        if index + 1 < len(self.changed["stages"]):
            self._open(index + 1, trigger.fact, trigger.consequences)
        else:
            self._emit("deliverable.approved", trigger, None)
            self.status = "approved"
            self._close()

    def _close(self) -> None:
        if self.stage is not None:
            self.stage.open = False
        self.stage = None

    def _emit(self, action: str, trigger: Trigger, stage_index: int | None) -> None:
        """The recorded row of this consequence where the record has it, else one made at the trigger's time."""
        for fact in trigger.consequences:
            if fact.action == action and (stage_index is None or fact.stage_index == stage_index):
                self.out.append(fact)
                return
        details = {} if stage_index is None else {"stage_index": stage_index}
        cause = trigger.fact
        self.out.append(Fact(cause.at, action, cause.actor, self.revision, details, cause.cause, cause.position))

    def _drop(self, fact: Fact, why: str) -> None:
        what = ("the revision" if fact.action == "deliverable.revision.submitted" else
                "the withdrawal" if fact.action == "deliverable.withdrawn" else
                "the reassignment" if fact.action == "deliverable.stage.reassigned" else
                f"{fact.actor}'s {VERDICT_WORDS.get(fact.details.get('verdict', ''), 'decision')} on "
                f"{self._name(fact.stage_index)}")
        self.notes.append(f"{what} at {clock(fact.at)} would not have happened: {why}")

    def _name(self, index: int | None) -> str:
        stages = self.changed.get("stages", [])
        return stages[index]["name"] if index is not None and 0 <= index < len(stages) else f"stage {index}"

    # ---- stages and their deadlines ------------------------------------------------------------
    def _open(self, index: int, cause: Fact, recorded: list[Fact]) -> None:
        spec = self.changed["stages"][index]
        same_rules = spec == self.policy["stages"][index] and not self.changes.calendar_given
        opening = self.openings.get((index, self.revision, cause.cause))
        if opening is not None and any(f is opening.fact for f in recorded):
            fact = opening.fact
            approvers = list(fact.details.get("approvers") or [])
            if same_rules:
                self.out.append(fact)
                timers = sorted(((f.at, f.position, f) for f in opening.deadline_facts), key=_timer_order)
                self.stage = Stage(index, fact.at, approvers, spec, timers)
                return
            at, calendar = fact.at, self._calendar(fact.details.get("calendar"))
        else:
            at, approvers = cause.at, self._approvers(index, cause.at)
            calendar = self._calendar(self._recorded_calendar(cause.at))
        deadlines = stage_deadlines(spec, self.path, _moment(at), Calendar.model_validate(calendar)
                                    if calendar is not None else None)
        details = {"approvers": approvers, "calendar": calendar, "deadlines": deadlines, "index": index}
        self.out.append(Fact(at, "deliverable.stage.opened", cause.actor, self.revision, details, cause.cause,
                             cause.position))
        timers = sorted(((datetime.fromisoformat(d["due_at"]).timestamp(), 0, (d["kind"], d["level"]))
                         for d in deadlines), key=_timer_order)
        self.stage = Stage(index, at, approvers, spec, timers)

    def _calendar(self, recorded: dict[str, Any] | None) -> dict[str, Any] | None:
        return self.changes.calendar if self.changes.calendar_given else recorded

    def _recorded_calendar(self, at: float) -> dict[str, Any] | None:
        before = [f for f in self.opened_facts if f.at <= at] or self.opened_facts[:1]
        return before[-1].details.get("calendar") if before else None

    def _approvers(self, index: int, at: float) -> list[str]:
        same = [f for f in self.opened_facts if f.details.get("index") == index]
        this_revision = [f for f in same if (f.revision or 1) == self.revision]
        earlier = [f for f in same if f.at <= at]
        chosen = (this_revision or earlier or same)
        if chosen:
            return list((chosen[0] if this_revision else chosen[-1]).details.get("approvers") or [])
        return stage_approvers(self.changed["stages"][index], self.members_at(at), self.submitter)

    def _fire_timers(self, at: float, position: int) -> None:
        stage = self.stage
        while stage is not None and stage.open and stage.timers:
            due, pos, what = stage.timers[0]  # sorted when the stage opened
            if (due, pos) >= (at, position) or due >= self.until:
                return
            stage.timers.pop(0)
            if isinstance(what, Fact):
                self.out.append(what)
                if what.action == "escalation.raised":
                    stage.granted += [p for p in what.details.get("granted") or [] if p not in stage.granted]
                continue
            kind, level = what
            waiting = [p for p in dict.fromkeys(stage.approvers + stage.granted) if p not in stage.decided]
            if kind == "reminder":
                details: dict[str, Any] = {"level": level, "stage_index": stage.index, "to": waiting}
                action = "reminder.sent"
            elif kind == "sla":
                details, action = {"stage_index": stage.index}, "sla.breached"
            else:
                step = escalation_steps(stage.spec, self.path)[level - 1]
                members = self.members_at(due)
                granted = [p for p in role_holders(step.get("grant", []), members) if p != self.submitter]
                details = {"granted": granted, "level": level, "notified": resolve_people(step.get("notify", []), members),
                           "stage_index": stage.index}
                action = "escalation.raised"
                stage.granted += [p for p in granted if p not in stage.granted]
            self.out.append(Fact(due, action, SYSTEM_ACTOR, self.revision, details, None, 0))


# ---- the answer -------------------------------------------------------------------------------
def what_if(cases: list[Case], since: float | None, until: float, policy_name: str, changes: Changes,
            members_at: MembersAt, known: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The retrospective as recorded and as it would have been, their difference, and per deliverable
    of `policy_name` what would have happened differently and why. `known`: other versions of the
    policy the changes must fit too (the latest published), checked as the recorded ones are."""
    matching = [c for c in cases if c.kind == "deliverable"
                and (c.facts[0].details.get("policy") or {}).get("name") == policy_name]
    versions = {(c.facts[0].details.get("policy") or {}).get("version"): c.facts[0].details["policy"]
                for c in matching}
    check_changes([*(known or []), *(versions[v] for v in sorted(versions, key=lambda v: (v is None, v)))], changes)
    changed = {v: changed_policy(p, changes) for v, p in versions.items()}
    chains: list[Chain] = []
    imagined: list[Chain] = []
    stories = []
    for case in cases:
        if case.kind != "deliverable":
            continue
        chain = fold(case)
        chains.append(chain)
        if (case.facts[0].details.get("policy") or {}).get("name") != policy_name:
            imagined.append(chain)  # not re-run: as recorded
            continue
        again = Rerun(case, changed[case.facts[0].details["policy"].get("version")], changes, members_at, until)
        other = fold(again.run())
        imagined.append(other)
        story = describe(chain, other, again.notes, until)
        if story:
            stories.append({"id": case.id, "title": case.title, "changes": story})
    dependencies = [c for c in cases if c.kind == "dependency"]
    actual = figures(chains, dependencies, since, until)
    what = figures(imagined, dependencies, since, until)
    return {"actual": actual, "what_if": what, "difference": difference(actual, what), "deliverables": stories}


def describe(actual: Chain, imagined: Chain, notes: list[str], until: float) -> list[str]:
    """What would have happened differently to one deliverable, in its order."""
    story: list[str] = []

    def keyed(chain: Chain) -> dict[tuple[int, int, int], Any]:
        seen: dict[tuple[int, int], int] = {}
        out = {}
        for run in chain.runs:
            n = seen[(run.index, run.revision)] = seen.get((run.index, run.revision), 0) + 1
            out[(run.index, run.revision, n)] = run
        return out

    was, would = keyed(actual), keyed(imagined)
    for key in sorted({*was, *would}, key=lambda k: (k[1], k[2], k[0])):
        a, b = was.get(key), would.get(key)
        name = (a or b).name
        label = f"{name} (revision {key[1]})" if key[1] > 1 else name
        if b is None:
            story.append(f"{label} would not have opened")
            continue
        if a is None:
            story.append(f"{label} would have opened at {clock(b.opened)}")
        elif b.opened != a.opened:
            story.append(f"{label} would have opened at {clock(b.opened)} instead of {clock(a.opened)}")
        if a is None or (b.closed, b.closed_by) != (a.closed, a.closed_by):
            instead = ("" if a is None else f" instead of {clock(a.closed)}" if a.closed is not None
                       else " instead of staying open")
            if b.closed is None:
                waiting = [p for p in b.approvers if p not in {d[0] for d in b.decisions}]
                closing = f" instead of closing at {clock(a.closed)}" if a is not None and a.closed is not None else ""
                story.append(f"{label} would still have been open at {clock(until)}, waiting on "
                             f"{', '.join(waiting) or 'nobody who had not decided'}{closing}")
            elif b.closed_by in ("passed", "changes_requested", "rejected") and b.closer:
                verdict = next((v for actor, v, at in reversed(b.decisions) if actor == b.closer), "approve")
                story.append(f"{label} would have closed at {clock(b.closed)} on {b.closer}'s "
                             f"{VERDICT_WORDS.get(verdict, 'decision')}{instead}")
            else:
                story.append(f"{label} would have closed at {clock(b.closed)} ({b.closed_by}){instead}")
        _deadline_story(story, label, a, b)
    story += notes
    if (imagined.outcome, imagined.ended) != (actual.outcome, actual.ended):
        was_text = (f"{actual.outcome} at {clock(actual.ended)}" if actual.ended is not None
                    else "still open")
        if imagined.ended is None:
            story.append(f"it would still have been open at {clock(until)} instead of {was_text}")
        else:
            story.append(f"it would have been {imagined.outcome} at {clock(imagined.ended)} instead of {was_text}")
    return story


def _deadline_story(story: list[str], label: str, a: Any, b: Any) -> None:
    was = {level: (at, notified) for level, at, notified in (a.escalations if a else [])}
    would = {level: (at, notified) for level, at, notified in b.escalations}
    for level in sorted({*was, *would}):
        if level not in was:
            at, notified = would[level]
            story.append(f"an escalation to level {level} at {clock(at)} would have fired in {label}"
                         + (f" (notifying {', '.join(notified)})" if notified else ""))
        elif level not in would:
            story.append(f"the escalation to level {level} at {clock(was[level][0])} in {label} would not have fired")
        elif was[level][0] != would[level][0]:
            story.append(f"the escalation to level {level} in {label} would have fired at {clock(would[level][0])} "
                         f"instead of {clock(was[level][0])}")
    breached_was, breached_would = bool(a and a.sla_breached), b.sla_breached
    if breached_would and not breached_was:
        story.append(f"the SLA of {label} would have been breached")
    elif breached_was and not breached_would:
        story.append(f"the SLA of {label} would not have been breached")
    reminders_was, reminders_would = len(a.reminders) if a else 0, len(b.reminders)
    if reminders_would != reminders_was:
        story.append(f"{label} would have sent {reminders_would} reminder(s) instead of {reminders_was}")


def difference(actual: Any, imagined: Any) -> Any:
    """What-if minus actual, for every number both have (ids and the window left out); a figure one
    side lacks (None) shows both sides."""
    if isinstance(actual, dict) or isinstance(imagined, dict):
        actual, imagined = actual or {}, imagined or {}
        out = {}
        for key in [*actual, *(k for k in imagined if k not in actual)]:
            if key == "window" or key == "ids" or key.endswith("_ids") or key == "note":
                continue
            value = difference(actual.get(key), imagined.get(key))
            if value is not None and value != {}:
                out[key] = value
        return out
    numeric = (int, float)
    if isinstance(actual, numeric) and isinstance(imagined, numeric) and not isinstance(actual, bool):
        return round(imagined - actual, 4)
    if actual is None and imagined is None:
        return None
    if isinstance(actual, list) or isinstance(imagined, list):
        return None
    return {"actual": actual, "what_if": imagined}


def members_over_time(project_facts: list[Fact]) -> MembersAt:
    """The project's members at any moment, from its rows (creation and charter changes)."""
    changes = [(f.at, f.details["members"]) for f in project_facts
               if f.action in ("project.created", "project.charter.changed") and isinstance(f.details.get("members"), list)]

    def members_at(at: float) -> Members:
        current: Members = changes[0][1] if changes else []
        for when, members in changes:
            if when > at:
                break
            current = members
        return current

    return members_at
