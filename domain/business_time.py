"""Business time: when a duration that counts only working time runs out. Pure, so a workflow may call it.

`add(start, duration, calendar)` is the whole of it; `before(end, duration, calendar)` counts back
(a reminder `P1D` before a due date) as its inverse. Without a calendar a duration is wall time, as
every deadline was before calendars. With one:

- Working time is each working day's working hours in the calendar's time zone, the end included
  (a moment at 17:00 is the end of the day's work, the same working moment as 09:00 the next
  working day). A working day is a day of `working_days` that is not a public holiday.
- A start outside working time counts from the next working moment.
- The day part of an ISO 8601 duration counts working days: `P1D` is the same local clock time on
  the next working day, `P1W` as many working days as the calendar has in a week. Days are whole.
- The time part counts working time: `PT4H` is four hours of working hours, in elapsed time (a window
  that a DST change shortens holds that much less).
- A mixed duration (`P1DT2H`) adds its days first, then its time.
- A `timedelta` has no day part: all of it is working time (`timedelta(days=1)` is 24 working hours,
  three 8-hour working days). Only an ISO string can say "working days".
- A zero duration returns the start as it is, in working time or not.

The arithmetic runs on the calendar's local dates and clock times with zoneinfo and compares and
subtracts only in UTC (two datetimes sharing a tzinfo subtract as wall clocks, wrong across DST).
The result is always in UTC.

One edge is left as PEP 495 has it: a clock time that a DST gap skips on the target day (working
hours that span 02:00-03:00 in Europe) resolves to as far after the gap as the time was into it.
"""

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import isodate

from domain.calendar import Calendar
from domain.durations import parse_duration
from domain.errors import Invalid

# Longer than any walk a sensible calendar needs (P1825D on one working day a week is 35 years);
# a calendar of one working minute a week would walk for ever on PT1000H.
MAX_WALK_DAYS = 100 * 366
_ONE_DAY = timedelta(days=1)


def add(start: datetime, duration: timedelta | str, calendar: Calendar | None) -> datetime:
    """The moment `duration` after `start`: in working time on `calendar`, in wall time without one."""
    if start.tzinfo is None or start.utcoffset() is None:
        raise Invalid(f"{start.isoformat()} has no time zone; business time needs an aware datetime")
    start = start.astimezone(UTC)
    if calendar is None:
        return start + (parse_duration(duration) if isinstance(duration, str) else _nonnegative(duration))
    days, working_time = split(duration, calendar)
    if days == 0 and working_time == timedelta(0):
        return start
    moment = next_working_moment(start, calendar)
    if days:
        moment = _add_days(moment, days, calendar)
    if working_time:
        moment = _add_working_time(moment, working_time, calendar)
    return moment


def before(end: datetime, duration: timedelta | str, calendar: Calendar | None) -> datetime:
    """The latest moment from which `duration` runs out no later than `end`: `add` counted back.

    Without a calendar, `end - duration`. With one, the largest `s` with `add(s, duration) <= end`
    (to the microsecond), found by bisection, since `add` never decreases as its start moves on.
    """
    if end.tzinfo is None or end.utcoffset() is None:
        raise Invalid(f"{end.isoformat()} has no time zone; business time needs an aware datetime")
    end = end.astimezone(UTC)
    if calendar is None:
        return end - (parse_duration(duration) if isinstance(duration, str) else _nonnegative(duration))
    days, working_time = split(duration, calendar)
    if days == 0 and working_time == timedelta(0):
        return end

    def in_time(start: datetime) -> bool:
        return add(start, duration, calendar) <= end

    # Far enough back: working time never runs faster than the wall clock, so double until it fits.
    gap = max(working_time + days * _ONE_DAY, _ONE_DAY)
    while not in_time(end - gap):
        gap *= 2
        if gap > MAX_WALK_DAYS * _ONE_DAY:
            raise _no_working_days(calendar)
    # Offsets back from `end`: from `end - late` the duration runs out after `end`, from `end - fits` not.
    late, fits = 0, _microseconds(gap)
    while fits - late > 1:
        middle = (fits + late) // 2
        if in_time(end - timedelta(microseconds=middle)):
            fits = middle
        else:
            late = middle
    return end - timedelta(microseconds=fits)


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


def split(duration: timedelta | str, calendar: Calendar) -> tuple[int, timedelta]:
    """A duration's working days and its working time.

    A string must first be a duration `parse_duration` takes (positive, no years or months, at most
    five years); then its date part (before `T`) counts whole weeks and days, and its time part
    (after `T`) is the working time. A `timedelta` is all working time.
    """
    if not isinstance(duration, str):
        return 0, _nonnegative(duration)
    parse_duration(duration)  # every rule a duration keeps, and its message when it breaks one
    date_part, _, time_part = duration[1:].partition("T")
    parts = re.fullmatch(r"(?:([0-9]+)W)?(?:([0-9]+)D)?", date_part)
    if parts is None:
        raise Invalid(f"{duration!r}: working days and weeks are whole; say part of a day in hours (PT4H)")
    weeks, days = (int(group or 0) for group in parts.groups())
    working_time = isodate.parse_duration("PT" + time_part) if time_part else timedelta(0)
    return weeks * len(calendar.working_days) + days, working_time


def is_working_time(moment: datetime, calendar: Calendar) -> bool:
    """Whether `moment` (aware) falls within a working day's working hours, their end included."""
    moment = moment.astimezone(UTC)
    return any(start <= moment <= end for start, end in _windows(calendar, _local_day(moment, calendar) - _ONE_DAY,
                                                                 last=_local_day(moment, calendar)))


def next_working_moment(moment: datetime, calendar: Calendar) -> datetime:
    """`moment` itself when it is in working time, else the start of the next working hours (UTC)."""
    moment = moment.astimezone(UTC)
    for start, end in _windows(calendar, _local_day(moment, calendar) - _ONE_DAY):
        if moment < start:
            return start
        if moment <= end:
            return moment
    raise AssertionError("unreachable: _windows ends by raising")


def _add_days(moment: datetime, days: int, calendar: Calendar) -> datetime:
    # `moment` is in working time: keep its local clock time (and fold), move its date on.
    local = moment.astimezone(calendar.zone)
    day = local.date()
    for _ in range(MAX_WALK_DAYS):
        day += _ONE_DAY
        if calendar.is_working_day(day):
            days -= 1
            if days == 0:
                return datetime.combine(day, local.time(), tzinfo=calendar.zone).astimezone(UTC)
    raise _no_working_days(calendar)


def _add_working_time(moment: datetime, remaining: timedelta, calendar: Calendar) -> datetime:
    for start, end in _windows(calendar, _local_day(moment, calendar) - _ONE_DAY):
        if end < moment:
            continue
        begin = max(moment, start)
        if remaining <= end - begin:
            return begin + remaining
        remaining -= end - begin
    raise AssertionError("unreachable: _windows ends by raising")


def _windows(calendar: Calendar, first: date, last: date | None = None) -> Iterator[tuple[datetime, datetime]]:
    """Each working day's working hours from `first` on, as UTC (start, end); empty ones left out."""
    day = first
    for _ in range(MAX_WALK_DAYS):
        if last is not None and day > last:
            return
        if calendar.is_working_day(day):
            start, end = (edge.astimezone(UTC) for edge in calendar.window(day))
            if start < end:
                yield start, end
        day += _ONE_DAY
    raise _no_working_days(calendar)


def _local_day(moment: datetime, calendar: Calendar) -> date:
    return moment.astimezone(calendar.zone).date()


def _nonnegative(duration: timedelta) -> timedelta:
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise Invalid(f"{duration!r} is not a duration of zero or more")
    return duration


def _no_working_days(calendar: Calendar) -> Invalid:
    return Invalid(f"the duration runs out more than {MAX_WALK_DAYS // 366} years later on this calendar "
                   f"({', '.join(calendar.working_days)}, {'-'.join(calendar.working_hours)})")
