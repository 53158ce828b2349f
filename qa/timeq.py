"""Time in a question: the period it names ("سنة 2015", "عام ٢٠١٥", "في مارس 2017", "in May
2016", "14/01/2016") and whether it asks for the latest ("آخر", "أحدث", "latest", "most recent").

`time_in_question(q)` returns a `TimeHint(since, until, latest)`; retrieval (qa.retrieve) uses
it to steer, not to filter: articles of the period are ranked up among passages of similar
relevance, and a "latest" question orders such passages newest first. A question about 1956 in
an archive of 2017 news still finds the 2017 articles that tell of 1956.

Months are read in the three Arabic naming systems (Maghrebi جانفي/جوان/جويلية/أوت as Tunisian
outlets write them, Mashriqi يناير/يونيو, Levantine كانون الثاني/حزيران) and in English. A year
is four digits (Western or Arabic-Indic) from 1900 to 2099 that are not part of a longer number
or a date; "2015-2016" (a season) names both years.

What this module does NOT do: hard date filters (qa.filters), or relative times ("last week").
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from index.lexical import fold

_MONTHS = {  # comma-separated: some names are two words
    1: "جانفي, يناير, كانون الثاني, january, jan",
    2: "فيفري, فبراير, شباط, february, feb",
    3: "مارس, آذار, march, mar",
    4: "أفريل, أبريل, نيسان, april, apr",
    5: "ماي, مايو, أيار, may",
    6: "جوان, يونيو, يونيه, حزيران, june, jun",
    7: "جويلية, يوليو, يوليه, تموز, july, jul",
    8: "أوت, أغسطس, آب, august, aug",
    9: "سبتمبر, أيلول, september, sep, sept",
    10: "أكتوبر, تشرين الأول, october, oct",
    11: "نوفمبر, تشرين الثاني, november, nov",
    12: "ديسمبر, كانون الأول, december, dec",
}
_YEAR = r"(19\d\d|20\d\d)"
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})[/.\-](\d{1,2})[/.\-]" + _YEAR + r"(?!\d)")
_SEASON = re.compile(r"(?<!\d)" + _YEAR + r"\s*[/\-]\s*" + _YEAR + r"(?!\d)")
_BARE_YEAR = re.compile(r"(?<![\d/.\-])" + _YEAR + r"(?![\d/.\-]?\d)")
_LATEST = re.compile(
    r"(^|\s)(ال)?(اخر|احدث|اخير|اخيره|latest|most recent|most recently|newest)(\s|$|[?.,!؟])"
)


@dataclass(frozen=True)
class TimeHint:
    since: date | None = None
    until: date | None = None
    latest: bool = False

    @property
    def period(self) -> bool:
        return self.since is not None


def time_in_question(question: str) -> TimeHint:
    """The period a question names and whether it asks for the latest; TimeHint() if neither.

    >>> time_in_question("ماذا حدث في مهرجان قرطاج سنة 2015؟").since
    datetime.date(2015, 1, 1)
    """
    text = " ".join(fold(question).split())
    latest = bool(_LATEST.search(text))
    m = _NUMERIC_DATE.search(text)
    if m:
        day = _date(int(m[3]), int(m[2]), int(m[1]))
        if day:
            return TimeHint(day, day, latest)
    m = _MONTH_YEAR.search(text)
    if m:
        day_of_month = m["day"] or m["day2"]
        month, year = _MONTH_OF[m["month"]], int(m["year"])
        day = _date(year, month, int(day_of_month)) if day_of_month else None
        if day:
            return TimeHint(day, day, latest)
        last = calendar.monthrange(year, month)[1]
        return TimeHint(date(year, month, 1), date(year, month, last), latest)
    m = _SEASON.search(text)
    if m and int(m[1]) < int(m[2]):
        return TimeHint(date(int(m[1]), 1, 1), date(int(m[2]), 12, 31), latest)
    m = _BARE_YEAR.search(text)
    if m:
        year = int(m[1])
        return TimeHint(date(year, 1, 1), date(year, 12, 31), latest)
    return TimeHint(latest=latest)


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


# folded (hamza forms, case) as questions are, so "اذار" and "آذار" are one name
_MONTH_OF = {fold(n.strip()): m for m, names in _MONTHS.items() for n in names.split(",")}
_MONTH_ALT = "|".join(re.escape(n) for n in sorted(_MONTH_OF, key=len, reverse=True))
# "14 جانفي 2016", "مارس 2017", "شهر ماي من سنة 2016", "may 2016", "may 14, 2016"
_MONTH_YEAR = re.compile(
    r"(?:(?<!\d)(?P<day>\d{1,2})\s+)?(?:(?:ل|ب)?شهر\s+)?(?:(?:ب|ل|في)?)(?P<month>"
    + _MONTH_ALT
    + r")(?:\s+(?P<day2>\d{1,2}),?)?\s+(?:(?:من|عام|سنه|of)\s+)?(?:(?:سنه|عام)\s+)?"
    + r"(?P<year>19\d\d|20\d\d)(?!\d)"
)


# "since" before a story's period leaves its end open; a bare month before "و/and <month year>"
# starts the period with it ("ماي وجوان 2017", "January and June 2017")
_SINCE = re.compile(r"(منذ|ابتداء من|بدايه من|انطلاقا من|since|starting|from)\s*(شهر|سنه|عام)?\s*$")
_MONTH_BEFORE = re.compile(
    r"(?:(?:ل|ب)?شهري?\s+)?(?:(?:ب|ل|في)?)(?P<month>" + _MONTH_ALT + r")\s*"
    r"(?:و\s*|and\s+|,\s*|-\s*|الي\s+|حتي\s+|to\s+|until\s+)(?:(?:ل|ب)?شهر\s+)?$"
)


def story_period(question: str) -> tuple[date | None, date | None]:
    """The span of time a story question names, each end None when open: "منذ مارس 2017" ->
    (2017-03-01, None), "بين ديسمبر 2016 وماي 2017" -> (2016-12-01, 2017-05-31), "خلال شهري
    ماي وجوان 2017" -> (2017-05-01, 2017-06-30), "في 2016" -> the year. Unlike
    time_in_question, which steers an answer towards one period, it spans every date named.
    >>> story_period("ماذا حدث منذ جانفي 2017؟")
    (datetime.date(2017, 1, 1), None)
    """
    text = " ".join(fold(question).split())
    found: list[tuple[int, date, date]] = []  # (position, first day, last day)
    taken: list[range] = []
    for pattern in (_NUMERIC_DATE, _MONTH_YEAR, _SEASON, _BARE_YEAR):
        for m in pattern.finditer(text):
            if any(m.start() in r or m.end() - 1 in r for r in taken):
                continue
            period = _period(pattern, m, text)
            if period:
                found.append((m.start(), *period))
                taken.append(range(m.start(), m.end()))
    if not found:
        return None, None
    found.sort()
    since, until = min(f[1] for f in found), max(f[2] for f in found)
    if len(found) == 1 and _SINCE.search(text[: found[0][0]]):
        return since, None
    return since, until


def _period(pattern: re.Pattern, m: re.Match, text: str) -> tuple[date, date] | None:
    """The first and last day a date mention names (a month named just before a month and
    year starts it)."""
    if pattern is _NUMERIC_DATE:
        day = _date(int(m[3]), int(m[2]), int(m[1]))
        return (day, day) if day else None
    if pattern is _SEASON:
        a, b = int(m[1]), int(m[2])
        return (date(a, 1, 1), date(b, 12, 31)) if a < b else None
    if pattern is _BARE_YEAR:
        return date(int(m[1]), 1, 1), date(int(m[1]), 12, 31)
    month, year = _MONTH_OF[m["month"]], int(m["year"])
    day_of_month = m["day"] or m["day2"]
    if day_of_month:
        day = _date(year, month, int(day_of_month))
        return (day, day) if day else None
    first = date(year, month, 1)
    before = _MONTH_BEFORE.search(text[: m.start("month")])
    if before:
        earlier = _MONTH_OF[before["month"]]
        first = date(year if earlier <= month else year - 1, earlier, 1)
    return first, date(year, month, calendar.monthrange(year, month)[1])


_DATE_WORD = re.compile(
    r"(?:19|20)\d\d|\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}|(?:19|20)\d\d[/\-](?:19|20)\d\d"
)


def is_date_word(word: str) -> bool:
    """A year, a date, a season ("2015-2016") or a month's name, with a leading «و»/«في»/«ب»
    or «ل» («وجوان», «بمارس»): words a period is named with."""
    w = fold(word)
    if _DATE_WORD.fullmatch(w):
        return True
    for prefix in ("", "و", "ب", "ل", "في", "وفي"):
        if w.startswith(prefix) and w[len(prefix) :] in _MONTH_OF:
            return True
    return False
