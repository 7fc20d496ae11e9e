"""ISO 8601 durations (`PT4H`, `P2D`) as exact time spans, at most five years long."""

from datetime import timedelta
from functools import lru_cache

import isodate

from domain.bounds import MAX_DURATION, MAX_DURATION_CHARS
from domain.errors import Invalid


def parse_duration(text: str) -> timedelta:
    if not isinstance(text, str) or len(text) > MAX_DURATION_CHARS:  # isodate need not parse megabytes
        raise Invalid(f"a duration is at most {MAX_DURATION_CHARS} characters, such as PT4H or P2D")
    return _parsed(text)


# Policies name a handful of durations and every stage opening counts them again (a what-if over
# 10,000 deliverables, thousands of times): isodate's parse is the slow part, its answer immutable.
# A refused text raises each time (exceptions are not kept).
@lru_cache(maxsize=1024)
def _parsed(text: str) -> timedelta:
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        # OverflowError: more days than a timedelta holds (P9999999999D)
        message = ("is longer than 5 years (P1825D)" if isinstance(exc, OverflowError)
                   else "is not an ISO 8601 duration such as PT4H or P2D")
        raise Invalid(f"{text!r} {message}") from exc
    if not isinstance(value, timedelta):
        # Years and months have no fixed length; a deadline must.
        raise Invalid(f"{text!r} uses years or months; use days, hours, minutes or seconds")
    if value <= timedelta(0):
        raise Invalid(f"{text!r} must be a positive duration")
    if value > MAX_DURATION:
        # A deadline must stay within datetime arithmetic, and a longer one is a typo.
        raise Invalid(f"{text!r} is longer than 5 years (P1825D)")
    return value
