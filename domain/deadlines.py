"""When a stage's reminders, escalation steps and SLA fall due: pure arithmetic, in the project's
working time when it has a calendar, in wall time when it has none."""

from datetime import datetime
from typing import Any

from domain import business_time
from domain.calendar import Calendar


def stage_deadlines(stage: dict[str, Any], project_path: list[dict[str, Any]], opened_at: datetime,
                    calendar: Calendar | None = None) -> list[dict[str, Any]]:
    """Every deadline of a stage opened at `opened_at`, earliest first.

    A stage's own escalation steps win; a stage that names none (null, not an empty list)
    escalates along the project's path. Each duration is counted by `business_time.add` (its ISO
    string, so `P1D` is one working day on a calendar).
    """
    def due(duration: str) -> datetime:
        return business_time.add(opened_at, duration, calendar)

    deadlines = [
        {"kind": "reminder", "level": level, "due_at": due(after)}
        for level, after in enumerate(stage.get("reminders") or [], start=1)
    ]
    steps = stage.get("escalation")
    if steps is None:
        steps = project_path
    deadlines += [
        {"kind": "escalation", "level": level, "due_at": due(step["after"])}
        for level, step in enumerate(steps, start=1)
    ]
    if stage.get("sla"):
        deadlines.append({"kind": "sla", "level": 0, "due_at": due(stage["sla"])})
    deadlines.sort(key=lambda d: (d["due_at"], d["kind"], d["level"]))
    return [{**d, "due_at": d["due_at"].isoformat(), "done": False} for d in deadlines]


def escalation_steps(stage: dict[str, Any], project_path: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps = stage.get("escalation")
    return project_path if steps is None else steps
