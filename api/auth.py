"""Bearer JWTs: HS256, `sub` is the user id, `roles` the global roles (`admin`, `pmo`).

Every token also names its issuer (`iss`) and audience (`aud`), so a token minted with the same
secret for another service is refused, and carries `iat` and `exp` no further apart than the
maximum lifetime, so a leaked token cannot live for years.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import jwt

from config.settings import JWT_AUDIENCE, JWT_ISSUER, JWT_MAX_TTL_MINUTES
from domain.project import GLOBAL_ROLES

ALGORITHM = "HS256"
MAX_TTL = timedelta(minutes=JWT_MAX_TTL_MINUTES)
# Clocks of the minting and the reading machine may differ a little.
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_pmo_or_admin(self) -> bool:
        return bool(self.roles & GLOBAL_ROLES)


class InvalidToken(Exception):
    pass


def mint_token(secret: str, user: str, roles: list[str] | tuple[str, ...] = (), ttl: timedelta = timedelta(hours=8),
               *, issuer: str = JWT_ISSUER, audience: str = JWT_AUDIENCE, max_ttl: timedelta = MAX_TTL) -> str:
    if ttl > max_ttl:
        raise ValueError(f"a token may live at most {max_ttl}")
    now = datetime.now(timezone.utc)
    claims = {"sub": user, "roles": sorted(set(roles)), "iss": issuer, "aud": audience, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


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
    now = datetime.now(timezone.utc).timestamp()
    limit = max_ttl.total_seconds()
    # Both: a long-lived token is refused even when it claims a recent iat.
    if expires - issued > limit or expires > now + limit + CLOCK_SKEW.total_seconds():
        raise InvalidToken(f"token lifetime exceeds the maximum of {max_ttl}")
    user, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(user, str) or not user or not isinstance(roles, list):
        raise InvalidToken("token has no usable sub/roles")
    return Principal(user=user, roles=frozenset(str(r) for r in roles))
