"""Timelines: a deliverable's or a dependency's whole life as intervals, and the points where things happened.

Pure and deterministic: the answer is a function of the aggregate's stored events and `now` alone.
The events are folded in order, as `Signoff.aggregate_as_of` folds them, so an interval's state is
what `GET …?as_of=` answers at its `from`.

Intervals. The events are grouped by the command that caused them (an event with a command id
starts a group; the events it triggered in the same save, a stage passing and the next opening
after an approval, follow without one), so a stage that passes on a decision is one step, never a
microsecond-long interval in between. After each group the record's *key* (state, stage, revision,
who it waits on...) is taken; a new interval starts where the key changes, at the time of the
group's last event: from then on `GET …?as_of=` answers that state, until the next interval's
`from`. (The first interval starts at the first event: the life begins at the submission or
opening.) Each interval's `to` is the next one's `from`: no gaps, no overlaps. The life
ends at a final status (approved, rejected, withdrawn; resolved, cancelled): the last interval's
`to` is that moment; while the record is still open it is null and `duration_s` counts up to `now`.
A group recorded with an earlier time than the one before (two workers' clocks a little apart) is
taken to start where the previous one did, so a duration is never negative.

Points. Every event is a point `{"at", "kind", "actor", ...}` with the fields that say what it was
(a decision's verdict and comment, an escalation's level and whom it notified, ...).
"""

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from domain.application import event_time
from domain.deliverable_state import FINAL_STATUSES
from domain.dependency_state import CLOSED
from domain.history import history_entry

# Event type -> point kind.
DELIVERABLE_KINDS = {
    "Submitted": "submission", "StageOpened": "stage_opened", "DecisionRecorded": "decision",
    "StagePassed": "stage_passed", "Approved": "approved", "Rejected": "rejected",
    "ChangesRequested": "changes_requested", "RevisionSubmitted": "revision", "Withdrawn": "withdrawal",
    "Reassigned": "reassignment", "ReminderSent": "reminder", "SlaBreached": "sla_breach", "Escalated": "escalation",
}
DEPENDENCY_KINDS = {
    "Opened": "opening", "Acknowledged": "acknowledgement", "ProgressReported": "progress", "Resolved": "resolution",
    "Cancelled": "cancellation", "OwnerReassigned": "reassignment", "ReminderSent": "reminder", "Stalled": "stall",
    "Escalated": "escalation", "BecameOverdue": "overdue",
}
# The event's own fields a point shows, when the event has them.
POINT_FIELDS = ("verdict", "comment", "on_behalf_of", "level", "notified", "granted", "to", "approvers", "reason",
                "note", "percent", "owner", "told", "due_at")

Key = dict[str, Any]


def steps(events: Iterable[Any]) -> Iterator[list[Any]]:
    """The events in groups, one per command: a group starts at an event with a command id (or at the
    first event) and holds the events without one that follow it."""
    group: list[Any] = []
    for stored in events:
        if group and getattr(stored, "command_id", None):
            yield group
            group = []
        group.append(stored)
    if group:
        yield group


def timeline(events: list[Any], now: datetime, key_of: Callable[[Any], Key | None],
             point_of: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """Intervals and points of one aggregate's events (see the module's docstring). `key_of(aggregate)`
    is the state an interval holds, None once the life has ended; `point_of(event, aggregate after it)`
    the point an event is."""
    aggregate: Any = None
    intervals: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    started: datetime | None = None
    ended: datetime | None = None
    for group in steps(events):
        for stored in group:
            aggregate = stored.mutate(aggregate)
            points.append(point_of(stored, aggregate))
        if ended is not None:
            continue  # nothing after the end changes the life (a late no-op, if ever)
        at = event_time(group[-1]) if intervals else event_time(group[0])
        if intervals:
            at = max(at, intervals[-1]["from"])
        started = started or at
        key = key_of(aggregate)
        if intervals and key == intervals[-1]["key"]:
            continue
        if intervals:
            close(intervals[-1], at)
        if key is None:
            ended = at
        else:
            intervals.append({"key": key, "from": at})
    if intervals and "to" not in intervals[-1]:
        last = intervals[-1]
        last.update(to=None, duration_s=max((now - last["from"]).total_seconds(), 0.0))
    return {"id": str(aggregate.id) if aggregate is not None else None,
            "status": aggregate.status if aggregate is not None else None,
            "started_at": started, "ended_at": ended,
            "intervals": [{**i.pop("key"), **i} for i in intervals], "points": points}


def close(interval: dict[str, Any], at: datetime) -> None:
    interval.update(to=at, duration_s=(at - interval["from"]).total_seconds())


def point(stored: Any, kinds: dict[str, str]) -> dict[str, Any]:
    entry = history_entry(stored)
    shown = {"at": entry["at"], "kind": kinds.get(entry["type"], entry["type"]), "type": entry["type"],
             "actor": entry["actor"]}
    shown.update({k: entry[k] for k in POINT_FIELDS if entry.get(k) is not None})
    if not shown.get("on_behalf_of"):
        shown.pop("on_behalf_of", None)  # said only where a granted escalation decided for others
    return shown


# ---- deliverables ---------------------------------------------------------------------------------
def deliverable_key(deliverable: Any) -> Key | None:
    """What a deliverable's interval holds: its status, the open stage, the revision, and whom it
    waits on: the open stage's approvers (and those an escalation granted) who have not decided yet;
    while changes are requested, the submitter, for a new revision."""
    if deliverable.status in FINAL_STATUSES:
        return None
    stage = deliverable.stage if deliverable.stage is not None and deliverable.stage.open else None
    if stage is not None:
        waiting = list(stage.waiting_on)
    else:
        waiting = [deliverable.submitter] if deliverable.status == "changes_requested" else []
    return {"state": deliverable.status, "stage": stage.name if stage else None,
            "stage_index": stage.index if stage else None, "revision": len(deliverable.revisions),
            "waiting_on": waiting, "escalation_level": stage.escalation_level if stage else 0}


def deliverable_point(stored: Any, deliverable: Any) -> dict[str, Any]:
    shown = point(stored, DELIVERABLE_KINDS)
    index = getattr(stored, "stage_index", getattr(stored, "index", None))  # StageOpened names it `index`
    if index is not None:
        shown.update(stage_index=index, stage=deliverable.policy["stages"][index]["name"])
    # The revision it happened on: a decision names its own; anything else, the latest then.
    shown["revision"] = getattr(stored, "revision", None) if shown["kind"] == "decision" else len(
        deliverable.revisions)
    return shown


def deliverable_timeline(events: list[Any], now: datetime) -> dict[str, Any]:
    return timeline(events, now, deliverable_key, deliverable_point)


# ---- dependencies ---------------------------------------------------------------------------------
def dependency_key(dependency: Any) -> Key | None:
    """What a dependency's interval holds: its status, whether it is stalled (and how far its
    escalation has gone) or overdue, and its owner, whom it waits on: a user, or `role:<name>` for
    whoever holds that role."""
    if dependency.status in CLOSED:
        return None
    owner = dependency.owner
    stalled = dependency.clock.stalled_at is not None
    return {"state": dependency.status, "stalled": stalled, "overdue": dependency.overdue,
            "escalation_level": dependency.clock.escalation_level if stalled else 0,
            "owner": owner.model_dump(), "waiting_on": [owner.user] if owner.user else [f"role:{owner.role}"]}


def dependency_point(stored: Any, dependency: Any) -> dict[str, Any]:
    return point(stored, DEPENDENCY_KINDS)


def dependency_timeline(events: list[Any], now: datetime) -> dict[str, Any]:
    return timeline(events, now, dependency_key, dependency_point)
