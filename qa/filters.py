"""What a user narrows a question to: a date range, sources, categories.

`parse_filters(since=..., until=..., sources=..., categories=...)` checks what the CLI, a line of
`--questions` JSONL or the web UI passed and returns `Filters`, or raises `FilterError` with one
line that says what to write instead. Dates are YYYY-MM-DD; "2015" and "2015-03" are accepted as
the whole year or month (since = its first day, until = its last). Retrieval applies the filters
inside its searches (qa.retrieve), so a narrow filter still gets that range's best passages.

What this module does NOT do: steer by times named in the question (qa.timeq: that is a hint,
this is a rule), or match names loosely beyond case and spacing (index.catalog).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np

from index.catalog import Catalog

_DAY = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


class FilterError(ValueError):
    """A filter value isnad cannot use; the message says what to write instead."""


@dataclass(frozen=True)
class Filters:
    since: date | None = None
    until: date | None = None
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.since or self.until or self.sources or self.categories)

    def describe(self) -> str:
        """One line for messages: "since 2015-01-01, until 2015-12-31, source «Jawhara FM»"."""
        parts = [
            f"since {self.since}" if self.since else "",
            f"until {self.until}" if self.until else "",
        ]
        parts += [f"source «{s}»" for s in self.sources]
        parts += [f"category «{c}»" for c in self.categories]
        return ", ".join(p for p in parts if p)

    def article_mask(self, catalog: Catalog) -> np.ndarray:
        """One bool per article row of the catalog's index."""
        return catalog.article_mask(self.since, self.until, self.sources, self.categories)


def parse_filters(
    since: str | date | None = None,
    until: str | date | None = None,
    sources: str | Iterable[str] | None = None,
    categories: str | Iterable[str] | None = None,
) -> Filters:
    """Checked filters; FilterError on a date that does not parse, since after until, or a
    name that is not text. Empty values ("", None, []) do not filter."""
    lo = _day(since, "since", first=True)
    hi = _day(until, "until", first=False)
    if lo and hi and lo > hi:
        raise FilterError(f"--since {lo} is after --until {hi}; swap them")
    return Filters(lo, hi, _names(sources, "source"), _names(categories, "category"))


def _day(value: str | date | None, name: str, *, first: bool) -> date | None:
    if value is None or isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise FilterError(f"--{name} must be a date written YYYY-MM-DD, got {value!r}")
    text = value.strip()
    if not text:
        return None
    m = _DAY.fullmatch(text)
    try:
        if not m:
            raise ValueError
        year, month, day = int(m[1]), m[2], m[3]
        if month is None:
            return date(year, 1, 1) if first else date(year, 12, 31)
        if day is None:
            last = calendar.monthrange(year, int(month))[1]
            return date(year, int(month), 1 if first else last)
        return date(year, int(month), int(day))
    except ValueError:
        raise FilterError(
            f"--{name} {text!r} is not a date; write YYYY-MM-DD, e.g. 2017-03-01"
        ) from None


def _names(value: str | Iterable[str] | None, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, (list, tuple)):
        values = list(value)
    else:
        raise FilterError(f"--{name} must be a name or a list of names, got {value!r}")
    for v in values:
        if not isinstance(v, str):
            raise FilterError(f"--{name} must be a name (text), got {v!r}")
    return tuple(dict.fromkeys(v.strip() for v in values if v.strip()))
