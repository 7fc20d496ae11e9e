"""ISO 8601 durations (`PT4H`, `P2D`) as exact time spans."""

from datetime import timedelta

import isodate

from domain.errors import Invalid


def parse_duration(text: str) -> timedelta:
    try:
        value = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError) as exc:
        raise Invalid(f"{text!r} is not an ISO 8601 duration such as PT4H or P2D") from exc
    if not isinstance(value, timedelta):
        # Years and months have no fixed length; a deadline must.
        raise Invalid(f"{text!r} uses years or months; use days, hours, minutes or seconds")
    if value <= timedelta(0):
        raise Invalid(f"{text!r} must be a positive duration")
    return value
