"""Business time (domain/business_time.py) on business calendars (domain/calendar.py): examples and properties."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.business_time import add, before, is_working_time
from domain.calendar import WEEKDAYS, Calendar
from domain.errors import Invalid

BERLIN = ZoneInfo("Europe/Berlin")
DE_BE = Calendar(timezone="Europe/Berlin", country="DE", subdivision="BE",
                 working_days=("mon", "tue", "wed", "thu", "fri"), working_hours=("09:00", "17:00"))
# Every day of the week, 09:00-17:00, no holidays: the DST switch days (Sundays) are working days.
BERLIN_EVERY_DAY = Calendar(timezone="Europe/Berlin", working_days=WEEKDAYS)
BERLIN_ALWAYS = Calendar(timezone="Europe/Berlin", working_days=WEEKDAYS, working_hours=("00:00", "24:00"))


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


# The examples.

def test_friday_afternoon_plus_two_hours_is_monday_morning():
    # Friday 27 November 2026: one hour left on Friday, the other on Monday.
    assert add(berlin(2026, 11, 27, 16), "PT2H", DE_BE) == berlin(2026, 11, 30, 10)


def test_a_day_from_christmas_eve_skips_christmas_and_the_weekend():
    # Thursday 24 December 2026; Christmas Day and the Second Day of Christmas (from `holidays`),
    # then Sunday.
    assert add(berlin(2026, 12, 24, 10), "P1D", DE_BE) == berlin(2026, 12, 28, 10)


@pytest.mark.parametrize("start,duration,calendar,expected", [
    # 29 March 2026, Sunday: Berlin's clocks go from 02:00 CET to 03:00 CEST.
    (berlin(2026, 3, 27, 16), "PT2H", DE_BE, datetime(2026, 3, 30, 8, tzinfo=UTC)),  # Monday 10:00 CEST
    (berlin(2026, 3, 27, 10), "P1D", DE_BE, datetime(2026, 3, 30, 8, tzinfo=UTC)),  # the same 10:00, an hour less of UTC
    (berlin(2026, 3, 29, 1, 30), "PT1H", DE_BE, berlin(2026, 3, 30, 10)),  # a start on the switch day, before it
    (berlin(2026, 3, 28, 12), "P1D", BERLIN_EVERY_DAY, datetime(2026, 3, 29, 10, tzinfo=UTC)),  # Sunday 12:00 CEST
    (berlin(2026, 3, 29, 4), "PT8H", BERLIN_EVERY_DAY, datetime(2026, 3, 29, 15, tzinfo=UTC)),  # Sunday 17:00 CEST
    (berlin(2026, 3, 29, 0), "PT24H", BERLIN_ALWAYS, berlin(2026, 3, 30, 1)),  # the day has 23 hours
    (berlin(2026, 3, 29, 0), "P1D", BERLIN_ALWAYS, berlin(2026, 3, 30, 0)),
    # 25 October 2026, Sunday: from 03:00 CEST back to 02:00 CET.
    (berlin(2026, 10, 23, 16), "PT2H", DE_BE, datetime(2026, 10, 26, 9, tzinfo=UTC)),  # Monday 10:00 CET
    (berlin(2026, 10, 23, 10), "P1D", DE_BE, datetime(2026, 10, 26, 9, tzinfo=UTC)),
    (berlin(2026, 10, 24, 12), "P1D", BERLIN_EVERY_DAY, datetime(2026, 10, 25, 11, tzinfo=UTC)),  # Sunday 12:00 CET
    (berlin(2026, 10, 25, 1), "PT8H", BERLIN_EVERY_DAY, berlin(2026, 10, 25, 17)),
    (berlin(2026, 10, 25, 0), "PT24H", BERLIN_ALWAYS, berlin(2026, 10, 25, 23)),  # the day has 25 hours
    # The year's end: New Year's Day is a Friday, then the weekend.
    (berlin(2026, 12, 31, 16), "PT2H", DE_BE, berlin(2027, 1, 4, 10)),
    (berlin(2026, 12, 31, 10), "P1D", DE_BE, berlin(2027, 1, 4, 10)),
    # Outside working time, counting starts at the next working moment.
    (berlin(2026, 11, 27, 18), "P1D", DE_BE, berlin(2026, 12, 1, 9)),
    (berlin(2026, 11, 28, 12), "PT1H", DE_BE, berlin(2026, 11, 30, 10)),
    (berlin(2026, 11, 30, 7), "PT8H", DE_BE, berlin(2026, 11, 30, 17)),  # the end of the working day
    # Days first, then hours; a week is as many working days as the calendar has in one.
    (berlin(2026, 11, 27, 16), "P1DT2H", DE_BE, berlin(2026, 12, 1, 10)),
    (berlin(2026, 11, 27, 16), "P1W", DE_BE, berlin(2026, 12, 4, 16)),
    # A timedelta is working time only: a day of it is three 8-hour days.
    (berlin(2026, 11, 27, 16), timedelta(days=1), DE_BE, berlin(2026, 12, 2, 16)),
])
def test_examples(start, duration, calendar, expected):
    result = add(start, duration, calendar)
    assert result == expected
    assert result.tzinfo is UTC


def test_without_a_calendar_it_is_wall_time_in_utc():
    start = berlin(2026, 3, 28, 12)
    assert add(start, "P1D", None) == datetime(2026, 3, 29, 11, tzinfo=UTC)  # 24 elapsed hours
    assert add(start, timedelta(hours=2), None).tzinfo is UTC


def test_a_zero_duration_leaves_the_start_where_it_is():
    saturday = berlin(2026, 11, 28, 12)
    assert add(saturday, timedelta(0), DE_BE) == saturday


@pytest.mark.parametrize("duration", ["P1.5D", "PT0S", "P1M", "two days", timedelta(hours=-1)])
def test_durations_refused(duration):
    with pytest.raises(Invalid):
        add(berlin(2026, 11, 27, 16), duration, DE_BE)


def test_a_naive_start_is_refused():
    with pytest.raises(Invalid):
        add(datetime(2026, 11, 27, 16), "PT1H", DE_BE)


# The calendar's validation.

@pytest.mark.parametrize("fields,named", [
    ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ({"timezone": "../../etc/passwd"}, "../../etc/passwd"),
    ({"timezone": "Europe/Berlin", "country": "XX"}, "XX"),
    ({"timezone": "Europe/Berlin", "country": "DE", "subdivision": "ZZ"}, "ZZ"),
    ({"timezone": "Europe/Berlin", "subdivision": "BE"}, "BE"),
])
def test_unknown_codes_are_refused_by_name(fields, named):
    with pytest.raises(ValidationError) as refused:
        Calendar(**fields)
    assert f"'{named}'" in str(refused.value)


@pytest.mark.parametrize("fields", [
    {"working_days": []}, {"working_days": ["mon", "mon"]}, {"working_days": ["monday"]},
    {"working_hours": ["17:00", "09:00"]}, {"working_hours": ["09:00", "09:00"]},
    {"working_hours": ["9:00", "17:00"]}, {"working_hours": ["24:00", "24:00"]}, {"working_hours": ["09:00"]},
    {"holidays": "DE"},
])
def test_malformed_calendars_are_refused(fields):
    with pytest.raises(ValidationError):
        Calendar(timezone="Europe/Berlin", **fields)


def test_a_calendar_is_frozen_and_reads_back_from_json():
    again = Calendar.model_validate_json(DE_BE.model_dump_json())
    assert again == DE_BE
    with pytest.raises(ValidationError):
        DE_BE.timezone = "UTC"


# Properties. Working hours here start at 03:00 or later: a clock time inside a DST gap (02:00-03:00
# in these zones) is the one documented edge where a day's working moment does not exist.
# Starts span 2025-2029: the holidays package knows 2001-2035.

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
HOLIDAYS = [(None, None), ("DE", "BE"), ("US", "NY"), ("AU", "NSW"), ("IN", None)]


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    country, subdivision = draw(st.sampled_from(HOLIDAYS))
    days = draw(st.sets(st.sampled_from(WEEKDAYS), min_size=1))
    start = draw(st.integers(3 * 60, 23 * 60))
    end = draw(st.integers(start + 60, 24 * 60))  # an hour at least: 120 hours need not walk for centuries
    return Calendar(timezone=draw(st.sampled_from(ZONES)), country=country, subdivision=subdivision,
                    working_days=tuple(day for day in WEEKDAYS if day in days),
                    working_hours=(f"{start // 60:02}:{start % 60:02}", f"{end // 60:02}:{end % 60:02}"))


starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 12, 31),
                      timezones=st.just(UTC))
hours = st.integers(0, 120 * 60).map(lambda minutes: timedelta(minutes=minutes))
day_counts = st.integers(0, 40)
FAST = settings(max_examples=150, deadline=None)


def days(count: int) -> str | timedelta:
    return f"P{count}D" if count else timedelta(0)  # an ISO string cannot be zero (parse_duration)


@FAST
@given(calendars(), starts, day_counts, hours)
def test_the_result_is_in_working_time(calendar, start, day_count, time):
    duration = f"P{day_count}DT{int(time.total_seconds())}S" if day_count and time else days(day_count) or time
    result = add(start, duration, calendar)
    if day_count == 0 and time == timedelta(0):
        assert result == start
    else:
        assert is_working_time(result, calendar)
        assert result > start


@FAST
@given(calendars(), starts, hours, hours)
def test_monotonic_in_working_time(calendar, start, a, b):
    shorter, longer = sorted((a, b))
    assert add(start, shorter, calendar) <= add(start, longer, calendar)


@FAST
@given(calendars(), starts, day_counts, day_counts)
def test_monotonic_in_working_days(calendar, start, a, b):
    fewer, more = sorted((a, b))
    assert add(start, days(fewer), calendar) <= add(start, days(more), calendar)


@FAST
@given(calendars(), starts, hours, hours)
def test_working_time_adds_up(calendar, start, a, b):
    assert add(add(start, a, calendar), b, calendar) == add(start, a + b, calendar)


@FAST
@given(calendars(), starts, day_counts, day_counts)
def test_working_days_add_up(calendar, start, a, b):
    assert add(add(start, days(a), calendar), days(b), calendar) == add(start, days(a + b), calendar)


@FAST
@given(starts, hours, st.sampled_from(ZONES))
def test_without_a_calendar_it_is_the_sum(start, time, zone):
    local = start.astimezone(ZoneInfo(zone))
    assert add(local, time, None) == start + time


# Counting back (a reminder before a due date): `before` is the latest start from which `add` is in time.

def test_a_working_day_before_monday_morning_is_friday_morning():
    assert before(berlin(2026, 11, 30, 10), "P1D", DE_BE) == berlin(2026, 11, 27, 10).astimezone(UTC)
    assert before(berlin(2026, 11, 30, 10), "PT2H", DE_BE) == berlin(2026, 11, 27, 16).astimezone(UTC)


def test_a_working_day_before_the_monday_after_christmas_is_christmas_eve():
    assert before(berlin(2026, 12, 28, 10), "P1D", DE_BE) == berlin(2026, 12, 24, 10).astimezone(UTC)


@settings(max_examples=60, deadline=None)
@given(calendars(), starts, st.integers(0, 10), st.integers(0, 40 * 60).map(lambda m: timedelta(minutes=m)))
def test_before_is_the_latest_start_that_is_in_time(calendar, end, day_count, time):
    duration = f"P{day_count}DT{int(time.total_seconds())}S" if day_count and time else days(day_count) or time
    start = before(end, duration, calendar)
    assert add(start, duration, calendar) <= end
    if start != end:  # one microsecond later is too late
        assert add(start + timedelta(microseconds=1), duration, calendar) > end


@FAST
@given(starts, hours)
def test_before_without_a_calendar_is_the_difference(end, time):
    assert before(end, time, None) == end - time
