"""Pure approval rules, shared by the workflow's validators (cheap, before anything reaches history)
and the aggregate (the record, which checks again)."""

from typing import Any

from domain.commands import Command, Decide, Reassign, SubmitRevision, Withdraw
from domain.deliverable_state import ChainView
from domain.errors import (
    AlreadyDecided,
    ChainFinished,
    Conflict,
    Forbidden,
    Invalid,
    NotEligible,
    SelfApproval,
    StageClosed,
    StaleRevision,
)
from domain.project import GLOBAL_ROLES, roles_by_user
from domain.quorum import required_approvals, satisfiable, stage_passes, unique

__all__ = ["admit", "check", "check_members", "required_approvals", "satisfiable", "stage_passes", "unique"]


def check(view: ChainView, command: Command) -> None:
    """Raise the reason why `command` may not be applied to the chain as `view` shows it; return
    quietly if it may. The workflow's validators and the aggregate both ask this."""
    match command:
        case Decide():
            _check_decision(view, command)
        case SubmitRevision():
            _check_running(view)
            if command.actor != view.submitter:
                raise Forbidden("only the submitter submits new revisions")
            if command.sha256 == view.revision_sha256:
                raise Conflict("this revision has the same sha256 as the current one")
        case Withdraw():
            _check_running(view)
            if command.actor != view.submitter:
                raise Forbidden("only the submitter withdraws a deliverable")
        case Reassign():
            _check_reassignment(view, command)


def admit(command: Command, members: list[dict[str, Any]], actor_roles: frozenset[str]) -> None:
    """What the project says about a command before it goes to the chain: who may ask for it and
    whether the people it names work on the project. The chain's view holds neither, so this is
    asked where the project is at hand (the API, so a refusal never reaches the chain's history);
    the aggregate checks membership again."""
    if isinstance(command, Reassign):
        if not (actor_roles & GLOBAL_ROLES or "pmo" in roles_by_user(members).get(command.actor, set())):
            raise Forbidden("only pmo or admin reassign approvers")
        check_members(command.approvers, members)


def check_members(people: list[str], members: list[dict[str, Any]]) -> None:
    by_user = roles_by_user(members)
    strangers = [p for p in people if p not in by_user]
    if strangers:
        raise Invalid(f"{_people(strangers)} {'is not a member' if len(strangers) == 1 else 'are not members'} "
                      "of this project", ("approvers",))


def _people(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _check_running(view: ChainView) -> None:
    if view.finished:
        raise ChainFinished(f"the chain has ended as {view.status}")


def _check_decision(view: ChainView, command: Decide) -> None:
    actor = command.actor
    if command.verdict in ("reject", "request_changes") and not command.comment.strip():
        raise Invalid(f"a {command.verdict} needs a comment that says why", ("comment",))
    _check_running(view)
    if actor == view.submitter:
        raise SelfApproval("the submitter may not decide on their own deliverable")
    # Before eligibility: a decision on an old revision raced a new one, which may have moved the
    # chain to a stage the actor is not in; the truth is the stale revision, not the stranger.
    if command.revision != view.revision:
        raise StaleRevision(f"revision {command.revision} is not the current revision {view.revision}")
    stage = view.stage
    if stage is None or not stage.open:
        raise StageClosed("no stage is open for decisions; the deliverable waits for a new revision")
    if actor not in stage.approvers and actor not in stage.granted:
        if actor in view.former_approvers:
            raise StageClosed(f"the stage {actor} approves in has closed; {stage.name!r} is open now")
        raise NotEligible(f"{actor} is not an approver of stage {stage.name!r}")
    if actor in stage.decided:
        raise AlreadyDecided(f"{actor} has already decided on stage {stage.name!r}")


def _check_reassignment(view: ChainView, command: Reassign) -> None:
    _check_running(view)
    stage = view.stage
    if stage is None or not stage.open:
        raise StageClosed("no stage is open to reassign")
    if view.submitter in command.approvers:
        raise Forbidden("the submitter may not approve their own deliverable")
    people = unique(command.approvers)
    if not satisfiable(stage.rule, stage.n, people):
        raise Invalid(f"stage {stage.name!r} needs more approvers than {len(people)}", ("approvers",))
