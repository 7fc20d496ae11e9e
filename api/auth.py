"""Bearer JWTs: HS256, `sub` is the user id, `roles` the global roles (`admin`, `pmo`)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import jwt

ALGORITHM = "HS256"
GLOBAL_ROLES = frozenset({"admin", "pmo"})


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_pmo_or_admin(self) -> bool:
        return bool(self.roles & GLOBAL_ROLES)


class InvalidToken(Exception):
    pass


def mint_token(secret: str, user: str, roles: list[str] | tuple[str, ...] = (), ttl: timedelta = timedelta(hours=8)) -> str:
    now = datetime.now(timezone.utc)
    claims = {"sub": user, "roles": sorted(set(roles)), "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    user, roles = claims.get("sub"), claims.get("roles", [])
    if not isinstance(user, str) or not user or not isinstance(roles, list):
        raise InvalidToken("token has no usable sub/roles")
    return Principal(user=user, roles=frozenset(str(r) for r in roles))
