"""How many approvals a stage needs and whether it has them: pure arithmetic on people."""


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


def unique(people: list[str]) -> list[str]:
    return list(dict.fromkeys(people))
