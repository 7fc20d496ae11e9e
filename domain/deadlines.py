"""When a stage's reminders, escalation steps and SLA fall due: pure arithmetic on wall time."""

from datetime import datetime
from typing import Any

from domain.durations import parse_duration


def stage_deadlines(stage: dict[str, Any], project_path: list[dict[str, Any]], opened_at: datetime) -> list[dict[str, Any]]:
    """Every deadline of a stage opened at `opened_at`, earliest first.

    A stage's own escalation steps win; a stage that names none (null, not an empty list)
    escalates along the project's path.
    """
    deadlines = [
        {"kind": "reminder", "level": level, "due_at": opened_at + parse_duration(after)}
        for level, after in enumerate(stage.get("reminders") or [], start=1)
    ]
    steps = stage.get("escalation")
    if steps is None:
        steps = project_path
    deadlines += [
        {"kind": "escalation", "level": level, "due_at": opened_at + parse_duration(step["after"])}
        for level, step in enumerate(steps, start=1)
    ]
    if stage.get("sla"):
        deadlines.append({"kind": "sla", "level": 0, "due_at": opened_at + parse_duration(stage["sla"])})
    deadlines.sort(key=lambda d: (d["due_at"], d["kind"], d["level"]))
    return [{**d, "due_at": d["due_at"].isoformat(), "done": False} for d in deadlines]


def escalation_steps(stage: dict[str, Any], project_path: list[dict[str, Any]]) -> list[dict[str, Any]]:
    steps = stage.get("escalation")
    return project_path if steps is None else steps
