"""The Deliverable aggregate: the record of one approval chain.

Command methods validate first and trigger events only when the command is allowed, so a
refused command records nothing. Each command carries an id; a command already held is a
no-op, which makes at-least-once activities record exactly once.
"""

from datetime import datetime, timezone
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.deadlines import escalation_steps, stage_deadlines
from domain.deliverable_state import ChainView, DeliverableState
from domain.errors import Invalid
from domain.project import resolve_people, roles_by_user
from domain.rules import (
    check_decision,
    check_reassignment,
    check_revision,
    check_withdrawal,
    required_approvals,
    satisfiable,
    stage_passes,
    unique,
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stage_approvers(stage: dict[str, Any], members: list[dict[str, Any]], submitter: str) -> list[str]:
    """The people who approve a stage: its users and the holders of its roles, never the submitter."""
    people = list(stage["approvers"].get("users", []))
    wanted = set(stage["approvers"].get("roles", []))
    people += [user for user, roles in roles_by_user(members).items() if roles & wanted]
    return [p for i, p in enumerate(people) if p != submitter and p not in people[:i]]


def check_policy_fits(policy: dict[str, Any], members: list[dict[str, Any]], submitter: str) -> None:
    """Refuse a chain that could never finish, or whose approvers could never see it: a stage with
    fewer approvers than its rule needs, or an approver named by user id who is not on the project.
    (Escalation names that match nobody on the project simply notify nobody.)"""
    by_user = roles_by_user(members)
    for stage in policy["stages"]:
        strangers = [u for u in stage["approvers"].get("users", []) if u not in by_user]
        if strangers:
            # Not who they are: the submitter may not be allowed to read the policy's user ids.
            raise Invalid(f"stage {stage['name']!r} names {len(unique(strangers))} approver(s) by user id who "
                          "are not members of this project; ask pmo to add them or use another policy")
        approvers = stage_approvers(stage, members, submitter)
        if not satisfiable(stage["rule"], stage.get("n"), approvers):
            raise Invalid(
                f"stage {stage['name']!r} cannot be satisfied on this project: it needs "
                f"{stage.get('n') or 1} approver(s) other than the submitter and has {len(approvers)}")


def role_holders(roles: list[str], members: list[dict[str, Any]]) -> list[str]:
    wanted = set(roles)
    return [user for user, held in roles_by_user(members).items() if held & wanted]


class Deliverable(Aggregate):
    # ---- creation -------------------------------------------------------------------------
    @event("Submitted")
    def __init__(self, project_id: str, title: str, submitter: str, policy: dict[str, Any],
                 escalation_path: list[dict[str, Any]], revision: dict[str, Any], command_id: str,
                 at: str) -> None:
        self.project_id = project_id
        self.title = title
        self.submitter = submitter
        self.policy = policy
        self.escalation_path = escalation_path
        self.status = "in_review"
        self.revisions = [{**revision, "number": 1, "submitted_by": submitter, "submitted_at": at}]
        self.stage: dict[str, Any] | None = None
        self.decisions: list[dict[str, Any]] = []
        self.escalations: list[dict[str, Any]] = []
        self.closed_stages: dict[int, list[str]] = {}
        self.commands = {command_id}
        self.created_at = at
        self.updated_at = at

    @classmethod
    def submit(cls, deliverable_id: Any, project_id: str, title: str, submitter: str,
               policy: dict[str, Any], members: list[dict[str, Any]], escalation_path: list[dict[str, Any]],
               revision: dict[str, Any], command_id: str) -> "Deliverable":
        check_policy_fits(policy, members, submitter)
        at = utcnow().isoformat()
        deliverable = cls._create(cls.Submitted, id=deliverable_id, project_id=project_id, title=title,
                                  submitter=submitter, policy=policy, escalation_path=escalation_path,
                                  revision=revision, command_id=command_id, at=at)
        deliverable._open_stage(0, members, submitter)
        return deliverable

    # ---- commands ---------------------------------------------------------------------------
    def decide(self, actor: str, verdict: str, comment: str, revision: int, command_id: str,
               members: list[dict[str, Any]]) -> None:
        if command_id in self.commands:
            return
        check_decision(self.to_view(), actor, revision, verdict, comment)
        stage = self.stage
        assert stage is not None
        granted_only = actor in stage["granted"] and actor not in stage["approvers"]
        stalled = [p for p in stage["approvers"] if p not in stage["decided"]] if granted_only else []
        self._record_decision(actor=actor, on_behalf_of=stalled, verdict=verdict, comment=comment,
                              revision=revision, stage_index=stage["index"], command_id=command_id,
                              at=utcnow().isoformat())
        if verdict == "reject":
            self._reject(actor=actor, at=utcnow().isoformat())
        elif verdict == "request_changes":
            self._request_changes(stage_index=stage["index"], actor=actor, at=utcnow().isoformat())
        elif granted_only or stage_passes(stage["rule"], stage.get("n"), stage["approvers"], stage["approvals"]):
            self._advance(members, actor)

    def submit_revision(self, actor: str, uri: str, sha256: str, note: str, command_id: str,
                        members: list[dict[str, Any]]) -> None:
        if command_id in self.commands:
            return
        check_revision(self.to_view(), actor, sha256)
        self._record_revision(number=len(self.revisions) + 1, uri=uri, sha256=sha256, note=note,
                              actor=actor, command_id=command_id, at=utcnow().isoformat())
        stage_index = self.stage["index"] if self.stage else 0
        resume = self.policy["on_revision"] == "resume" and self.status == "changes_requested"
        self._open_stage(stage_index if resume else 0, members, actor)

    def withdraw(self, actor: str, reason: str, command_id: str) -> None:
        if command_id in self.commands:
            return
        check_withdrawal(self.to_view(), actor)
        self._withdraw(actor=actor, reason=reason, command_id=command_id, at=utcnow().isoformat())

    def reassign(self, actor: str, approvers: list[str], reason: str, command_id: str,
                 members: list[dict[str, Any]]) -> None:
        if command_id in self.commands:
            return
        check_reassignment(self.to_view(), approvers)
        strangers = [p for p in approvers if p not in roles_by_user(members)]
        if strangers:
            raise Invalid(f"{', '.join(strangers)} is not a member of this project")
        people, stage = unique(approvers), self.stage
        assert stage is not None
        self._reassign(stage_index=stage["index"], approvers=people, actor=actor, reason=reason,
                       command_id=command_id, at=utcnow().isoformat())
        if stage_passes(stage["rule"], stage.get("n"), stage["approvers"], stage["approvals"]):
            self._advance(members, actor)

    def fire_deadline(self, stage_index: int, opened_at: str, kind: str, level: int, command_id: str,
                      members: list[dict[str, Any]]) -> None:
        """A stage deadline fell due: remind, escalate or mark the SLA breached, once."""
        if command_id in self.commands:
            return
        stage = self.stage
        if (stage is None or not stage["open"] or stage["index"] != stage_index
                or stage["opened_at"] != opened_at):
            return  # the stage moved on before the timer fired: nothing is due any more
        deadline = next((d for d in stage["deadlines"] if d["kind"] == kind and d["level"] == level), None)
        if deadline is None or deadline["done"]:
            return
        at = utcnow().isoformat()
        if kind == "reminder":
            self._remind(stage_index=stage_index, level=level, to=self._waiting_on(), command_id=command_id, at=at)
        elif kind == "sla":
            self._breach_sla(stage_index=stage_index, command_id=command_id, at=at)
        else:
            step = escalation_steps(self.policy["stages"][stage_index], self.escalation_path)[level - 1]
            notified = resolve_people(step.get("notify", []), members)
            granted = [p for p in role_holders(step.get("grant", []), members) if p != self.submitter]
            self._escalate(stage_index=stage_index, level=level, notified=notified, granted=granted,
                           command_id=command_id, at=at)

    # ---- internal transitions -----------------------------------------------------------------
    def _advance(self, members: list[dict[str, Any]], actor: str) -> None:
        assert self.stage is not None
        index = self.stage["index"]
        self._pass_stage(stage_index=index, actor=actor, at=utcnow().isoformat())
        if index + 1 < len(self.policy["stages"]):
            self._open_stage(index + 1, members, actor)
        else:
            self._approve(actor=actor, at=utcnow().isoformat())

    def _open_stage(self, index: int, members: list[dict[str, Any]], actor: str) -> None:
        spec = self.policy["stages"][index]
        opened = utcnow()
        self._record_stage_opened(index=index, approvers=stage_approvers(spec, members, self.submitter),
                                  deadlines=stage_deadlines(spec, self.escalation_path, opened),
                                  actor=actor, at=opened.isoformat())

    def _waiting_on(self) -> list[str]:
        if self.stage is None or not self.stage["open"]:
            return []
        people = self.stage["approvers"] + self.stage["granted"]
        return [p for i, p in enumerate(people) if p not in self.stage["decided"] and p not in people[:i]]

    # ---- events -----------------------------------------------------------------------------
    @event("StageOpened")
    def _record_stage_opened(self, index: int, approvers: list[str], deadlines: list[dict[str, Any]], actor: str,
                             at: str) -> None:
        spec = self.policy["stages"][index]
        # Stages from this one on are open again (a restart or resume): their people are current.
        self.closed_stages = {i: people for i, people in self.closed_stages.items() if i < index}
        self.status = "in_review"
        self.stage = {"index": index, "name": spec["name"], "rule": spec["rule"], "n": spec.get("n"),
                      "open": True, "approvers": approvers, "granted": [], "approvals": [], "decided": [],
                      "escalation_level": 0, "opened_at": at, "deadlines": [dict(d) for d in deadlines]}
        self.updated_at = at

    @event("DecisionRecorded")
    def _record_decision(self, actor: str, on_behalf_of: list[str], verdict: str, comment: str, revision: int,
                         stage_index: int, command_id: str, at: str) -> None:
        assert self.stage is not None
        self.stage["decided"].append(actor)
        if verdict == "approve":
            self.stage["approvals"].append(actor)
        self.decisions.append({"actor": actor, "on_behalf_of": on_behalf_of, "verdict": verdict,
                               "comment": comment, "revision": revision, "stage_index": stage_index,
                               "stage_name": self.stage["name"], "at": at})
        self.commands.add(command_id)
        self.updated_at = at

    @event("StagePassed")
    def _pass_stage(self, stage_index: int, actor: str, at: str) -> None:
        assert self.stage is not None
        self.stage["open"] = False
        self.closed_stages[stage_index] = self.stage["approvers"] + self.stage["granted"]
        self.updated_at = at

    @event("Approved")
    def _approve(self, actor: str, at: str) -> None:
        self.status = "approved"
        self.stage = None
        self.updated_at = at

    @event("Rejected")
    def _reject(self, actor: str, at: str) -> None:
        self.status = "rejected"
        self.stage = None
        self.updated_at = at

    @event("ChangesRequested")
    def _request_changes(self, stage_index: int, actor: str, at: str) -> None:
        assert self.stage is not None
        self.status = "changes_requested"
        self.stage["open"] = False
        self.updated_at = at

    @event("RevisionSubmitted")
    def _record_revision(self, number: int, uri: str, sha256: str, note: str, actor: str, command_id: str,
                         at: str) -> None:
        self.revisions.append({"number": number, "uri": uri, "sha256": sha256, "note": note,
                               "submitted_by": actor, "submitted_at": at})
        self.commands.add(command_id)
        self.updated_at = at

    @event("Withdrawn")
    def _withdraw(self, actor: str, reason: str, command_id: str, at: str) -> None:
        self.status = "withdrawn"
        self.stage = None
        self.commands.add(command_id)
        self.updated_at = at

    @event("Reassigned")
    def _reassign(self, stage_index: int, approvers: list[str], actor: str, reason: str, command_id: str,
                  at: str) -> None:
        assert self.stage is not None
        self.stage["approvers"] = approvers
        self.commands.add(command_id)
        self.updated_at = at

    @event("ReminderSent")
    def _remind(self, stage_index: int, level: int, to: list[str], command_id: str, at: str) -> None:
        self._mark_done("reminder", level)
        self.commands.add(command_id)
        self.updated_at = at

    @event("SlaBreached")
    def _breach_sla(self, stage_index: int, command_id: str, at: str) -> None:
        self._mark_done("sla", 0)
        self.commands.add(command_id)
        self.updated_at = at

    @event("Escalated")
    def _escalate(self, stage_index: int, level: int, notified: list[str], granted: list[str], command_id: str,
                  at: str) -> None:
        assert self.stage is not None
        self._mark_done("escalation", level)
        self.stage["escalation_level"] = level
        self.stage["granted"] += [p for p in granted if p not in self.stage["granted"]]
        self.escalations.append({"stage_index": stage_index, "stage_name": self.stage["name"], "level": level,
                                 "notified": notified, "granted": granted, "at": at})
        self.commands.add(command_id)
        self.updated_at = at

    def _mark_done(self, kind: str, level: int) -> None:
        assert self.stage is not None
        for deadline in self.stage["deadlines"]:
            if deadline["kind"] == kind and deadline["level"] == level:
                deadline["done"] = True

    # ---- reading ----------------------------------------------------------------------------
    def to_state(self) -> DeliverableState:
        return DeliverableState.model_validate({
            "id": str(self.id), "project_id": self.project_id, "title": self.title, "submitter": self.submitter,
            "policy": {"name": self.policy["name"], "version": self.policy["version"],
                       "on_revision": self.policy["on_revision"]},
            "status": self.status, "revision": len(self.revisions), "revisions": self.revisions,
            "stage": self._stage_view(), "stages": [s["name"] for s in self.policy["stages"]],
            "decisions": self.decisions, "escalations": self.escalations,
            "created_at": self.created_at, "updated_at": self.updated_at, "version": self.version,
        })

    def to_view(self) -> ChainView:
        former = unique([p for people in self.closed_stages.values() for p in people])
        return ChainView.model_validate({
            "id": str(self.id), "submitter": self.submitter, "status": self.status, "revision": len(self.revisions),
            "revision_sha256": self.revisions[-1]["sha256"], "stage": self._stage_view(),
            "former_approvers": former, "version": self.version,
        })

    def _stage_view(self) -> dict[str, Any] | None:
        if self.stage is None:
            return None
        s = self.stage
        sla = next((d["due_at"] for d in s["deadlines"] if d["kind"] == "sla"), None)
        return {**s, "required": _required(s), "waiting_on": self._waiting_on(), "sla_due_at": sla}


def _required(stage: dict[str, Any]) -> int:
    return required_approvals(stage["rule"], stage.get("n"), len(stage["approvers"]))
