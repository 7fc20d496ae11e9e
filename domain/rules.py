"""Pure approval rules, shared by the workflow (cheap validation) and the aggregate (the record)."""

from domain.errors import Invalid, AlreadyDecided, ChainFinished, NotEligible, SelfApproval, StageClosed, StaleRevision
from domain.state import DeliverableState


def required_approvals(rule: str, n: int | None, approver_count: int) -> int:
    if rule == "any":
        return 1
    if rule == "n_of_m":
        return n or 1
    return max(approver_count, 1)


def check_decision(state: DeliverableState, actor: str, revision: int, verdict: str = "approve",
                   comment: str = "") -> None:
    """Raise the reason why `actor` may not decide now; return quietly if they may."""
    if verdict in ("reject", "request_changes") and not comment.strip():
        raise Invalid(f"a {verdict} needs a comment that says why")
    if state.finished:
        raise ChainFinished(f"the chain has ended as {state.status}")
    if actor == state.submitter:
        raise SelfApproval("the submitter may not decide on their own deliverable")
    stage = state.stage
    if stage is None or not stage.open:
        raise StageClosed("no stage is open for decisions; the deliverable waits for a new revision")
    if actor not in stage.approvers and actor not in stage.granted:
        if actor in state.former_approvers:
            raise StageClosed(f"the stage {actor} approves in has closed; {stage.name!r} is open now")
        raise NotEligible(f"{actor} is not an approver of stage {stage.name!r}")
    if revision != state.revision:
        raise StaleRevision(f"revision {revision} is not the current revision {state.revision}")
    if actor in stage.decided:
        raise AlreadyDecided(f"{actor} has already decided on stage {stage.name!r}")


def stage_passes(rule: str, n: int | None, approvers: list[str], approvals: list[str]) -> bool:
    counted = [person for person in approvals if person in approvers]
    if rule == "all":
        return bool(approvers) and set(approvers) <= set(counted)
    return len(counted) >= required_approvals(rule, n, len(approvers))


def satisfiable(rule: str, n: int | None, approvers: list[str]) -> bool:
    return len(approvers) >= required_approvals(rule, n, len(approvers))
