"""Nights: a run is for one UTC date ``as_of`` and sees only ratings before its midnight."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from recsys_core.errors import ConfigError

EVERY_PATTERN = re.compile(r"^\s*(\d+)\s*d\s*$")


def parse_as_of(value: str | date | datetime | None, option: str = "--as-of") -> date | None:
    """A night from a flag, a parameter or a datetime (converted to its UTC date); None stays None."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is not a date. Give the night as YYYY-MM-DD (a UTC date), e.g. "
            f"{option} {today_utc().isoformat()}."
        ) from None


def today_utc() -> date:
    return datetime.now(UTC).date()


def future_night_problem(night: date) -> str | None:
    """Why ``night`` cannot run, when it is after tomorrow (UTC); None when it can."""
    if night <= today_utc() + timedelta(days=1):
        return None
    return (
        f"{night} is in the future (today is {today_utc()} UTC): a future night would become the newest "
        "published night and hide every real one; give a date up to tomorrow"
    )


def cutoff_of(as_of: date) -> datetime:
    """The night's cutoff: ``as_of`` 00:00 UTC. A run sees ratings strictly before it."""
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)


def cutoff_seconds(as_of: date) -> int:
    """The cutoff as a Unix timestamp, the unit of the ``timestamp`` column."""
    return int(cutoff_of(as_of).timestamp())


def date_of_seconds(seconds: int | float) -> date:
    return datetime.fromtimestamp(int(seconds), UTC).date()


def parse_every(value: str | int) -> int:
    """``1d``/``7d`` (or a number of days) -> days between backfilled nights."""
    if isinstance(value, int):
        days = value
    else:
        match = EVERY_PATTERN.match(str(value))
        if not match:
            raise ConfigError(f"--every {value!r} is not a step in days. Use e.g. --every 1d or --every 7d.")
        days = int(match.group(1))
    if days < 1:
        raise ConfigError(f"--every {value!r} must be at least 1d.")
    return days


def nights_between(start: date, end: date, every_days: int = 1) -> list[date]:
    """The nights ``start``, ``start + every``, ... up to and including ``end``, oldest first."""
    if end < start:
        raise ConfigError(f"--from {start.isoformat()} is after --to {end.isoformat()}; give the oldest night first.")
    step = timedelta(days=every_days)
    out, night = [], start
    while night <= end:
        out.append(night)
        night += step
    return out
