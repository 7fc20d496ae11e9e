"""Pure dependency rules, shared by the watch's validators and the aggregate (which checks again).

`check(state, command, parties, now)` raises the reason a command may not be applied, or returns
quietly. The state is None for `OpenDependency`. `parties` carries the member lists of both
projects and the actor's global roles: who holds the owner role is read from them.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.dependency_commands import (
    Acknowledge,
    Cancel,
    DependencyCommand,
    OpenDependency,
    Owner,
    ReassignOwner,
    ReportProgress,
    Resolve,
)
from domain.dependency_state import CLOSED, DependencyState, OwnerView
from domain.durations import parse_duration
from domain.errors import Conflict, DependencyClosed, Forbidden, Invalid
from domain.project import GLOBAL_ROLES, resolve_people, roles_by_user

Members = list[dict[str, Any]]
MAX_STALL_AFTER = timedelta(days=366)  # "over a year" is a typo, not a plan


@dataclass(frozen=True)
class Parties:
    """The two projects' members and what the token says of the actor."""

    requesting: Members
    providing: Members | None = None  # None: no providing project named
    global_roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def owners_project(self) -> Members:
        """Where the owner works: the providing project, or the requesting one when none is named."""
        return self.requesting if self.providing is None else self.providing

    @property
    def everyone(self) -> Members:
        """Both projects' members, each user once with all their roles: whom an escalation may reach."""
        merged: dict[str, set[str]] = {}
        for members in (self.requesting, self.providing or []):
            for user, roles in roles_by_user(members).items():
                merged.setdefault(user, set()).update(roles)
        return [{"user": user, "roles": sorted(roles)} for user, roles in merged.items()]

    def sees(self, actor: str) -> bool:
        """Members of either project see a dependency; pmo and admin see every one."""
        return bool(self.global_roles & GLOBAL_ROLES) or actor in roles_by_user(self.everyone)


def owner_holders(owner: Owner | OwnerView, members: Members) -> list[str]:
    if owner.user is not None:
        return [owner.user] if owner.user in roles_by_user(members) else []
    return [user for user, roles in roles_by_user(members).items() if owner.role in roles]


def notify_people(names: list[str], parties: Parties) -> list[str]:
    """Escalation names (roles or users) resolved over both projects: never anyone outside them."""
    return resolve_people(names, parties.everyone)


def grant_people(roles: list[str], parties: Parties) -> list[str]:
    wanted = set(roles)
    return [user for user, held in roles_by_user(parties.everyone).items() if held & wanted]


def check(state: DependencyState | None, command: DependencyCommand, parties: Parties, now: datetime,
          granted: frozenset[str] = frozenset()) -> None:
    """Raise why `command` may not be applied to the dependency as `state` shows it. `granted` are
    the people an escalation's `grant` made able to resolve or re-assign it."""
    if isinstance(command, OpenDependency):
        _check_open(command, parties, now)
        return
    assert state is not None
    if state.status in CLOSED:
        raise DependencyClosed(f"the dependency is {state.status}")
    actor = command.actor
    is_owner = actor in owner_holders(state.owner, parties.owners_project)
    match command:
        case Acknowledge():
            if not is_owner:
                raise Forbidden("only the owner acknowledges a dependency")
            if state.status == "in_progress":
                raise Conflict("the dependency is already acknowledged")
        case ReportProgress():
            if not is_owner:
                raise Forbidden("only the owner reports progress")
        case Resolve():
            if not (is_owner or actor in granted):
                raise Forbidden("only the owner resolves a dependency")
        case Cancel():
            if not (actor == state.created_by or _is_pmo(actor, parties)):
                raise Forbidden("only the requester, pmo or admin cancel a dependency")
        case ReassignOwner():
            if not (actor in granted or _is_pmo(actor, parties)):
                raise Forbidden("only pmo, admin or a role an escalation granted re-assign the owner")
            _check_owner(command.owner, parties)
            if OwnerView(user=command.owner.user, role=command.owner.role) == state.owner:
                raise Conflict("that is the owner already")


def _check_open(command: OpenDependency, parties: Parties, now: datetime) -> None:
    if command.actor not in roles_by_user(parties.requesting) and not parties.global_roles & GLOBAL_ROLES:
        raise Forbidden("only members of the requesting project open a dependency on its behalf")
    if command.needed_by <= now:
        raise Invalid(f"needed_by {command.needed_by.isoformat()} is in the past", ("needed_by",))
    _check_duration(command.stall_after, "stall_after", MAX_STALL_AFTER, "over a year")
    if command.remind_before is not None:
        _check_duration(command.remind_before, "remind_before")
    for index, step in enumerate(command.escalation or []):
        _check_duration(step.after, ("escalation", index, "after"))
    _check_owner(command.owner, parties)


def _check_duration(text: str, name: str | tuple[str | int, ...], longest: timedelta | None = None,
                    too_long: str = "") -> None:
    where = name if isinstance(name, tuple) else (name,)
    try:
        value = parse_duration(text)
    except Invalid as exc:
        raise Invalid(f"{'.'.join(map(str, where))}: {exc.detail}", where) from None
    if longest is not None and value > longest:
        raise Invalid(f"{'.'.join(map(str, where))}: {text!r} is {too_long}", where)


def _check_owner(owner: Owner, parties: Parties) -> None:
    if not owner_holders(owner, parties.owners_project):
        where = "the providing project" if parties.providing is not None else "the requesting project"
        named = f"user {owner.user!r} is not a member of" if owner.user else f"nobody holds role {owner.role!r} in"
        raise Invalid(f"owner: {named} {where}", ("owner",))


def _is_pmo(actor: str, parties: Parties) -> bool:
    return bool(parties.global_roles & GLOBAL_ROLES) or "pmo" in roles_by_user(parties.requesting).get(actor, set())
