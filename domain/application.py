"""The Signoff eventsourcing application: one method per use case, plain values out."""

import functools
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.commands import SYSTEM_ACTOR, ChainCommand, SubmitDeliverable
from domain.deliverable import Deliverable
from domain.deliverable_state import ChainView, DeliverableState
from domain.errors import CommandExpired, ConcurrentChange, NotFound
from domain.history import history
from domain.policies import Policy, policy_id
from domain.project import Project


def as_uuid(value: str | UUID, what: str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound(f"no {what} {value!r}") from None


class Signoff(Application):
    name = "signoff"

    # ---- projects -----------------------------------------------------------------------------
    def create_project(self, name: str, members: list[dict[str, Any]], escalation_path: list[dict[str, Any]],
                       phases: list[dict[str, Any]], actor: str, calendar: dict[str, Any] | None = None) -> Project:
        project = Project.create(name=name, members=members, escalation_path=escalation_path, phases=phases,
                                 created_by=actor, calendar=calendar)
        self._save(project)
        return project

    def change_project(self, project_id: str | UUID, actor: str, reason: str, **parts: Any) -> Project:
        """Replace the charter parts given (members, escalation_path, phases, calendar); record nothing when
        nothing changes. Chains already running keep the approvers they resolved."""
        project = self.get_project(project_id)
        if project.change_charter(actor, reason, **parts):
            self._save(project)
        return project

    def change_project_and_webhooks(self, project_id: str | UUID, actor: str, reason: str,
                                    webhooks: list[dict[str, Any]] | None, new_id: Any,
                                    **parts: Any) -> tuple[Project, list[str]]:
        """`change_project`, and make the project's webhooks those listed (None keeps them), in one
        save; answer the project and the ids of the webhooks added, whose secrets the caller shows once."""
        project = self.get_project(project_id)
        changed = project.change_charter(actor, reason, **parts)
        added = project.set_webhooks(actor, reason, webhooks, new_id) if webhooks is not None else []
        if changed or project.pending_events:
            self._save(project)
        return project, added

    def rotate_webhook_secret(self, project_id: str | UUID, webhook_id: str, actor: str) -> tuple[Project, int]:
        """A new secret generation for the webhook (NotFound for one the project does not have)."""
        project = self.get_project(project_id)
        generation = project.rotate_webhook_secret(webhook_id, actor)
        self._save(project)
        return project, generation

    def read_project(self, project_id: str | UUID) -> Project:
        """The project to read, never to change (the cached instance: see `_get`)."""
        return self._get(as_uuid(project_id, "project"), "project", Project, read_only=True)

    def get_project(self, project_id: str | UUID) -> Project:
        return self._get(as_uuid(project_id, "project"), "project", Project)

    def project_history(self, project_id: str | UUID) -> list[dict[str, Any]]:
        """Every recorded event of the project: its creation, charter changes and webhook changes.
        They come from HTTP requests, not a workflow: no workflow, no update."""
        uid = as_uuid(project_id, "project")
        events = list(self.events.get(uid))
        if not events or not isinstance(events[0], Project.Created):
            raise NotFound(f"no project {project_id}")
        return history(events, lambda _: None)

    # ---- policies -----------------------------------------------------------------------------
    def put_policy(self, name: str, spec: dict[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
        """Publish `spec` under `name`; answer the version and whether a new one was made."""
        try:
            policy: Policy = self.repository.get(policy_id(name))
        except AggregateNotFoundError:
            policy = Policy.create(name=name, created_by=actor)
        changed = policy.publish(spec, actor)
        if changed:
            self._save(policy)
        return self._policy_view(policy, None), changed

    def get_policy(self, name: str, version: int | None = None, as_of: datetime | None = None) -> dict[str, Any]:
        """The latest version, the one asked for, or (`as_of`) the one that was the latest then."""
        if as_of is not None:
            policy = self.aggregate_as_of(policy_id(name), as_of, Policy, f"policy {name!r}")
            if not policy.versions:
                raise NotFound(f"policy {name!r} had no version yet at {as_of.isoformat()}")
            return self._policy_view(policy, version)
        try:
            policy = self.repository.get(policy_id(name))
        except AggregateNotFoundError:
            raise NotFound(f"no policy {name!r}") from None
        return self._policy_view(policy, version)

    def policy_history(self, name: str) -> list[dict[str, Any]]:
        """Every recorded event of the policy: its creation and each version published (`policy_version`,
        `spec`). Published by HTTP requests, not a workflow: no workflow, no update."""
        events = list(self.events.get(policy_id(name)))
        if not events or not isinstance(events[0], Policy.Created):
            raise NotFound(f"no policy {name!r}")
        return history(events, lambda _: None)

    @staticmethod
    def _policy_view(policy: Policy, version: int | None) -> dict[str, Any]:
        chosen = policy.get_version(version)
        return {"name": policy.name, "version": chosen["version"], "latest_version": len(policy.versions),
                **chosen["spec"]}

    # ---- deliverables -------------------------------------------------------------------------
    def submit_deliverable(self, cmd: SubmitDeliverable) -> ChainView:
        uid = as_uuid(cmd.deliverable_id, "deliverable")
        try:
            return self._get(uid, "deliverable", Deliverable).to_view()  # already submitted: a retry
        except NotFound:
            pass
        project = self.get_project(cmd.project_id)
        deliverable = Deliverable.submit(cmd, project.members, project.escalation_path, uid, project.calendar)
        check_not_expired(cmd.expires_at)  # last, so only the save itself can outlast the deadline
        try:
            self.save(deliverable)
        except IntegrityError:
            return self._get(uid, "deliverable", Deliverable).to_view()
        return deliverable.to_view()

    def change_deliverable(self, cmd: ChainCommand) -> ChainView:
        """Record a decision, revision, withdrawal, reassignment or deadline, once; answer the chain's view."""
        deliverable: Deliverable = self._get(as_uuid(cmd.deliverable_id, "deliverable"), "deliverable", Deliverable)
        if cmd.command_id in deliverable.commands:
            return deliverable.to_view()  # recorded before: a repeat answers the record as it is now
        project = functools.cache(lambda: self.get_project(deliverable.project_id))
        deliverable.handle(cmd, lambda: project().members, lambda: project().calendar)
        check_not_expired(cmd.expires_at)  # last, so only the save itself can outlast the deadline
        self._save(deliverable)
        return deliverable.to_view()

    def chain_view(self, deliverable_id: str | UUID) -> ChainView:
        """What the chain's workflow keeps of the deliverable, as the record holds it now."""
        return self._get(as_uuid(deliverable_id, "deliverable"), "deliverable", Deliverable).to_view()

    def get_deliverable(self, deliverable_id: str | UUID, as_of: datetime | None = None) -> DeliverableState:
        uid = as_uuid(deliverable_id, "deliverable")
        if as_of is None:
            return self._get(uid, "deliverable", Deliverable).to_state()
        return self.aggregate_as_of(uid, as_of, Deliverable, f"deliverable {uid}").to_state()

    def deliverable_history(self, deliverable_id: str | UUID) -> list[dict[str, Any]]:
        uid = as_uuid(deliverable_id, "deliverable")
        events = list(self.events.get(uid))
        if not events or not isinstance(events[0], Deliverable.Submitted):
            raise NotFound(f"no deliverable {deliverable_id}")
        entries, revision = history(events, lambda _: f"deliverable-{uid}"), 1
        for entry in entries:
            if isinstance(entry.get("revision"), dict):  # Submitted holds the first revision's content itself
                entry.update(entry.pop("revision"), number=1)
            revision = entry.get("number", revision) if entry["type"] == "RevisionSubmitted" else revision
            entry.setdefault("revision", revision)  # every event names the revision it happened on
        return entries

    # ---- the past: any record as it stood at a moment ------------------------------------------
    def aggregate_as_of(self, uid: UUID, as_of: datetime, kind: type, label: str) -> Any:
        """The `kind` aggregate `uid` folded from its events up to `as_of`: each event that happened
        at or before it (one at exactly `as_of` is in), in recorded order, stopping at the first
        later one. Every record's past is read here. NotFound for no such record, and, saying when
        it began, for a moment before it existed. Read only: never change or save what it answers.

        A record unchanged since `as_of` is as it is now, so the cached aggregate (brought up to date by
        one cheap read) answers, without decoding and folding all its events again: for a snapshot of
        now, that is every record. Each event is stored (its timestamp) after it happened (its `at`),
        so a last event stored at or before `as_of` puts every event at or before it."""
        try:
            current = self.repository.get(uid, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            raise NotFound(f"no {label}") from None
        if not isinstance(current, kind):  # an id of another kind of thing is no such thing
            raise NotFound(f"no {label}")
        if current.modified_on <= as_of:
            return current
        aggregate, began = None, None
        for stored in self.events.get(uid):
            if began is None:
                began = event_time(stored)
            if event_time(stored) > as_of:
                break
            aggregate = stored.mutate(aggregate)
        if aggregate is None:
            raise NotFound(f"{label} did not exist yet at {as_of.isoformat()}: it was created at {began.isoformat()}")
        return aggregate

    def project_as_of(self, project_id: str | UUID, as_of: datetime) -> Project:
        uid = as_uuid(project_id, "project")
        return self.aggregate_as_of(uid, as_of, Project, f"project {uid}")

    def project_snapshot(self, project_id: str | UUID, as_of: datetime, deliverable_ids: list[str],
                         dependency_ids: list[str]) -> dict[str, Any]:
        """The project, and those of `deliverable_ids` and `dependency_ids` that existed at `as_of`,
        each as it stood then (the caller knows which belong to the project: the domain keeps no index).
        Ordered by creation, then id, so the same moment always reads the same."""
        from domain.dependency import Dependency

        project = self.project_as_of(project_id, as_of)

        def existing(ids: list[str], kind: type, what: str) -> list[Any]:
            states = []
            for record_id in ids:
                uid = as_uuid(record_id, what)
                try:
                    states.append(self.aggregate_as_of(uid, as_of, kind, f"{what} {uid}").to_state())
                except NotFound:
                    continue  # created after as_of
            return sorted(states, key=lambda s: (s.created_at, s.id))

        return {"as_of": as_of, "project": project,
                "deliverables": existing(deliverable_ids, Deliverable, "deliverable"),
                "dependencies": existing(dependency_ids, Dependency, "dependency")}

    def deliverable_timeline(self, deliverable_id: str | UUID, now: datetime) -> dict[str, Any]:
        """The deliverable's life as intervals and points (domain/timeline.py), up to `now`."""
        from domain import timeline

        uid = as_uuid(deliverable_id, "deliverable")
        events = list(self.events.get(uid))
        if not events or not isinstance(events[0], Deliverable.Submitted):
            raise NotFound(f"no deliverable {deliverable_id}")
        return timeline.deliverable_timeline(events, now)

    def dependency_timeline(self, dependency_id: str | UUID, now: datetime) -> dict[str, Any]:
        """The dependency's life as intervals and points (domain/timeline.py), up to `now`."""
        from domain import timeline
        from domain.dependency import Dependency

        uid = as_uuid(dependency_id, "dependency")
        events = list(self.events.get(uid))
        if not events or not isinstance(events[0], Dependency.Opened):
            raise NotFound(f"no dependency {dependency_id}")
        return timeline.dependency_timeline(events, now)

    # ---- plumbing -----------------------------------------------------------------------------
    def _get(self, uid: UUID, what: str, kind: type, read_only: bool = False) -> Any:
        """The aggregate; `read_only` takes the cached instance itself, not a copy (much cheaper for
        a project read on every dependency command): never change or save such an aggregate."""
        try:
            aggregate = self.repository.get(uid, deepcopy_from_cache=not read_only)
        except AggregateNotFoundError:
            raise NotFound(f"no {what} {uid}") from None
        if not isinstance(aggregate, kind):  # an id of another kind of thing is no such thing
            raise NotFound(f"no {what} {uid}")
        return aggregate

    def _save(self, *aggregates: Any) -> None:
        try:
            self.save(*aggregates)
        except IntegrityError as exc:
            raise ConcurrentChange("changed by someone else at the same moment; try again") from exc

    # ---- dependencies -------------------------------------------------------------------------
    # (imports local to this block, so that it stays one edit)
    def open_dependency(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> Any:
        """Open a dependency (an OpenDependency command); a retry under the same id answers it as it is."""
        return self.opened_dependency(cmd, global_roles).to_state()

    def opened_dependency(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> Any:
        """The Dependency aggregate `cmd` opened, now or by an earlier attempt under the same id."""
        from domain.dependency import Dependency

        uid = as_uuid(cmd.dependency_id, "dependency")
        try:
            return self._get(uid, "dependency", Dependency)
        except NotFound:
            pass
        dependency = self._opening(cmd, global_roles)
        check_not_expired(cmd.expires_at)  # last, so only the save itself can outlast the deadline
        try:
            self.save(dependency)
        except IntegrityError:
            return self._get(uid, "dependency", Dependency)
        return dependency

    def check_dependency_opening(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> None:
        """Raise why `open_dependency(cmd)` would be refused, recording nothing: the API asks before
        it starts a watch, so a refusal leaves no trace in Temporal either."""
        self._opening(cmd, global_roles)

    def _opening(self, cmd: Any, global_roles: frozenset[str]) -> Any:
        from domain.dependency import Dependency
        from domain.errors import Invalid

        project = self.get_project(cmd.project_id)
        providing = None
        if cmd.providing_project_id is not None:
            try:
                providing = self.get_project(cmd.providing_project_id)
            except NotFound:
                raise Invalid(f"providing_project_id: no project {cmd.providing_project_id}",
                              ("providing_project_id",)) from None
        if cmd.needed_for is not None:
            try:
                needed_for = self._get(as_uuid(cmd.needed_for, "deliverable"), "deliverable", Deliverable)
            except NotFound:
                needed_for = None
            if needed_for is None or needed_for.project_id != str(project.id):
                raise Invalid(f"needed_for: no deliverable {cmd.needed_for} in the requesting project",
                              ("needed_for",))
        parties = self._dependency_parties(project, providing, global_roles | frozenset(cmd.actor_roles))
        return Dependency.open(cmd, parties, project.escalation_path, as_uuid(cmd.dependency_id, "dependency"),
                               project.calendar)

    def change_dependency(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> Any:
        """Acknowledge, progress, resolve, cancel, re-assign or fire a deadline, once; answer the state."""
        return self.changed_dependency(cmd, global_roles).to_state()

    def changed_dependency(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> Any:
        """The Dependency aggregate with `cmd` recorded (a repeat records nothing)."""
        from domain.dependency import Dependency

        dependency = self._changed_dependency(cmd, global_roles)
        if dependency is None:  # recorded before: a repeat answers the record as it is
            return self._get(as_uuid(cmd.dependency_id, "dependency"), "dependency", Dependency)
        check_not_expired(cmd.expires_at)
        self._save(dependency)
        return dependency

    def check_dependency_change(self, cmd: Any, global_roles: frozenset[str] = frozenset()) -> None:
        """Raise why `change_dependency(cmd)` would be refused, recording nothing."""
        self._changed_dependency(cmd, global_roles)

    def _changed_dependency(self, cmd: Any, global_roles: frozenset[str]) -> Any:
        """The dependency with `cmd` applied and not saved; None when it holds the command already."""
        from domain.dependency import Dependency

        dependency = self._get(as_uuid(cmd.dependency_id, "dependency"), "dependency", Dependency)
        if cmd.command_id and cmd.command_id in dependency.commands:
            return None

        @functools.cache
        def parties() -> Any:
            providing = dependency.providing_project_id
            return self._dependency_parties(self.read_project(dependency.project_id),
                                            self.read_project(providing) if providing else None,
                                            global_roles | frozenset(cmd.actor_roles))

        dependency.handle(cmd, parties)
        return dependency

    def dependency_parties(self, dependency_id: str | UUID, global_roles: frozenset[str] = frozenset()) -> Any:
        """Both projects' members as the dependency's rules see them (for the API's 404 and validators)."""
        from domain.dependency import Dependency

        dependency = self._get(as_uuid(dependency_id, "dependency"), "dependency", Dependency)
        providing = dependency.providing_project_id
        return self._dependency_parties(self.read_project(dependency.project_id),
                                        self.read_project(providing) if providing else None, global_roles)

    def dependency_watch(self, dependency_id: str | UUID) -> Any:
        """What the dependency's watch keeps: its pending deadlines and the clock run they belong to."""
        from domain.dependency import Dependency

        return self._get(as_uuid(dependency_id, "dependency"), "dependency", Dependency).to_watch()

    def dependency_aggregate(self, dependency_id: str | UUID) -> Any:
        """The Dependency aggregate itself, for views that need more than its state (its clock's run)."""
        from domain.dependency import Dependency

        return self._get(as_uuid(dependency_id, "dependency"), "dependency", Dependency)

    def get_dependency(self, dependency_id: str | UUID, as_of: datetime | None = None) -> Any:
        from domain.dependency import Dependency

        uid = as_uuid(dependency_id, "dependency")
        if as_of is None:
            return self._get(uid, "dependency", Dependency).to_state()
        return self.aggregate_as_of(uid, as_of, Dependency, f"dependency {uid}").to_state()

    def dependency_history(self, dependency_id: str | UUID) -> list[dict[str, Any]]:
        from domain.dependency import Dependency

        uid = as_uuid(dependency_id, "dependency")
        events = list(self.events.get(uid))
        if not events or not isinstance(events[0], Dependency.Opened):
            raise NotFound(f"no dependency {dependency_id}")
        return history(events, lambda _: f"dependency-{uid}")

    # ---- webhook deliveries ---------------------------------------------------------------------
    def open_delivery(self, uid: UUID, project_id: str, webhook_id: str, url: str, message: dict[str, Any],
                      run: int = 1, actor: str = SYSTEM_ACTOR) -> dict[str, Any]:
        """The delivery with run `run` under way: made on the first, a retry recorded on a later one.
        Repeating it (a retried activity) changes nothing."""
        from domain.delivery import Delivery

        try:
            delivery = self._get(uid, "delivery", Delivery)
        except NotFound:
            delivery = Delivery.start(uid, project_id, webhook_id, url, message)
        if run > delivery.runs:
            delivery.retry(actor)
        self._save(delivery)
        return delivery.to_state()

    def record_delivery_outcome(self, uid: UUID, run: int, outcome: str, attempts: int, last_status: int | None,
                                error: str = "") -> dict[str, Any]:
        """How run `run` ended, once; a receiver that answered 410 Gone is unsubscribed with it."""
        from domain.delivery import Delivery

        delivery = self._get(uid, "delivery", Delivery)
        delivery.record_outcome(run, outcome, attempts, last_status, error)  # type: ignore[arg-type]
        changed = [delivery]
        if outcome == "unsubscribed":
            project = self.get_project(delivery.project_id)
            project.unsubscribe_webhook(delivery.webhook_id, "the receiver answered 410 Gone")
            changed.append(project)
        self._save(*changed)
        return delivery.to_state()

    def delivery_history(self, uid: str | UUID,
                         workflow_of_run: Callable[[int], str] | None = None) -> list[dict[str, Any]]:
        """Every recorded event of the delivery. Each run of attempts has a workflow of its own, which
        `workflow_of_run(run)` names (workflows/delivery.py knows the ids; the domain does not)."""
        from domain.delivery import Delivery

        events = list(self.events.get(as_uuid(uid, "delivery")))
        if not events or not isinstance(events[0], Delivery.Started):
            raise NotFound(f"no delivery {uid}")
        return history(events, lambda e: workflow_of_run(getattr(e, "run", 1)) if workflow_of_run else None)

    def delivery_aggregate(self, uid: str | UUID) -> Any:
        from domain.delivery import Delivery

        return self._get(as_uuid(uid, "delivery"), "delivery", Delivery)

    def get_delivery(self, uid: str | UUID) -> dict[str, Any]:
        from domain.delivery import Delivery

        return self._get(as_uuid(uid, "delivery"), "delivery", Delivery).to_state()

    @staticmethod
    def _dependency_parties(project: Project, providing: Project | None, global_roles: frozenset[str]) -> Any:
        from domain.dependency_rules import Parties

        return Parties(requesting=project.members, providing=providing.members if providing else None,
                       global_roles=frozenset(global_roles))


def check_not_expired(expires_at: datetime | None) -> None:
    """A command whose caller has stopped waiting is never recorded, however late it arrives."""
    if expires_at is not None and datetime.now(timezone.utc) > expires_at:
        raise CommandExpired("the command came after its caller had stopped waiting for it; nothing was recorded")


def event_time(stored: Any) -> datetime:
    """The time the domain says an event happened (its `at`), which is what states show."""
    at = getattr(stored, "at", None)
    return datetime.fromisoformat(at) if at else stored.timestamp
