"""The Dependency aggregate: the record of one thing a project owes another (or itself).

As with the deliverable, command methods check with `dependency_rules.check` before any event is
triggered, so a refused command records nothing, and a command already held (its command id) is a
no-op. The stall clock starts at creation and restarts at every acknowledge or progress; a stall
or escalation deadline of a run that has since restarted is a no-op, and so is any deadline that
is not pending (fired before, or on a closed dependency).
"""

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import holidays
from eventsourcing.domain import Aggregate, event

from domain import dependency_rules
from domain.calendar import Calendar
from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    DependencyChange,
    FireDependencyDeadline,
    OpenDependency,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_rules import Parties, grant_people, notify_people, owner_holders
from domain.dependency_state import (
    Clock,
    DependencyState,
    EscalationEntry,
    OwnerView,
    Schedule,
    WatchView,
    next_deadline,
    pending_deadlines,
)
from domain.quorum import unique

# The parties, read only by a command that needs them: most do.
PartiesOf = Callable[[], Parties]


@functools.lru_cache(maxsize=256)
def _calendar(text: str) -> Calendar:
    # Validating a calendar asks the holidays package about its codes: once per calendar, not per read.
    return Calendar.model_validate_json(text)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dependency(Aggregate):
    # ---- creation -------------------------------------------------------------------------
    @event("Opened")
    def __init__(self, project_id: str, providing_project_id: str | None, title: str, description: str,
                 owner: dict[str, Any], needed_for: str | None, needed_by: str, stall_after: str,
                 remind_before: str | None, escalation: list[dict[str, Any]], actor: str, command_id: str,
                 at: str, calendar: dict[str, Any] | None = None, holidays_version: str | None = None) -> None:
        # calendar, holidays_version: the requesting project's calendar at opening, which every
        # deadline of the dependency counts on (absent: wall time), and the holidays it knew.
        self.project_id = project_id
        self.providing_project_id = providing_project_id
        self.title = title
        self.description = description
        self.owner = OwnerView(**owner)
        self.needed_for = needed_for
        self.needed_by = datetime.fromisoformat(needed_by)
        self.stall_after = stall_after
        self.remind_before = remind_before
        self.escalation = escalation
        self.calendar = calendar
        self.status = "open"
        self.reminded = False
        self.overdue = False
        self.clock = Clock(started_at=datetime.fromisoformat(at))
        self.last_progress_at: datetime | None = None
        self.percent: int | None = None
        self.escalations: list[EscalationEntry] = []
        self.commands = {command_id}
        self.created_by = actor
        self.created_at = datetime.fromisoformat(at)
        self.updated_at = self.created_at

    @classmethod
    def open(cls, cmd: OpenDependency, parties: Parties, project_path: list[dict[str, Any]],
             dependency_id: Any, calendar: dict[str, Any] | None = None) -> "Dependency":
        """Open a dependency; its escalation steps are its own, else the requesting project's path.
        Its durations count on `calendar` (the requesting project's), kept as it was at opening."""
        now = utcnow()
        dependency_rules.check(None, cmd, parties, now)
        steps = ([s.model_dump() for s in cmd.escalation] if cmd.escalation is not None else project_path)
        holidays_version = None if calendar is None else holidays.__version__
        return cls._create(cls.Opened, id=dependency_id, project_id=cmd.project_id,
                           providing_project_id=cmd.providing_project_id, title=cmd.title,
                           description=cmd.description, owner=cmd.owner.model_dump(), needed_for=cmd.needed_for,
                           needed_by=cmd.needed_by.astimezone(UTC).isoformat(),
                           stall_after=cmd.stall_after, remind_before=cmd.remind_before, escalation=steps,
                           actor=cmd.actor, command_id=cmd.command_id, at=now.isoformat(),
                           calendar=calendar, holidays_version=holidays_version)

    # ---- commands ---------------------------------------------------------------------------
    def handle(self, cmd: DependencyChange, parties: PartiesOf) -> None:
        """Apply a command; one already held changes nothing."""
        if cmd.command_id in self.commands:
            return
        if isinstance(cmd, FireDependencyDeadline):
            self.fire_deadline(cmd, parties)
            return
        dependency_rules.check(self.to_state(), cmd, parties(), utcnow(), self.granted)
        at = utcnow().isoformat()
        match cmd:
            case Acknowledge():
                self._acknowledge(actor=cmd.actor, command_id=cmd.command_id, at=at)
            case ReportProgress():
                self._report_progress(actor=cmd.actor, note=cmd.note, percent=cmd.percent,
                                      command_id=cmd.command_id, at=at)
            case Resolve():
                self._resolve(actor=cmd.actor, note=cmd.note, command_id=cmd.command_id, at=at)
            case Cancel():
                self._cancel(actor=cmd.actor, reason=cmd.reason, command_id=cmd.command_id, at=at)
            case ReassignOwner():
                self._reassign_owner(actor=cmd.actor, owner=cmd.owner.model_dump(), reason=cmd.reason,
                                     command_id=cmd.command_id, at=at)

    def fire_deadline(self, cmd: FireDependencyDeadline, parties: PartiesOf) -> None:
        """A deadline fell due: remind, stall, escalate or mark overdue, once. A deadline that is not
        pending (done, closed, or of a clock run that has restarted) changes nothing."""
        if cmd.kind in ("stall", "escalation") and cmd.clock_started_at != self.clock.started_at:
            return  # acknowledged or progressed since: this run of the clock is over
        due = [d.due_at for d in pending_deadlines(self.schedule, self.counted_on)
               if d.kind == cmd.kind and d.level == cmd.level]
        if not due:
            return
        # The due time the watch waited for, else the one computed now (a caller without a watch).
        timing = {"due_at": (cmd.due_at or due[0]).isoformat(), "command_id": cmd.command_id,
                  "at": utcnow().isoformat()}
        if cmd.kind == "reminder":
            people = parties()
            self._remind(to=owner_holders(self.owner, people.owners_project), **timing)
        elif cmd.kind == "stall":
            people = parties()
            self._stall(clock_started_at=self.clock.started_at.isoformat(),
                        told=unique([*owner_holders(self.owner, people.owners_project), self.created_by]), **timing)
        elif cmd.kind == "escalation":
            step = self.escalation[cmd.level - 1]
            people = parties()
            self._escalate(clock_started_at=self.clock.started_at.isoformat(), level=cmd.level,
                           notified=notify_people(step.get("notify", []), people),
                           granted=grant_people(step.get("grant", []), people), **timing)
        else:
            self._become_overdue(told=[self.created_by], **timing)

    # ---- events -----------------------------------------------------------------------------
    @event("Acknowledged")
    def _acknowledge(self, actor: str, command_id: str, at: str) -> None:
        self.status = "in_progress"
        self._restart_clock(at)
        self.commands.add(command_id)

    @event("ProgressReported")
    def _report_progress(self, actor: str, note: str, percent: int | None, command_id: str, at: str) -> None:
        self.status = "in_progress"  # progress says the owner has taken it up
        if percent is not None:
            self.percent = percent
        self.last_progress_at = datetime.fromisoformat(at)
        self._restart_clock(at)
        self.commands.add(command_id)

    @event("Resolved")
    def _resolve(self, actor: str, note: str, command_id: str, at: str) -> None:
        self.status = "resolved"
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("Cancelled")
    def _cancel(self, actor: str, reason: str, command_id: str, at: str) -> None:
        self.status = "cancelled"
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("OwnerReassigned")
    def _reassign_owner(self, actor: str, owner: dict[str, Any], reason: str, command_id: str, at: str) -> None:
        self.owner = OwnerView(**owner)
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("ReminderSent")
    def _remind(self, to: list[str], command_id: str, at: str, due_at: str | None = None) -> None:
        self.reminded = True
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("Stalled")
    def _stall(self, clock_started_at: str, told: list[str], command_id: str, at: str, due_at: str | None = None) -> None:
        # It stalled when its clock ran out, however late that was recorded: the escalation steps
        # count from then, so a late worker does not push every step later too.
        self.clock = self.clock.model_copy(update={"stalled_at": datetime.fromisoformat(due_at or at)})
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("Escalated")
    def _escalate(self, clock_started_at: str, level: int, notified: list[str], granted: list[str],
                  command_id: str, at: str, due_at: str | None = None) -> None:
        self.clock = self.clock.model_copy(update={"escalation_level": level})
        self.escalations.append(EscalationEntry(level=level, at=datetime.fromisoformat(at), notified=notified,
                                                granted=granted))
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    @event("BecameOverdue")
    def _become_overdue(self, told: list[str], command_id: str, at: str, due_at: str | None = None) -> None:
        self.overdue = True
        self.commands.add(command_id)
        self.updated_at = datetime.fromisoformat(at)

    def _restart_clock(self, at: str) -> None:
        """A new run of the stall clock: not stalled, the escalation starts over."""
        self.clock = Clock(started_at=datetime.fromisoformat(at))
        self.updated_at = self.clock.started_at

    # ---- reading ----------------------------------------------------------------------------
    @property
    def granted(self) -> frozenset[str]:
        """Whom an escalation's grant made able to resolve or re-assign, in any run of the clock."""
        return frozenset(p for entry in self.escalations for p in entry.granted)

    @property
    def counted_on(self) -> Calendar | None:
        """The calendar the deadlines count on (None: wall time)."""
        return None if self.calendar is None else _calendar(json.dumps(self.calendar, sort_keys=True))

    @property
    def schedule(self) -> Schedule:
        return Schedule(needed_by=self.needed_by, stall_after=self.stall_after, remind_before=self.remind_before,
                        escalation=self.escalation, status=self.status, reminded=self.reminded,
                        overdue=self.overdue, clock=self.clock)

    def to_state(self) -> DependencyState:
        return DependencyState(
            id=str(self.id), project_id=self.project_id, providing_project_id=self.providing_project_id,
            title=self.title, owner=self.owner, needed_for=self.needed_for, status=self.status,
            stalled=self.clock.stalled_at is not None and self.status not in ("resolved", "cancelled"),
            overdue=self.overdue, needed_by=self.needed_by, stall_after=self.stall_after,
            last_progress_at=self.last_progress_at, percent=self.percent, escalations=self.escalations,
            next_deadline=next_deadline(self.schedule, self.counted_on), created_by=self.created_by, created_at=self.created_at,
            updated_at=self.updated_at, version=self.version)

    def to_watch(self) -> WatchView:
        return WatchView(id=str(self.id), status=self.status, clock_started_at=self.clock.started_at,
                         deadlines=pending_deadlines(self.schedule, self.counted_on), version=self.version)
