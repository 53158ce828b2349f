"""Publication dates as news dumps write them -> ISO 8601, and the calendar day each names.

`parse_published(text)` reads ISO 8601 (with or without a time and a time zone, also the basic
form "2017-01-22T185600"), plain YYYY-MM-DD and the day-first DD/MM/YYYY (also with "-" or "."),
and returns a `Published`: the normalised ISO text and the day it names *where it was published*
(a date-range filter compares calendar days as the outlet printed them, not UTC instants).
Anything else returns None; the caller keeps the text as it was and lists it (isnad index status).

What this module does NOT do: read dates out of questions (qa.timeq), or guess month-first
American dates: 03/04/2017 is the 3rd of April, as ant-news.jsonl and Arabic outlets write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

_DAY_FIRST = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})(?:[ T](\d{1,2}):(\d{2}))?")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "0123456789" * 2)
MIN_YEAR, MAX_YEAR = 1800, 2200  # outside this a "date" is a typo, not a publication date


@dataclass(frozen=True)
class Published:
    iso: str  # "2017-02-01T23:08:00+01:00", "2015-05-17"
    day: date  # the calendar day it names, in its own time zone


def parse_published(text: str | None) -> Published | None:
    """The date in `text` normalised, or None if it is not one isnad can read.

    >>> parse_published("17/05/2015").iso
    '2015-05-17'
    """
    if not text or not text.strip():
        return None
    s = text.strip().translate(_DIGITS)
    parsed = _iso(s) or _day_first(s)
    if parsed is None or not MIN_YEAR <= parsed[1].year <= MAX_YEAR:
        return None
    return Published(*parsed)


def to_ordinal(day: date | None) -> int:
    """Day number for array filters (date.toordinal); -1 for no date."""
    return day.toordinal() if day is not None else -1


def _iso(s: str) -> tuple[str, date] | None:
    try:
        dt = datetime.fromisoformat(s.replace(" ", "T", 1) if len(s) > 10 else s)
    except ValueError:
        return None
    if len(s) <= 10 and "T" not in s:  # a date alone stays a date
        return dt.date().isoformat(), dt.date()
    return dt.isoformat(timespec="seconds"), dt.date()


def _day_first(s: str) -> tuple[str, date] | None:
    m = _DAY_FIRST.fullmatch(s)
    if not m:
        return None
    d, mo, y, hh, mm = m.groups()
    try:
        day = date(int(y), int(mo), int(d))
        if hh is None:
            return day.isoformat(), day
        dt = datetime(day.year, day.month, day.day, int(hh), int(mm))
    except ValueError:
        return None
    return dt.isoformat(timespec="seconds"), day
