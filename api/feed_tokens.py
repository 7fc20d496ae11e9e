"""Feed tokens: issuing one (for POST /api/me/feed-token and `signoff token USER --feed`) and keeping
them out of logs.

A feed token travels in the feed's URL (`?token=`), because calendar apps cannot send headers. So
the URL is a secret: the access log shows the path with `token=[redacted]`, and the metrics label a
request by its route template, never its query (api/metrics.py).
"""

import logging
import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from api.auth import FEED_MAX_TTL, mint_feed_token
from config.settings import Settings
from domain.application import Signoff
from domain.feed_token import record_issued

FEED_PATH = "/api/calendar.ics"
TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)


def feed_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url()}{FEED_PATH}?{urlencode({'token': token})}"


def issue_feed_token(store: Signoff, settings: Settings, user: str,
                     ttl: timedelta = FEED_MAX_TTL) -> dict[str, Any]:
    """Mint a feed token for `user` and make it their current one (the one before stops counting)."""
    token, token_id, expires_at = mint_feed_token(settings.jwt_secret, user, ttl, issuer=settings.jwt_issuer,
                                                  audience=settings.jwt_audience)
    record_issued(store, user, token_id, expires_at)
    return {"token": token, "url": feed_url(settings, token), "expires_at": expires_at}


def redact(text: str) -> str:
    return TOKEN_IN_QUERY.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """Blanks every `token=` query parameter in a log record (uvicorn's access log puts the path with
    its query string in the record's args)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def redact_access_log() -> None:
    """Install RedactTokens on uvicorn's access logger, once per process (after uvicorn configured it)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
