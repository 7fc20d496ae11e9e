"""The Project aggregate: who works on it, in which project roles, where stalled work escalates, and
the business calendar its deadlines count in (a dict of `domain.calendar.Calendar`; None: wall time)."""

from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.errors import Invalid

# Roles a token gives across all projects: they see every project and steer its chains.
GLOBAL_ROLES = frozenset({"admin", "pmo"})


class Project(Aggregate):
    @event("Created")
    def __init__(self, name: str, members: list[dict[str, Any]], escalation_path: list[dict[str, Any]],
                 phases: list[dict[str, Any]], created_by: str, calendar: dict[str, Any] | None = None) -> None:
        self.name = name
        self.members = members
        self.escalation_path = escalation_path
        self.phases = phases
        self.created_by = created_by
        # Projects created before calendars replay their Created event without one: wall time.
        self.calendar = calendar

    @classmethod
    def create(cls, name: str, members: list[dict[str, Any]], escalation_path: list[dict[str, Any]],
               phases: list[dict[str, Any]], created_by: str, calendar: dict[str, Any] | None = None) -> "Project":
        check_members(members)
        return cls(name=name, members=members, escalation_path=escalation_path, phases=phases,
                   created_by=created_by, calendar=calendar)

    def change_charter(self, actor: str, reason: str, members: list[dict[str, Any]] | None = None,
                       escalation_path: list[dict[str, Any]] | None = None,
                       phases: list[dict[str, Any]] | None = None,
                       calendar: dict[str, Any] | None = None) -> bool:
        """Replace the parts given (None keeps a part as it is); answer whether anything changed. A
        change that changes nothing records nothing. Running chains keep the approvers they resolved;
        whoever is no longer a member no longer sees the project, so can no longer decide."""
        if members is not None:
            check_members(members)
        changed = {name: value for name, value in (("members", members), ("escalation_path", escalation_path),
                                                   ("phases", phases), ("calendar", calendar))
                   if value is not None and value != getattr(self, name)}
        if not changed:
            return False
        self._charter_changed(actor=actor, reason=reason, **changed)
        return True

    @event("CharterChanged")
    def _charter_changed(self, actor: str, reason: str, members: list[dict[str, Any]] | None = None,
                         escalation_path: list[dict[str, Any]] | None = None,
                         phases: list[dict[str, Any]] | None = None,
                         calendar: dict[str, Any] | None = None) -> None:
        if members is not None:
            self.members = members
        if escalation_path is not None:
            self.escalation_path = escalation_path
        if phases is not None:
            self.phases = phases
        if calendar is not None:
            self.calendar = calendar

    def roles_of(self, user: str) -> set[str]:
        return roles_by_user(self.members).get(user, set())

    def is_member(self, user: str) -> bool:
        return user in roles_by_user(self.members)


def check_members(members: list[dict[str, Any]]) -> None:
    users = [m["user"] for m in members]
    if len(users) != len(set(users)):
        raise Invalid("each member may be listed once", ("members",))


def roles_by_user(members: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {m["user"]: set(m.get("roles", [])) for m in members}


def resolve_people(names: list[str], members: list[dict[str, Any]]) -> list[str]:
    """Names that are project roles become their members, names of members stay; a role nobody on
    the project holds (yet) reaches nobody, and nobody outside the project is ever notified."""
    by_user = roles_by_user(members)
    people: list[str] = []
    for name in names:
        holders = [user for user, roles in by_user.items() if name in roles]
        for user in holders or ([name] if name in by_user else []):
            if user not in people:
                people.append(user)
    return people
