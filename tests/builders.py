"""Realistic test data: an agency project team and the policies it signs off with."""

import hashlib
import uuid
from typing import Any

from domain.application import Signoff
from domain.commands import SubmitDeliverable
from domain.policy_spec import PolicySpec

MEMBERS = [
    {"user": "alice", "roles": ["author"]},
    {"user": "bob", "roles": ["design-lead"]},
    {"user": "carol", "roles": ["eng"]},
    {"user": "dan", "roles": ["eng"]},
    {"user": "erin", "roles": ["eng"]},
    {"user": "pete", "roles": ["pm"]},
    {"user": "paula", "roles": ["pmo"]},
    {"user": "sam", "roles": ["sponsor"]},
]

STANDARD = {
    "stages": [
        {"name": "design", "approvers": {"roles": ["design-lead"]}, "rule": "any"},
        {"name": "engineering", "approvers": {"roles": ["eng"]}, "rule": "n_of_m", "n": 2},
        {"name": "sponsor", "approvers": {"users": ["sam"]}, "rule": "all"},
    ],
    "on_revision": "restart",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def revision(label: str = "v1") -> dict[str, Any]:
    return {"uri": f"https://files.example/mockups-{label}.pdf", "sha256": sha(label), "note": f"cut {label}"}


def make_project(app: Signoff, escalation_path: list[dict[str, Any]] | None = None) -> str:
    project = app.create_project("Northwind website relaunch", MEMBERS, escalation_path or [], [], "paula")
    return str(project.id)


def make_policy(app: Signoff, spec: dict[str, Any] | None = None, name: str | None = None) -> dict[str, Any]:
    checked = PolicySpec.model_validate(spec or STANDARD).model_dump()
    policy, _ = app.put_policy(name or f"policy-{uuid.uuid4().hex[:8]}", checked, "paula")
    return policy


def submission(project_id: str, policy: dict[str, Any], submitter: str = "alice", title: str = "Homepage mockups",
               deliverable_id: str | None = None, **fields: Any) -> SubmitDeliverable:
    """The command that submits a deliverable (its chain's workflow stamps the command id)."""
    return SubmitDeliverable(deliverable_id=deliverable_id or str(uuid.uuid4()), actor=submitter,
                             project_id=project_id, title=title, policy=policy,
                             revision=fields.pop("revision", None) or revision(), **fields)
