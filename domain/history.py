"""History: any aggregate's recorded events as entries of one shape, each saying what caused it.

An entry is `type, at, recorded_at, version, actor, on_behalf_of, correlation`, then the event's own
fields as they were stored (one that would collide with a common field is renamed, see RENAMED).
Every aggregate kind's `…/{id}/history`, and the audit rows, are built from these entries.

`correlation` is `{"workflow_id", "update_id", "command_id"}`. Workflows stamp each command they
record with its command id: `"{workflow id}:update:{update id}"` for a command that came as a
Temporal Update, `"{workflow id}:{name}"` for one the workflow made itself (a deadline that fell
due, the opening), so both ids are read back from the stored event and nothing new is recorded.
"""

from collections.abc import Callable, Iterable
from typing import Any

from domain.commands import SYSTEM_ACTOR

UPDATE = "update:"
# What eventsourcing keeps on every event besides the domain's own fields.
BOOKKEEPING = frozenset({"timestamp", "originator_id", "originator_version", "originator_topic"})
# Event fields named like a common field that means something else, and what the entry calls them:
# a policy's VersionPublished `version` is the policy's version, not the aggregate's.
RENAMED = {"version": "policy_version"}


def correlation_of(command_id: str | None, fallback_workflow_id: str | None) -> dict[str, str | None]:
    """The workflow and Temporal Update that `command_id` names. A command id that names no workflow
    (none, or one given by hand) leaves the workflow the aggregate's own, `fallback_workflow_id`."""
    if command_id:
        workflow_id, colon, name = command_id.partition(":")
        if colon and workflow_id:
            update_id = name[len(UPDATE):] if name.startswith(UPDATE) else None
            return {"workflow_id": workflow_id, "update_id": update_id or None, "command_id": command_id}
    return {"workflow_id": fallback_workflow_id, "update_id": None, "command_id": command_id or None}


def history_entry(stored: Any, fallback_workflow_id: str | None = None,
                  cause: str | None = None) -> dict[str, Any]:
    """One stored event as an entry. Its correlation comes from its own command id, else from
    `cause` (the command id of the command that triggered it), else the aggregate's workflow."""
    data = stored.__dict__
    own = {RENAMED.get(k, k): v for k, v in data.items() if k not in BOOKKEEPING and k not in ("at", "actor")}
    entry = {"type": type(stored).__qualname__.split(".")[-1],
             "at": data.get("at") or stored.timestamp.isoformat(),
             "recorded_at": stored.timestamp.isoformat(),
             "version": stored.originator_version,
             "actor": data.get("actor") or data.get("submitter") or data.get("created_by") or SYSTEM_ACTOR,
             "on_behalf_of": list(data.get("on_behalf_of") or []),
             "correlation": correlation_of(data.get("command_id") or cause, fallback_workflow_id)}
    entry.update({k: v for k, v in own.items() if k not in entry})
    return entry


def history(events: Iterable[Any], workflow_of: Callable[[Any], str | None]) -> list[dict[str, Any]]:
    """Entries for one aggregate's events, oldest first; `workflow_of(event)` is the workflow that
    records the aggregate's events (None for what only HTTP requests change).

    An event without a command id of its own (a stage opening after a decision, an approval after
    the last stage passed) takes the correlation of the command event before it, if that was the
    same actor's: aggregates trigger such consequences in the command's own method, right after
    the command's event and with its actor, so they are saved with it. Anything else keeps the
    aggregate's workflow with no update."""
    entries: list[dict[str, Any]] = []
    cause: tuple[str, str] | None = None  # (command id, actor) of the last command event
    for stored in events:
        command_id = stored.__dict__.get("command_id") or None
        actor = stored.__dict__.get("actor")
        inherited = cause[0] if cause and command_id is None and actor == cause[1] else None
        entries.append(history_entry(stored, workflow_of(stored), inherited))
        if command_id is not None:
            cause = (command_id, actor or entries[-1]["actor"])
    return entries
