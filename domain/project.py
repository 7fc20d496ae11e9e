"""The Project aggregate: who works on it, in which project roles, where stalled work escalates, and
the business calendar its deadlines count in (a dict of `domain.calendar.Calendar`; None: wall time)."""

from datetime import UTC, datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.commands import SYSTEM_ACTOR
from domain.errors import Invalid, NotFound

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
        # Webhook id -> {"id", "url", "events" (None: all), "generation", "added_at"}; never a secret.
        self.webhooks: dict[str, dict[str, Any]] = {}

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

    # ---- webhooks -----------------------------------------------------------------------------
    def set_webhooks(self, actor: str, reason: str, wanted: list[dict[str, Any]], new_id: Any) -> list[str]:
        """Make the project's webhooks those `wanted` (`{"id"?, "url", "events"}`): one with a known
        id is kept (and changed), one without is added under `new_id()`, one not listed is removed.
        Answer the ids added, whose secrets the caller shows once."""
        listed = [w["id"] for w in wanted if w.get("id")]
        unknown = [i for i in listed if i not in self.webhooks]
        if unknown:
            raise Invalid(f"no webhook {unknown[0]} on this project; leave out `id` to add one", ("webhooks",))
        if len(listed) != len(set(listed)):
            raise Invalid("each webhook may be listed once", ("webhooks",))
        for webhook_id in [i for i in self.webhooks if i not in listed]:
            self._remove_webhook(webhook_id=webhook_id, actor=actor, reason=reason)
        added = []
        for webhook in wanted:
            events = sorted(webhook["events"]) if webhook.get("events") is not None else None
            if webhook.get("id"):
                known = self.webhooks[webhook["id"]]
                if (known["url"], known["events"]) != (webhook["url"], events):
                    self._change_webhook(webhook_id=webhook["id"], url=webhook["url"], events=events, actor=actor,
                                         reason=reason)
            else:
                webhook_id = str(new_id())
                self._add_webhook(webhook_id=webhook_id, url=webhook["url"], events=events, actor=actor,
                                  reason=reason, at=datetime.now(UTC).isoformat())
                added.append(webhook_id)
        return added

    def rotate_webhook_secret(self, webhook_id: str, actor: str) -> int:
        """A new secret for the webhook (the old one stops signing at once); answer its generation."""
        if webhook_id not in self.webhooks:
            raise NotFound(f"no webhook {webhook_id} on this project")
        self._rotate_webhook_secret(webhook_id=webhook_id, generation=self.webhooks[webhook_id]["generation"] + 1,
                                    actor=actor)
        return self.webhooks[webhook_id]["generation"]

    def unsubscribe_webhook(self, webhook_id: str, why: str) -> None:
        """The receiver answered 410 Gone: it wants no more. Removing one already gone does nothing."""
        if webhook_id in self.webhooks:
            self._remove_webhook(webhook_id=webhook_id, actor=SYSTEM_ACTOR, reason=why)

    @event("WebhookAdded")
    def _add_webhook(self, webhook_id: str, url: str, events: list[str] | None, actor: str, reason: str,
                     at: str) -> None:
        # A webhook receives what happens from `at` on, never what came before it.
        self.webhooks[webhook_id] = {"id": webhook_id, "url": url, "events": events, "generation": 1, "added_at": at}

    @event("WebhookChanged")
    def _change_webhook(self, webhook_id: str, url: str, events: list[str] | None, actor: str, reason: str) -> None:
        self.webhooks[webhook_id] = {**self.webhooks[webhook_id], "url": url, "events": events}

    @event("WebhookRemoved")
    def _remove_webhook(self, webhook_id: str, actor: str, reason: str) -> None:
        self.webhooks.pop(webhook_id, None)

    @event("WebhookSecretRotated")
    def _rotate_webhook_secret(self, webhook_id: str, generation: int, actor: str) -> None:
        self.webhooks[webhook_id] = {**self.webhooks[webhook_id], "generation": generation}

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
