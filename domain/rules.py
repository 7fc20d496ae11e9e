"""Pure approval rules, shared by the workflow's validators (cheap, before anything reaches history)
and the aggregate (the record, which checks again)."""

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


def required_approvals(rule: str, n: int | None, approver_count: int) -> int:
    if rule == "any":
        return 1
    if rule == "n_of_m":
        return n or 1
    return max(approver_count, 1)


def stage_passes(rule: str, n: int | None, approvers: list[str], approvals: list[str]) -> bool:
    counted = [person for person in approvals if person in approvers]
    if rule == "all":
        return bool(approvers) and set(approvers) <= set(counted)
    return len(counted) >= required_approvals(rule, n, len(approvers))


def satisfiable(rule: str, n: int | None, approvers: list[str]) -> bool:
    return len(approvers) >= required_approvals(rule, n, len(approvers))


def check_running(view: ChainView) -> None:
    if view.finished:
        raise ChainFinished(f"the chain has ended as {view.status}")


def check_decision(view: ChainView, actor: str, revision: int, verdict: str = "approve", comment: str = "") -> None:
    """Raise the reason why `actor` may not decide now; return quietly if they may."""
    if verdict in ("reject", "request_changes") and not comment.strip():
        raise Invalid(f"a {verdict} needs a comment that says why")
    check_running(view)
    if actor == view.submitter:
        raise SelfApproval("the submitter may not decide on their own deliverable")
    # Before eligibility: a decision on an old revision raced a new one, which may have moved the
    # chain to a stage the actor is not in; the truth is the stale revision, not the stranger.
    if revision != view.revision:
        raise StaleRevision(f"revision {revision} is not the current revision {view.revision}")
    stage = view.stage
    if stage is None or not stage.open:
        raise StageClosed("no stage is open for decisions; the deliverable waits for a new revision")
    if actor not in stage.approvers and actor not in stage.granted:
        if actor in view.former_approvers:
            raise StageClosed(f"the stage {actor} approves in has closed; {stage.name!r} is open now")
        raise NotEligible(f"{actor} is not an approver of stage {stage.name!r}")
    if actor in stage.decided:
        raise AlreadyDecided(f"{actor} has already decided on stage {stage.name!r}")


def check_revision(view: ChainView, actor: str, sha256: str) -> None:
    check_running(view)
    if actor != view.submitter:
        raise Forbidden("only the submitter submits new revisions")
    if sha256 == view.revision_sha256:
        raise Conflict("this revision has the same sha256 as the current one")


def check_withdrawal(view: ChainView, actor: str) -> None:
    check_running(view)
    if actor != view.submitter:
        raise Forbidden("only the submitter withdraws a deliverable")


def check_reassignment(view: ChainView, approvers: list[str]) -> None:
    check_running(view)
    stage = view.stage
    if stage is None or not stage.open:
        raise StageClosed("no stage is open to reassign")
    if view.submitter in approvers:
        raise Forbidden("the submitter may not approve their own deliverable")
    if not satisfiable(stage.rule, stage.n, unique(approvers)):
        raise Invalid(f"stage {stage.name!r} needs more approvers than {len(unique(approvers))}")


def unique(people: list[str]) -> list[str]:
    return list(dict.fromkeys(people))
