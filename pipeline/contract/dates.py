"""The received date a note may carry: which dates are plausible, and one sentence for those that are not.

A complaint's received date sets its regulatory deadlines; 9999-12-31 overflows the date
arithmetic and 0001-01-01 yields deadlines two thousand years ago. Batch (a per-row error) and
the service (a 422) refuse the same dates with the same words.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

__all__ = ["RECEIVED_MIN", "RECEIVED_MAX", "received_date_problem", "parse_received"]

RECEIVED_MIN = dt.date(1990, 1, 1)
RECEIVED_MAX = dt.date(2099, 12, 31)


def received_date_problem(day: dt.date) -> str | None:
    """Why this received date is refused, or None when it is plausible."""
    if isinstance(day, dt.datetime):
        day = day.date()
    if not RECEIVED_MIN <= day <= RECEIVED_MAX:
        return (f"received date {day.isoformat()} is out of range "
                f"({RECEIVED_MIN.isoformat()} to {RECEIVED_MAX.isoformat()})")
    return None


def parse_received(value: Any) -> dt.date | None:
    """A cell's received date: None when empty; ValueError with one sentence when it is not a
    plausible date (garbage, 9999-12-31, 0001-01-01)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        import pandas as pd

        stamp = None
        if isinstance(value, str):
            try:
                stamp = pd.Timestamp(value.strip())
            except (ValueError, TypeError, OverflowError):
                stamp = None
        if stamp is None or stamp is pd.NaT:
            raise ValueError(f"received date '{str(value)[:40]}' is not a date (expected YYYY-MM-DD)")
        day = stamp.date()
    problem = received_date_problem(day)
    if problem:
        raise ValueError(problem)
    return day
