"""A project's business calendar: where it works (time zone, public holidays), on which days and hours.

Public holidays come from the `holidays` package, by its country and subdivision codes ("DE", "BE").
The package's version is pinned: a holiday it adds or drops changes when a business-time deadline
falls, so it changes only with a release of Signoff.
"""

import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order

# "HH:MM", 00:00..23:59; the end of the working hours may also be 24:00 (to midnight).
CLOCK_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"
MAX_CODE_CHARS = 10  # the holidays package's codes are 2-3 letters (subdivisions up to ~6)
MAX_TIMEZONE_CHARS = 64
# What the published schema says of a time zone name (a zoneinfo key); whether it is known, only the check can.
TIMEZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}$"


def _clock(text: str) -> tuple[int, int]:
    hours, minutes = text.split(":")
    return int(hours), int(minutes)


class Calendar(BaseModel):
    """When a project works. Without a country it has no public holidays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(max_length=MAX_TIMEZONE_CHARS, examples=["Europe/Berlin"],
                          description="IANA time zone name; working days and hours are local to it",
                          json_schema_extra={"pattern": TIMEZONE_PATTERN})
    country: str | None = Field(default=None, max_length=MAX_CODE_CHARS, examples=["DE"],
                                description="country code of the `holidays` package: its public holidays are not working days")
    subdivision: str | None = Field(default=None, max_length=MAX_CODE_CHARS, examples=["BE"],
                                    description="subdivision code of the `holidays` package within `country` (a state, a canton)")
    working_days: tuple[Weekday, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), min_length=1, max_length=7,
                                              description="the days of the week that are working days, each once",
                                              json_schema_extra={"uniqueItems": True})
    working_hours: tuple[str, str] = Field(default=("09:00", "17:00"), examples=[["09:00", "17:00"]],
                                           description="local start and end of the working hours, HH:MM, start before end "
                                                       "(the end may be 24:00)",
                                           json_schema_extra={"prefixItems": [{"type": "string", "pattern": CLOCK_PATTERN}] * 2})

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, TypeError):  # ValueError: a path such as ../etc
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from None
        return value

    @field_validator("working_days")
    @classmethod
    def _unique_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each working day may be named once")
        return value

    @field_validator("working_hours")
    @classmethod
    def _clock_times(cls, value: tuple[str, str]) -> tuple[str, str]:
        for text in value:
            if not re.fullmatch(CLOCK_PATTERN, text):
                raise ValueError(f"{text!r} is not a time of day such as 09:00")
        if value[0] == "24:00":
            raise ValueError("the working hours cannot start at 24:00")
        if _clock(value[0]) >= _clock(value[1]):
            raise ValueError(f"the working hours must start before they end, not {value[0]}-{value[1]}")
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                holidays.country_holidays(value)
            except NotImplementedError:
                raise ValueError(f"unknown holiday country {value!r}; use a code of the holidays package "
                                 "such as DE") from None
        return value

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if "country" not in info.data:  # the country is refused already
            return value
        country = info.data["country"]
        if country is None:
            raise ValueError(f"subdivision {value!r} needs a country")
        try:
            holidays.country_holidays(country, subdiv=value)
        except NotImplementedError:
            raise ValueError(f"unknown subdivision {value!r} of {country!r}; use a code of the holidays "
                             "package such as BE") from None
        return value

    # What the arithmetic needs (domain/business_time.py).

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # zoneinfo caches its instances

    def is_working_day(self, day: date) -> bool:
        if WEEKDAYS[day.weekday()] not in self.working_days:
            return False
        return self.country is None or day not in _holidays(self.country, self.subdivision, day.year)

    def start_time(self) -> time:
        return time(*_clock(self.working_hours[0]))

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The working hours of `day` as two aware local datetimes (whether or not it is a working day).

        A local time that the clocks skip (a DST gap) resolves as PEP 495 says for fold=0: to the
        moment as far after the gap's start as the time is, so the window is that much shorter.
        """
        zone = self.zone
        start = datetime.combine(day, self.start_time(), tzinfo=zone)
        if self.working_hours[1] == "24:00":
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        else:
            end = datetime.combine(day, time(*_clock(self.working_hours[1])), tzinfo=zone)
        return start, end


@lru_cache(maxsize=256)
def _holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())
