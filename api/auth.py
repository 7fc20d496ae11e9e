"""Bearer JWTs: HS256, `sub` is the user id, `roles` the global roles (`admin`, `pmo`).

Every token also names its issuer (`iss`) and audience (`aud`), so a token minted with the same
secret for another service is refused, and carries `iat` and `exp` no further apart than the
maximum lifetime, so a leaked token cannot live for years.

A feed token (`"scope": "feed"`, with a `jti`) is good for the calendar feed only: the API answers
403 to it anywhere else (api/deps.py), and the feed serves it only while its `jti` is the user's
current one in the event store (domain/feed_token.py), so revoking it works at once. It carries no
roles, and may live longer than a bearer token (calendar apps keep a feed URL for months), up to
FEED_MAX_TTL.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt

from config.settings import JWT_AUDIENCE, JWT_ISSUER, JWT_MAX_TTL_MINUTES
from domain.project import GLOBAL_ROLES

ALGORITHM = "HS256"
MAX_TTL = timedelta(minutes=JWT_MAX_TTL_MINUTES)
# Clocks of the minting and the reading machine may differ a little.
CLOCK_SKEW = timedelta(seconds=60)
# The only scope there is; a token without one is an ordinary bearer token.
FEED_SCOPE = "feed"
FEED_MAX_TTL = timedelta(days=90)


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[str] = field(default_factory=frozenset)
    scope: str | None = None  # "feed" for a feed token, None for a bearer token good everywhere
    token_id: str | None = None  # the token's jti (feed tokens always have one)

    @property
    def is_feed_token(self) -> bool:
        return self.scope == FEED_SCOPE

    @property
    def is_pmo_or_admin(self) -> bool:
        return bool(self.roles & GLOBAL_ROLES)


class InvalidToken(Exception):
    pass


def mint_token(secret: str, user: str, roles: list[str] | tuple[str, ...] = (), ttl: timedelta = timedelta(hours=8),
               *, issuer: str = JWT_ISSUER, audience: str = JWT_AUDIENCE, max_ttl: timedelta = MAX_TTL) -> str:
    if ttl > max_ttl:
        raise ValueError(f"a token may live at most {max_ttl}")
    now = datetime.now(UTC)
    claims = {"sub": user, "roles": sorted(set(roles)), "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def mint_feed_token(secret: str, user: str, ttl: timedelta = FEED_MAX_TTL, *, issuer: str = JWT_ISSUER,
                    audience: str = JWT_AUDIENCE) -> tuple[str, str, datetime]:
    """A token good for the calendar feed only: answer it, its id (jti) and when it expires. It counts
    only once its id is recorded as the user's current one (domain/feed_token.py)."""
    if ttl > FEED_MAX_TTL:
        raise ValueError(f"a feed token may live at most {FEED_MAX_TTL}")
    now = datetime.now(UTC)
    token_id, expires = uuid.uuid4().hex, now + ttl
    claims = {"sub": user, "roles": [], "scope": FEED_SCOPE, "jti": token_id, "iss": issuer, "aud": audience,
              "iat": now, "exp": expires}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), token_id, expires


def read_token(secret: str, token: str, *, issuer: str = JWT_ISSUER, audience: str = JWT_AUDIENCE,
               max_ttl: timedelta = MAX_TTL) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=issuer, audience=audience,
                            options={"require": ["sub", "iss", "aud", "iat", "exp"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    issued, expires = claims["iat"], claims["exp"]
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise InvalidToken("iat and exp must be numeric dates")
    scope, token_id = claims.get("scope"), claims.get("jti")
    if scope not in (None, FEED_SCOPE):
        raise InvalidToken(f"unknown token scope {scope!r}")
    if scope == FEED_SCOPE and (not isinstance(token_id, str) or not token_id or claims.get("roles")):
        raise InvalidToken("a feed token needs a jti and carries no roles")
    now = datetime.now(UTC).timestamp()
    limit = (FEED_MAX_TTL if scope == FEED_SCOPE else max_ttl).total_seconds()
    # Both: a long-lived token is refused even when it claims a recent iat.
    if expires - issued > limit or expires > now + limit + CLOCK_SKEW.total_seconds():
        raise InvalidToken(f"token lifetime exceeds the maximum of {FEED_MAX_TTL if scope else max_ttl}")
    user, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(user, str) or not user or not isinstance(roles, list):
        raise InvalidToken("token has no usable sub/roles")
    return Principal(user=user, roles=frozenset(str(r) for r in roles), scope=scope,
                     token_id=token_id if isinstance(token_id, str) else None)
