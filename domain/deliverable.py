"""The Deliverable aggregate: the record of one approval chain.

Command methods take the use case's command, check it with `rules.check` and trigger events only
when it is allowed, so a refused command records nothing. A command already held (its command id
is known) is a no-op, which makes at-least-once activities record exactly once. The events keep
the names and fields they were first stored with; the state is the frozen value objects of
`deliverable_state`, so what the record holds and what it shows have one shape.
"""

from datetime import datetime, timezone
from collections.abc import Callable
from typing import Any

import holidays
from eventsourcing.domain import Aggregate, event

from domain import rules
from domain.commands import (
    ChainCommand,
    Decide,
    FireDeadline,
    Reassign,
    SubmitDeliverable,
    SubmitRevision,
    Withdraw,
)
from domain.calendar import Calendar
from domain.deadlines import escalation_steps, stage_deadlines
from domain.deliverable_state import (
    ChainView,
    DecisionView,
    DeliverableState,
    EscalationView,
    PolicyRef,
    RevisionView,
    StageView,
    earliest_pending,
)
from domain.errors import Invalid
from domain.project import resolve_people, roles_by_user
from domain.quorum import satisfiable, stage_passes, unique

Members = list[dict[str, Any]]
# The project's members, read only by a command that needs them (one that opens a stage, names
# people or escalates): most decisions do not, and are spared a load of the project.
MembersOf = Callable[[], Members]
# The project's calendar (a dict of `Calendar`, None for wall time), read the same way: only when a
# stage opens, so its deadlines are computed, and recorded, when they are set.
CalendarOf = Callable[[], dict[str, Any] | None]


def no_calendar() -> None:
    return None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stage_approvers(stage: dict[str, Any], members: Members, submitter: str) -> list[str]:
    """The people who approve a stage: its users and the holders of its roles, never the submitter."""
    people = list(stage["approvers"].get("users", []))
    wanted = set(stage["approvers"].get("roles", []))
    people += [user for user, roles in roles_by_user(members).items() if roles & wanted]
    return [p for i, p in enumerate(people) if p != submitter and p not in people[:i]]


def check_policy_fits(policy: dict[str, Any], members: Members, submitter: str) -> None:
    """Refuse a chain that could never finish, or whose approvers could never see it: a stage with
    fewer approvers than its rule needs, or an approver named by user id who is not on the project.
    (Escalation names that match nobody on the project simply notify nobody.)"""
    by_user = roles_by_user(members)
    for stage in policy["stages"]:
        strangers = [u for u in stage["approvers"].get("users", []) if u not in by_user]
        if strangers:
            # Not who they are: the submitter may not be allowed to read the policy's user ids.
            raise Invalid(f"stage {stage['name']!r} names {len(unique(strangers))} approver(s) by user id who "
                          "are not members of this project; ask pmo to add them or use another policy", ("policy",))
        approvers = stage_approvers(stage, members, submitter)
        if not satisfiable(stage["rule"], stage.get("n"), approvers):
            raise Invalid(
                f"stage {stage['name']!r} cannot be satisfied on this project: it needs "
                f"{stage.get('n') or 1} approver(s) other than the submitter and has {len(approvers)}", ("policy",))


def role_holders(roles: list[str], members: Members) -> list[str]:
    wanted = set(roles)
    return [user for user, held in roles_by_user(members).items() if held & wanted]


class Deliverable(Aggregate):
    # ---- creation -------------------------------------------------------------------------
    @event("Submitted")
    def __init__(self, project_id: str, title: str, submitter: str, policy: dict[str, Any],
                 escalation_path: list[dict[str, Any]], revision: dict[str, Any], command_id: str,
                 at: str) -> None:
        self.project_id = project_id
        self.title = title
        self.submitter = submitter
        self.policy = policy
        self.escalation_path = escalation_path
        self.status = "in_review"
        self.revisions = [RevisionView(**revision, number=1, submitted_by=submitter, submitted_at=at)]
        self.stage: StageView | None = None
        self.decisions: list[DecisionView] = []
        self.escalations: list[EscalationView] = []
        self.closed_stages: dict[int, list[str]] = {}
        self.commands = {command_id}
        self.created_at = at
        self.updated_at = at

    @classmethod
    def submit(cls, cmd: SubmitDeliverable, members: Members, escalation_path: list[dict[str, Any]],
               deliverable_id: Any, calendar: dict[str, Any] | None = None) -> "Deliverable":
        check_policy_fits(cmd.policy, members, cmd.actor)
        deliverable = cls._create(cls.Submitted, id=deliverable_id, project_id=cmd.project_id, title=cmd.title,
                                  submitter=cmd.actor, policy=cmd.policy, escalation_path=escalation_path,
                                  revision=cmd.revision.model_dump(), command_id=cmd.command_id,
                                  at=utcnow().isoformat())
        deliverable._open_stage(0, members, cmd.actor, calendar)
        return deliverable

    # ---- commands ---------------------------------------------------------------------------
    def handle(self, cmd: ChainCommand, members: MembersOf, calendar: CalendarOf = no_calendar) -> None:
        """Apply a command to the chain; one already held changes nothing."""
        if cmd.command_id in self.commands:
            return
        match cmd:
            case Decide():
                self.decide(cmd, members, calendar)
            case SubmitRevision():
                self.submit_revision(cmd, members, calendar)
            case Withdraw():
                self.withdraw(cmd)
            case Reassign():
                self.reassign(cmd, members, calendar)
            case FireDeadline():
                self.fire_deadline(cmd, members)

    def decide(self, cmd: Decide, members: MembersOf, calendar: CalendarOf = no_calendar) -> None:
        rules.check(self.to_view(), cmd)
        stage = self.stage
        assert stage is not None
        granted_only = cmd.actor in stage.granted and cmd.actor not in stage.approvers
        stalled = [p for p in stage.approvers if p not in stage.decided] if granted_only else []
        self._record_decision(actor=cmd.actor, on_behalf_of=stalled, verdict=cmd.verdict, comment=cmd.comment,
                              revision=cmd.revision, stage_index=stage.index, command_id=cmd.command_id,
                              at=utcnow().isoformat())
        stage = self.stage
        if cmd.verdict == "reject":
            self._reject(actor=cmd.actor, at=utcnow().isoformat())
        elif cmd.verdict == "request_changes":
            self._request_changes(stage_index=stage.index, actor=cmd.actor, at=utcnow().isoformat())
        elif granted_only or stage_passes(stage.rule, stage.n, stage.approvers, stage.approvals):
            self._advance(members, cmd.actor, calendar)

    def submit_revision(self, cmd: SubmitRevision, members: MembersOf, calendar: CalendarOf = no_calendar) -> None:
        rules.check(self.to_view(), cmd)
        self._record_revision(number=len(self.revisions) + 1, uri=cmd.uri, sha256=cmd.sha256, note=cmd.note,
                              actor=cmd.actor, command_id=cmd.command_id, at=utcnow().isoformat())
        stage_index = self.stage.index if self.stage else 0
        resume = self.policy["on_revision"] == "resume" and self.status == "changes_requested"
        self._open_stage(stage_index if resume else 0, members(), cmd.actor, calendar())

    def withdraw(self, cmd: Withdraw) -> None:
        rules.check(self.to_view(), cmd)
        self._withdraw(actor=cmd.actor, reason=cmd.reason, command_id=cmd.command_id, at=utcnow().isoformat())

    def reassign(self, cmd: Reassign, members: MembersOf, calendar: CalendarOf = no_calendar) -> None:
        rules.check(self.to_view(), cmd)
        rules.check_members(cmd.approvers, members())
        assert self.stage is not None
        self._reassign(stage_index=self.stage.index, approvers=unique(cmd.approvers), actor=cmd.actor,
                       reason=cmd.reason, command_id=cmd.command_id, at=utcnow().isoformat())
        stage = self.stage
        if stage_passes(stage.rule, stage.n, stage.approvers, stage.approvals):
            self._advance(members, cmd.actor, calendar)

    def fire_deadline(self, cmd: FireDeadline, members: MembersOf) -> None:
        """A stage deadline fell due: remind, escalate or mark the SLA breached, once."""
        stage = self.stage
        if (stage is None or not stage.open or stage.index != cmd.stage_index
                or stage.opened_at != datetime.fromisoformat(cmd.opened_at)):
            return  # the stage moved on before the timer fired: nothing is due any more
        due = next((d for d in stage.deadlines if d.kind == cmd.kind and d.level == cmd.level), None)
        if due is None or due.done:
            return
        at = utcnow().isoformat()
        if cmd.kind == "reminder":
            self._remind(stage_index=stage.index, level=cmd.level, to=stage.waiting_on, command_id=cmd.command_id,
                         at=at)
        elif cmd.kind == "sla":
            self._breach_sla(stage_index=stage.index, command_id=cmd.command_id, at=at)
        else:
            step = escalation_steps(self.policy["stages"][stage.index], self.escalation_path)[cmd.level - 1]
            notified = resolve_people(step.get("notify", []), members())
            granted = [p for p in role_holders(step.get("grant", []), members()) if p != self.submitter]
            self._escalate(stage_index=stage.index, level=cmd.level, notified=notified, granted=granted,
                           command_id=cmd.command_id, at=at)

    # ---- internal transitions -----------------------------------------------------------------
    def _advance(self, members: MembersOf, actor: str, calendar: CalendarOf = no_calendar) -> None:
        assert self.stage is not None
        index = self.stage.index
        self._pass_stage(stage_index=index, actor=actor, at=utcnow().isoformat())
        if index + 1 < len(self.policy["stages"]):
            self._open_stage(index + 1, members(), actor, calendar())
        else:
            self._approve(actor=actor, at=utcnow().isoformat())

    def _open_stage(self, index: int, members: Members, actor: str, calendar: dict[str, Any] | None = None) -> None:
        """Open a stage with its deadlines computed now, on the project's calendar of now. The event
        records that calendar and the `holidays` version, so history shows why a deadline fell when it did."""
        spec = self.policy["stages"][index]
        opened = utcnow()
        counted_on = Calendar.model_validate(calendar) if calendar is not None else None
        extra = {} if calendar is None else {"calendar": calendar, "holidays_version": holidays.__version__}
        self._record_stage_opened(index=index, approvers=stage_approvers(spec, members, self.submitter),
                                  deadlines=stage_deadlines(spec, self.escalation_path, opened, counted_on),
                                  actor=actor, at=opened.isoformat(), **extra)

    # ---- events -----------------------------------------------------------------------------
    @event("StageOpened")
    def _record_stage_opened(self, index: int, approvers: list[str], deadlines: list[dict[str, Any]], actor: str,
                             at: str, calendar: dict[str, Any] | None = None,
                             holidays_version: str | None = None) -> None:
        # calendar, holidays_version: what the deadlines were counted on (absent: wall time).
        spec = self.policy["stages"][index]
        # Stages from this one on are open again (a restart or resume): their people are current.
        self.closed_stages = {i: people for i, people in self.closed_stages.items() if i < index}
        self.status = "in_review"
        self.stage = StageView.of(index=index, name=spec["name"], rule=spec["rule"], n=spec.get("n"), open=True,
                                  approvers=approvers, granted=[], approvals=[], decided=[], escalation_level=0,
                                  opened_at=at, deadlines=deadlines)
        self.updated_at = at

    @event("DecisionRecorded")
    def _record_decision(self, actor: str, on_behalf_of: list[str], verdict: str, comment: str, revision: int,
                         stage_index: int, command_id: str, at: str) -> None:
        stage = self.stage
        assert stage is not None
        self.stage = stage.replace(decided=[*stage.decided, actor],
                                   approvals=[*stage.approvals, actor] if verdict == "approve" else stage.approvals)
        self.decisions.append(DecisionView(actor=actor, on_behalf_of=on_behalf_of, verdict=verdict, comment=comment,
                                           revision=revision, stage_index=stage_index, stage_name=stage.name, at=at))
        self.commands.add(command_id)
        self.updated_at = at

    @event("StagePassed")
    def _pass_stage(self, stage_index: int, actor: str, at: str) -> None:
        assert self.stage is not None
        self.stage = self.stage.replace(open=False)
        self.closed_stages[stage_index] = self.stage.approvers + self.stage.granted
        self.updated_at = at

    @event("Approved")
    def _approve(self, actor: str, at: str) -> None:
        self.status = "approved"
        self.stage = None
        self.updated_at = at

    @event("Rejected")
    def _reject(self, actor: str, at: str) -> None:
        self.status = "rejected"
        self.stage = None
        self.updated_at = at

    @event("ChangesRequested")
    def _request_changes(self, stage_index: int, actor: str, at: str) -> None:
        assert self.stage is not None
        self.status = "changes_requested"
        self.stage = self.stage.replace(open=False)
        self.updated_at = at

    @event("RevisionSubmitted")
    def _record_revision(self, number: int, uri: str, sha256: str, note: str, actor: str, command_id: str,
                         at: str) -> None:
        self.revisions.append(RevisionView(number=number, uri=uri, sha256=sha256, note=note, submitted_by=actor,
                                           submitted_at=at))
        self.commands.add(command_id)
        self.updated_at = at

    @event("Withdrawn")
    def _withdraw(self, actor: str, reason: str, command_id: str, at: str) -> None:
        self.status = "withdrawn"
        self.stage = None
        self.commands.add(command_id)
        self.updated_at = at

    @event("Reassigned")
    def _reassign(self, stage_index: int, approvers: list[str], actor: str, reason: str, command_id: str,
                  at: str) -> None:
        assert self.stage is not None
        self.stage = self.stage.replace(approvers=approvers)
        self.commands.add(command_id)
        self.updated_at = at

    @event("ReminderSent")
    def _remind(self, stage_index: int, level: int, to: list[str], command_id: str, at: str) -> None:
        self._mark_done("reminder", level)
        self.commands.add(command_id)
        self.updated_at = at

    @event("SlaBreached")
    def _breach_sla(self, stage_index: int, command_id: str, at: str) -> None:
        self._mark_done("sla", 0)
        self.commands.add(command_id)
        self.updated_at = at

    @event("Escalated")
    def _escalate(self, stage_index: int, level: int, notified: list[str], granted: list[str], command_id: str,
                  at: str) -> None:
        self._mark_done("escalation", level)
        assert self.stage is not None
        stage = self.stage
        self.stage = stage.replace(escalation_level=level,
                                   granted=[*stage.granted, *(p for p in granted if p not in stage.granted)])
        self.escalations.append(EscalationView(stage_index=stage_index, stage_name=stage.name, level=level,
                                               notified=notified, granted=granted, at=at))
        self.commands.add(command_id)
        self.updated_at = at

    def _mark_done(self, kind: str, level: int) -> None:
        assert self.stage is not None
        self.stage = self.stage.replace(deadlines=[
            d.model_copy(update={"done": True}) if d.kind == kind and d.level == level else d
            for d in self.stage.deadlines])

    # ---- reading ----------------------------------------------------------------------------
    def to_state(self) -> DeliverableState:
        return DeliverableState(
            id=str(self.id), project_id=self.project_id, title=self.title, submitter=self.submitter,
            policy=PolicyRef(name=self.policy["name"], version=self.policy["version"],
                             on_revision=self.policy["on_revision"]),
            status=self.status, revision=len(self.revisions), revisions=self.revisions, stage=self.stage,
            stages=[s["name"] for s in self.policy["stages"]], decisions=self.decisions,
            escalations=self.escalations, created_at=self.created_at, updated_at=self.updated_at,
            version=self.version, next_deadline=self._next_deadline())

    def _next_deadline(self) -> dict[str, Any] | None:
        due = earliest_pending(self.stage)
        return None if due is None else {"kind": due.kind, "level": due.level, "due_at": due.due_at}

    def to_view(self) -> ChainView:
        former = unique([p for people in self.closed_stages.values() for p in people])
        return ChainView(id=str(self.id), submitter=self.submitter, status=self.status,
                         revision=len(self.revisions), revision_sha256=self.revisions[-1].sha256,
                         stage=self.stage, former_approvers=former, version=self.version)
