"""Domain errors. Each names its kind; the API maps kinds to HTTP statuses, workflows to ApplicationError types."""


class DomainError(Exception):
    kind = "invalid"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class Invalid(DomainError):
    kind = "invalid"

    def __init__(self, detail: str, field: tuple[str | int, ...] = ()):
        super().__init__(detail)
        self.field = field  # which field of the command breaks the rule, where one does


class NotFound(DomainError):
    kind = "not_found"


class Forbidden(DomainError):
    kind = "forbidden"


class Conflict(DomainError):
    kind = "conflict"


class NotEligible(Forbidden):
    pass


class SelfApproval(Forbidden):
    pass


class AlreadyDecided(Conflict):
    pass


class StageClosed(Conflict):
    pass


class ChainFinished(Conflict):
    pass


class StaleRevision(Conflict):
    pass


class ConcurrentChange(Conflict):
    pass


class Unavailable(DomainError):
    """Not done because the system was too slow or the caller left: nothing was recorded; retry."""

    kind = "unavailable"


class CommandExpired(Unavailable):
    pass


class CommandAbandoned(Unavailable):
    pass


class ChainUnavailable(Unavailable):
    """The approval chain did not answer in time (Temporal or its workers down or slow)."""


class CallerGone(Unavailable):
    """The caller stopped waiting (hung up) before the command was answered."""


def error_types() -> dict[str, type[DomainError]]:
    """Every domain error class by name, so a type carried across Temporal can be rebuilt."""
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


class DependencyClosed(Conflict):
    """The dependency is resolved or cancelled: nothing more happens to it."""
