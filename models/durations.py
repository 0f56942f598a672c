"""ISO-8601 durations as used in journey definitions (`PT3S` ... `P30D`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_duration(value: Any) -> timedelta:
    """Parse an ISO-8601 duration made of weeks, days, hours, minutes and seconds.

    Months and years are refused: their length depends on the calendar, so a journey could not say
    what it means by them.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, str):
        match = _DURATION.match(value.strip().upper())
        if match is None:
            if re.match(r"^P(\d+Y)?(\d+M)", value.strip().upper()):
                raise ValueError("months and years are not fixed lengths: use days (P30D) or weeks (P4W)")
            raise ValueError(f"{value!r} is not an ISO-8601 duration such as PT30M, P2D or P1DT12H")
        parts = {name: float(number) for name, number in match.groupdict().items() if number}
        duration = timedelta(**parts)
    else:
        raise ValueError("a duration is an ISO-8601 string such as PT30M, P2D or P1DT12H")
    if duration <= timedelta(0):
        raise ValueError("a duration must be longer than zero")
    return duration


def format_iso_duration(duration: timedelta) -> str:
    """Write a duration back in the shortest ISO-8601 form (`P2D`, `PT3S`, `P1DT12H`)."""
    seconds_total = duration.total_seconds()
    days, rest = divmod(seconds_total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{int(days)}D" if days else "")
    clock = ""
    if hours:
        clock += f"{int(hours)}H"
    if minutes:
        clock += f"{int(minutes)}M"
    if seconds:
        clock += f"{seconds:g}S"
    return text + ("T" + clock if clock else "") if (text != "P" or clock) else "PT0S"


def parse_signed_iso_duration(value: Any) -> timedelta:
    """An ISO-8601 duration that may be negative (`-P2D`) or zero (`PT0S`)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("PT0S", "P0D"):
            return timedelta(0)
        if text.startswith("-"):
            return -parse_iso_duration(text[1:])
        return parse_iso_duration(text.removeprefix("+"))
    raise ValueError("an offset is an ISO-8601 duration such as -P2D or PT2H")


def format_signed_iso_duration(duration: timedelta) -> str:
    """`-P2D`, `PT2H`, `PT0S`."""
    return "-" + format_iso_duration(-duration) if duration < timedelta(0) else format_iso_duration(duration)


IsoDuration = Annotated[
    timedelta,
    BeforeValidator(parse_iso_duration),
    PlainSerializer(format_iso_duration, return_type=str, when_used="always"),
]

SignedIsoDuration = Annotated[
    timedelta,
    BeforeValidator(parse_signed_iso_duration),
    PlainSerializer(format_signed_iso_duration, return_type=str, when_used="always"),
]
