"""What the calendar feed holds for one person, and the iCalendar text of it (made with `icalendar`).

One event per due time that waits for the caller, in the projects they are a member of:

- `sla`: the SLA of an open stage the caller is still to decide (in its `waiting_on`);
- `escalation`: each escalation step of an open stage that notifies the caller or grants them the
  decision, whether it has fired (who it reached, as recorded) or not yet (whom it would reach, from
  the step's `notify`/`grant` and the project's members now, as the chain will resolve them);
- `needed_by` and `reminder`: of each open or in-progress dependency the caller owns (the owner
  user, or a holder of the owner role in the owner's project), its needed-by time and the time its
  reminder falls due (`remind_before` counted back on the project's calendar), fired or not;
- `escalation` of a dependency: while its stall clock has stalled, each step that notifies or
  grants the caller (due times count from the moment it stalled, as the watch counts them).

Not (yet): stage reminders (they remind of the SLA, which is in), stages without an SLA (no due time),
and gate planned dates (there are no gates yet). An event leaves the feed when its subject stops
waiting for the caller (decided, closed, resolved, re-assigned), so a calendar app drops it too.

Each event's UID names its subject, deadline kind and level (`deliverable-{id}-{stage}-sla-0@signoff`),
so a calendar app updates it in place when its time moves and never shows it twice; DTSTAMP is the
subject's last change, so the same state gives byte-identical text on every fetch.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from icalendar import Calendar, Event

from api.deps import Services
from domain.business_time import add
from domain.deadlines import escalation_steps
from domain.deliverable import role_holders
from domain.dependency_rules import grant_people, notify_people
from domain.dependency_state import reminder_due
from domain.project import resolve_people, roles_by_user

PRODID = "-//Signoff//Deadlines feed//EN"
DURATION = timedelta(minutes=30)
REFRESH = timedelta(minutes=15)
WAITING = ("open", "in_progress")


@dataclass(frozen=True)
class Due:
    uid: str
    at: datetime
    summary: str
    description: str
    url: str
    stamp: datetime  # when the subject last changed


def due_for(services: Services, user: str) -> list[Due]:
    """Every due time waiting for `user`, earliest first (blocking: run it in a thread)."""
    projects = {p["id"]: p for p in services.views.projects_of(user)}
    mine = list(projects)
    base = services.settings.public_base_url()
    due: list[Due] = []
    for summary in services.views.deliverables(mine, status="in_review"):
        due += _deliverable_due(services, user, summary, projects[summary["project_id"]], base)
    my_roles = {pid: roles_by_user(p["members"]).get(user, set()) for pid, p in projects.items()}
    for state, _ in services.views.dependency_rows(mine):
        if state["status"] in WAITING:
            due += _dependency_due(services, user, state, my_roles, projects, base)
    return sorted(due, key=lambda d: (d.at, d.uid))


def _deliverable_due(services: Services, user: str, summary: dict[str, Any], project: dict[str, Any],
                     base: str) -> list[Due]:
    stage = summary["stage"]
    if stage is None or not stage["open"]:
        return []
    title, name, index = summary["title"], stage["name"], stage["index"]
    subject = f"deliverable-{summary['id']}-{index}"
    url, stamp = f"{base}/api/deliverables/{summary['id']}", datetime.fromisoformat(summary["updated_at"])
    where = f"Project: {project['name']}. Stage {index + 1} ({name}) opened {stage['opened_at']}."
    found: list[Due] = []
    if user in summary["waiting_on"] and stage["sla_due_at"]:
        found.append(Due(f"{subject}-sla-0@signoff", datetime.fromisoformat(stage["sla_due_at"]),
                         f"Review due: {title} ({name})",
                         f"{where} Your decision is due (the stage's SLA). Decide: POST {url}/decisions\n{url}",
                         url, stamp))
    deliverable = services.store.repository.get(UUID(summary["id"]))
    steps = escalation_steps(deliverable.policy["stages"][index], deliverable.escalation_path)
    open_stage = deliverable.stage
    for deadline in open_stage.deadlines:
        if deadline.kind != "escalation" or deadline.level > len(steps):
            continue
        fired = [e for e in deliverable.escalations if e.stage_index == index and e.level == deadline.level
                 and e.at >= open_stage.opened_at]
        if fired:  # who it reached, as recorded
            notified, granted = fired[-1].notified, fired[-1].granted
        else:  # whom it will reach: resolved as the chain resolves them when it fires
            step = steps[deadline.level - 1]
            notified = resolve_people(step.get("notify", []), project["members"])
            granted = [p for p in role_holders(step.get("grant", []), project["members"]) if p != deliverable.submitter]
        if user not in notified and user not in granted:
            continue
        what = "raised" if fired else "due"
        role = "may decide in the approvers' place" if user in granted else "are notified"
        found.append(Due(f"{subject}-escalation-{deadline.level}@signoff", deadline.due_at,
                         f"Escalation to you: {title} ({name}), level {deadline.level}",
                         f"{where} Escalation level {deadline.level} is {what} at this time; you {role}.\n{url}",
                         url, stamp))
    return found


def _dependency_due(services: Services, user: str, state: dict[str, Any], my_roles: dict[str, set[str]],
                    projects: dict[str, dict[str, Any]], base: str) -> list[Due]:
    owner, owners_project = state["owner"], state["providing_project_id"] or state["project_id"]
    owns = owner["user"] == user or (owner["role"] is not None and owner["role"] in my_roles.get(owners_project, set()))
    if not owns and not state["stalled"]:
        return []
    title, subject = state["title"], f"dependency-{state['id']}"
    url, stamp = f"{base}/api/dependencies/{state['id']}", datetime.fromisoformat(state["updated_at"])
    project = projects.get(owners_project) or projects.get(state["project_id"]) or {"name": "another project"}
    needed_by = datetime.fromisoformat(state["needed_by"])
    where = f"Project: {project['name']}. Needed by {needed_by.isoformat()}."
    dependency = services.store.dependency_aggregate(state["id"])
    found: list[Due] = []
    if owns:
        found.append(Due(f"{subject}-needed_by-0@signoff", needed_by, f"Needed by: {title}",
                         f"{where} You own this dependency; report progress or resolve it: POST {url}/progress, "
                         f"POST {url}/resolve\n{url}", url, stamp))
        if dependency.remind_before:
            found.append(Due(f"{subject}-reminder-0@signoff",
                             reminder_due(dependency.needed_by, dependency.remind_before, dependency.counted_on),
                             f"Reminder: {title} is needed by {needed_by.date().isoformat()}",
                             f"{where} The dependency's reminder ({dependency.remind_before} before).\n{url}",
                             url, stamp))
    clock = dependency.clock
    if clock.stalled_at is None:
        return found
    parties = None
    for level, step in enumerate(dependency.escalation, start=1):
        fired = [e for e in dependency.escalations if e.level == level and e.at >= clock.started_at]
        if fired:
            notified, granted = fired[-1].notified, fired[-1].granted
        else:
            parties = parties or services.store.dependency_parties(state["id"])
            notified = notify_people(step.get("notify", []), parties)
            granted = grant_people(step.get("grant", []), parties)
        if user not in notified and user not in granted:
            continue
        what = "raised" if fired else "due"
        found.append(Due(f"{subject}-escalation-{level}@signoff", add(clock.stalled_at, step["after"],
                                                                      dependency.counted_on),
                         f"Dependency escalation to you: {title}, level {level}",
                         f"{where} It stalled at {clock.stalled_at.isoformat()}; escalation level {level} is "
                         f"{what} at this time.\n{url}", url, stamp))
    return found


def ics(user: str, due: list[Due]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Signoff: due from {user}")
    # How often a calendar app should fetch again (RFC 7986, and the older name some apps read).
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", REFRESH)
    for item in due:
        event = Event()
        event.add("uid", item.uid)
        event.add("dtstamp", item.stamp)
        event.add("dtstart", item.at)
        event.add("duration", DURATION)
        event.add("summary", item.summary)
        event.add("description", item.description)
        event.add("url", item.url)
        calendar.add_component(event)
    return calendar.to_ical()
