"""Which calendar-feed token of a user counts: one aggregate per user, in the event store.

A feed token (api/auth.py, scope `feed`) is a JWT good for GET /api/calendar.ics only. Calendar apps
keep its URL for months, so it must be revocable at once on every API replica: the feed reads this
aggregate on every fetch and serves only the token whose id (`jti`) is the current one.

One feed token per user: issuing a new one replaces the old one (the old URL stops working at once),
and revoking leaves none. So "I lost my feed URL" and "my feed URL leaked" have one answer: issue a
new one (or revoke, then issue). The aggregate holds token ids and expiry times, never a token.
"""

from datetime import UTC, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from domain.application import Signoff
from domain.errors import ConcurrentChange


def feed_tokens_id(user: str) -> UUID:
    """One aggregate per user id: two first issues for the same user collide in the store."""
    return uuid5(NAMESPACE_URL, f"signoff:feed-tokens:{user}")


class FeedTokens(Aggregate):
    @event("Created")
    def __init__(self, user: str) -> None:
        self.user = user
        self.current: str | None = None  # the jti of the feed token that counts, if any
        self.expires_at: datetime | None = None

    @classmethod
    def of(cls, user: str) -> "FeedTokens":
        return cls._create(cls.Created, id=feed_tokens_id(user), user=user)

    @event("Issued")
    def issue(self, token_id: str, expires_at: str, at: str) -> None:
        self.current = token_id
        self.expires_at = datetime.fromisoformat(expires_at)

    @event("Revoked")
    def _revoke(self, token_id: str, at: str) -> None:
        self.current = None
        self.expires_at = None

    def revoke(self) -> bool:
        """Revoke the current token; answer whether there was one (revoking none records nothing)."""
        if self.current is None:
            return False
        self._revoke(token_id=self.current, at=datetime.now(UTC).isoformat())
        return True


def _tokens_of(app: Signoff, user: str) -> FeedTokens | None:
    try:
        aggregate = app.repository.get(feed_tokens_id(user))
    except AggregateNotFoundError:
        return None
    return aggregate if isinstance(aggregate, FeedTokens) else None


def record_issued(app: Signoff, user: str, token_id: str, expires_at: datetime) -> None:
    """Make `token_id` the user's one current feed token (the one before it stops counting)."""
    for _ in range(3):  # two issues at the same moment: the later save reads again and wins
        tokens = _tokens_of(app, user) or FeedTokens.of(user)
        tokens.issue(token_id=token_id, expires_at=expires_at.isoformat(), at=datetime.now(UTC).isoformat())
        try:
            app.save(tokens)
            return
        except IntegrityError:
            continue
    raise ConcurrentChange("the feed token was changed by someone else at the same moment; try again")


def record_revoked(app: Signoff, user: str) -> bool:
    """No feed token of the user counts any more; answer whether one did."""
    for _ in range(3):
        tokens = _tokens_of(app, user)
        if tokens is None or not tokens.revoke():
            return False
        try:
            app.save(tokens)
            return True
        except IntegrityError:
            continue
    raise ConcurrentChange("the feed token was changed by someone else at the same moment; try again")


def current_token_id(app: Signoff, user: str) -> str | None:
    """The id of the user's feed token that counts, read from the store now (every replica agrees)."""
    tokens = _tokens_of(app, user)
    return None if tokens is None else tokens.current
