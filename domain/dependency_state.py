"""The dependency as clients and its watch see it, and the pure arithmetic of its deadlines.

These frozen models are also the aggregate's value objects, so what the record holds and what it
shows have one shape.
"""

import functools
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.business_time import add, before
from domain.calendar import Calendar

Status = Literal["open", "in_progress", "resolved", "cancelled"]
CLOSED: frozenset[str] = frozenset({"resolved", "cancelled"})
DeadlineKind = Literal["reminder", "stall", "escalation", "overdue"]


class Value(BaseModel):
    model_config = ConfigDict(frozen=True)


class OwnerView(Value):
    user: str | None = None
    role: str | None = None


class EscalationEntry(Value):
    level: int
    at: datetime
    notified: list[str]
    granted: list[str]


class NextDeadline(Value):
    kind: DeadlineKind
    level: int
    due_at: datetime


class Clock(Value):
    """One run of the stall clock: started at creation, restarted by acknowledge and progress."""

    started_at: datetime
    stalled_at: datetime | None = None
    escalation_level: int = 0  # the last escalation step fired in this run


class Schedule(Value):
    """What the deadlines of a dependency derive from."""

    needed_by: datetime
    stall_after: str
    remind_before: str | None = None
    escalation: list[dict[str, Any]] = []  # the steps: the dependency's own, else the project's path
    status: Status = "open"
    reminded: bool = False
    overdue: bool = False
    clock: Clock


@functools.lru_cache(maxsize=4096)
def reminder_due(needed_by: datetime, remind_before: str, calendar: Calendar | None) -> datetime:
    """`remind_before` counted back from `needed_by` (a bisection on a calendar: worth remembering)."""
    return before(needed_by, remind_before, calendar)


def pending_deadlines(schedule: Schedule, calendar: Calendar | None = None) -> list[NextDeadline]:
    """Every deadline still to fire, earliest first. Stall and escalation belong to the current run
    of the clock; escalation steps count from the moment it stalled, each from that moment."""
    if schedule.status in CLOSED:
        return []
    clock = schedule.clock
    due: list[NextDeadline] = []
    if schedule.remind_before and not schedule.reminded:
        due.append(NextDeadline(kind="reminder", level=0,
                                due_at=reminder_due(schedule.needed_by, schedule.remind_before, calendar)))
    if clock.stalled_at is None:
        due.append(NextDeadline(kind="stall", level=0, due_at=add(clock.started_at, schedule.stall_after, calendar)))
    else:
        due += [NextDeadline(kind="escalation", level=level, due_at=add(clock.stalled_at, step["after"], calendar))
                for level, step in enumerate(schedule.escalation, start=1) if level > clock.escalation_level]
    if not schedule.overdue:
        due.append(NextDeadline(kind="overdue", level=0, due_at=schedule.needed_by))
    return sorted(due, key=lambda d: (d.due_at, d.kind, d.level))


def next_deadline(schedule: Schedule, calendar: Calendar | None = None) -> NextDeadline | None:
    pending = pending_deadlines(schedule, calendar)
    return pending[0] if pending else None


class WatchView(BaseModel):
    """What the dependency's watch needs: its pending deadlines and the clock run they belong to."""

    id: str
    status: Status
    clock_started_at: datetime
    deadlines: list[NextDeadline]
    version: int

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


class DependencyState(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    project_id: str = Field(json_schema_extra={"format": "uuid"})
    providing_project_id: str | None = Field(json_schema_extra={"format": "uuid"})
    title: str
    owner: OwnerView
    needed_for: str | None
    status: Status
    stalled: bool
    overdue: bool
    needed_by: datetime
    stall_after: str
    last_progress_at: datetime | None
    percent: int | None
    escalations: list[EscalationEntry]
    next_deadline: NextDeadline | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
