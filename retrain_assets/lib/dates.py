"""Data days (ISO date strings, the daily partition keys) and arithmetic on them."""

import datetime as dt


def days_between(earlier: str, later: str) -> int:
    return (dt.date.fromisoformat(later) - dt.date.fromisoformat(earlier)).days


def shift_day(day: str, days: int) -> str:
    """The day `days` after `day` (before it when negative)."""
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()
