"""A story question -> a dated timeline of cited sentences, one entry per event.

The shape follows news timeline summarisation (news-tls, Ghalandari and Ifrim 2020: choose the
dates, then one summary sentence per date; Google News' "Full Coverage" clusters a story's
articles into events), with every entry a verified span:

1. Retrieve deep: the story's topic (qa.story.story_topic) ranked `depth` chunks down, far past
   an answer's ten (a story's articles can be dozens), one chunk per wire-copy cluster.
2. Keep the articles about the story: an article's relevance is its best sentence's score
   (qa.scoring, as an answer ranks); it must lie within `floor` of the best article's, and the
   article as a whole (the mean of its sentence vectors) must lie within `about` of the best
   article's cosine to the story (the question and the best articles): an article that only
   mentions the story in passing has one good sentence and a whole that is about something else.
   A period the question names («في 2016», "since March 2017") bounds the dates.
3. Group into events: articles on the same day or the next (`event_days`) whose whole vectors
   are at least `event_cosine` alike are one event; its best article is cited, the others are
   listed ("also reported by").
4. Cite: the best article's sentence that is closest to the story and to its event (its
   cosine to each, added), and the sentence after it when that one scores within
   `second_margin` (a lead often runs over two sentences).
5. Keep the `max_entries` most relevant events, oldest first.

What this module does NOT do: decide that a question is a story (qa.story), check spans or make
citations (qa.answer does, for timelines as for answers), or format the entries (qa.export,
ui/render.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from index.store import Index
from index.vectors import read_rows
from qa.compose import Span
from qa.retrieve import Ranking


@dataclass(frozen=True)
class TimelineSettings:
    depth: int = 150  # chunks ranked for a story (an answer ranks 10)
    floor: float = 0.08  # an article's best sentence within this of the best article's
    about: float = 0.06  # its whole within this of the best article's cosine to the story
    story_articles: int = 3  # the best articles that, with the question, make the story vector
    event_days: int = 1  # one event's articles lie within this many days of each other
    event_cosine: float = 0.90  # ... and their whole vectors are at least this alike
    max_entries: int = 12
    min_articles: int = 2  # fewer dated articles about the story: no timeline
    second_margin: float = 0.02  # the next sentence is cited too when it scores within this
    max_entry_chars: int = 500  # ... and the two stay within this length


@dataclass(frozen=True)
class Event:
    day: int  # date ordinal of its best article
    spans: tuple[Span, ...]  # the sentences cited, of its best article
    article_rows: tuple[int, ...]  # its articles, the best first
    relevance: float  # its best article's relevance


@dataclass(frozen=True)
class Story:
    """What the timeline is made of, before citations are made and checked."""

    events: tuple[Event, ...]  # the shown events, oldest first (none: too few dated articles)
    more: int  # relevant events left out past max_entries
    undated: int  # relevant articles left out for want of a readable date
    dated: int  # relevant articles with a date (within the period the question names)


def article_vectors(index: Index, rows: list[int]) -> np.ndarray:
    """(len(rows), dim): each article's unit mean sentence vector (zeros without sentences)."""
    out = np.zeros((len(rows), index.sent_vectors.shape[1]), np.float32)
    for i, row in enumerate(rows):
        sents = index.sentence_rows(row)
        if len(sents):
            v = read_rows(index.sent_vectors, list(sents)).mean(0)
            out[i] = v / (np.linalg.norm(v) or 1.0)
    return out


def tell(
    index: Index,
    ranking: Ranking,
    settings: TimelineSettings,
    since: date | None = None,
    until: date | None = None,
) -> Story:
    """The story in `ranking` (a deep ranking of the story's topic); no events when fewer than
    `min_articles` dated articles are about it. `since`/`until`: a period the question names."""
    best: dict[int, float] = {}  # article row -> its best sentence score
    for hit in ranking.hits:
        art = int(index.chunk_article[hit.chunk_row])
        best[art] = max(best.get(art, -9.0), hit.score)
    if not best:
        return Story((), 0, 0, 0)
    rows = sorted(best, key=lambda r: (-best[r], r))
    top = best[rows[0]]
    rows = [r for r in rows if best[r] >= top - settings.floor]
    vectors = article_vectors(index, rows)
    story = ranking.vector + vectors[: settings.story_articles].mean(0)
    story = story / (np.linalg.norm(story) or 1.0)
    about = vectors @ story
    keep = about >= about[: settings.story_articles].max() - settings.about
    rows = [r for r, k in zip(rows, keep, strict=True) if k]
    vectors = vectors[keep]
    days = index.catalog.days
    lo = since.toordinal() if since else -1
    hi = until.toordinal() if until else 1 << 30
    dated = [i for i, r in enumerate(rows) if days[r] >= 0 and lo <= days[r] <= hi]
    undated = sum(1 for r in rows if days[r] < 0)
    if len(dated) < settings.min_articles:
        return Story((), 0, undated, len(dated))
    groups = _events([rows[i] for i in dated], vectors[dated], days, settings)
    ranked = sorted(groups, key=lambda g: -best[g[0]])
    shown = ranked[: settings.max_entries]
    events = []
    for members in shown:
        lead = members[0]
        centroid = article_vectors(index, list(members)).mean(0)
        spans = _sentences(index, lead, story, centroid, best[lead], settings)
        if spans:
            events.append(Event(int(days[lead]), spans, tuple(members), best[lead]))
    events.sort(key=lambda e: (e.day, -e.relevance))
    return Story(tuple(events), len(ranked) - len(shown), undated, len(dated))


def _events(
    rows: list[int], vectors: np.ndarray, days: np.ndarray, settings: TimelineSettings
) -> list[tuple[int, ...]]:
    """Articles (most relevant first) grouped into events, each most relevant article first:
    an article joins the first event whose days it keeps within `event_days` and whose mean
    vector it is at least `event_cosine` alike."""
    events: list[list[int]] = []
    sums: list[np.ndarray] = []
    for i, row in enumerate(rows):
        for e, members in enumerate(events):
            span = [int(days[rows[m]]) for m in members] + [int(days[row])]
            if max(span) - min(span) > settings.event_days:
                continue
            centroid = sums[e] / (np.linalg.norm(sums[e]) or 1.0)
            if float(vectors[i] @ centroid) >= settings.event_cosine:
                members.append(i)
                sums[e] = sums[e] + vectors[i]
                break
        else:
            events.append([i])
            sums.append(vectors[i].copy())
    return [tuple(rows[m] for m in members) for members in events]


def _sentences(
    index: Index,
    article_row: int,
    story: np.ndarray,
    event: np.ndarray,
    relevance: float,
    settings: TimelineSettings,
) -> tuple[Span, ...]:
    """The sentence of the article that tells the event (module docstring), with the one after
    it when that scores within `second_margin` and the two stay short."""
    sents = list(index.sentence_rows(article_row))
    if not sents:
        return ()
    vectors = read_rows(index.sent_vectors, sents)
    norm = np.linalg.norm(event) or 1.0
    scores = vectors @ story + vectors @ (event / norm)
    i = int(np.argmax(scores))
    start, end = int(index.sent_start[sents[i]]), int(index.sent_end[sents[i]])
    if i + 1 < len(sents) and scores[i + 1] >= scores[i] - settings.second_margin:
        next_end = int(index.sent_end[sents[i + 1]])
        if next_end - start <= settings.max_entry_chars:
            end = next_end
    return (Span(article_row, start, end, relevance),)


def lead_line(entries, catalog, article_rows: list[int], story: Story, lang: str) -> str:
    """ "من 2016-02-03 إلى 2016-03-20: 9 أحداث في 14 مقالة من 3 مصادر" (lang "arabic"), or
    "From ... to ...: 9 events in 14 articles from 3 sources", with the events left out and the
    undated articles counted. `entries`: the timeline's (dated, oldest first)."""
    first, last = entries[0].date, entries[-1].date
    sources = len({catalog.source[r] for r in article_rows if catalog.source[r]})
    n, m = len(entries), len(article_rows)
    if lang == "arabic":
        line = f"من {first} إلى {last}: {_ar(n, *_EVENTS)} في {_ar(m, *_ARTICLES)}"
        line += f" من {_ar(sources, *_SOURCES)}" if sources else ""
        notes = [f"أحداث أخرى أقل صلة لم تُعرض: {story.more}"] if story.more else []
        notes += [f"مقالات بلا تاريخ تُركت: {story.undated}"] if story.undated else []
        return line + (f" ({'؛ '.join(notes)})" if notes else "") + "."
    line = f"From {first} to {last}: {_en(n, 'event')} in {_en(m, 'article')}"
    line += f" from {_en(sources, 'source')}" if sources else ""
    notes = [f"{_en(story.more, 'less relevant event')} not shown"] if story.more else []
    notes += [f"{_en(story.undated, 'undated article')} left out"] if story.undated else []
    return line + (f" ({'; '.join(notes)})" if notes else "") + "."


# Arabic counted nouns: one, two, 3-10 (plural), 11 and more (singular); as they follow «في»/«من»
_EVENTS = ("حدث واحد", "حدثان", "أحداث", "حدثًا")
_ARTICLES = ("مقالة واحدة", "مقالتين", "مقالات", "مقالة")
_SOURCES = ("مصدر واحد", "مصدرين", "مصادر", "مصدرًا")


def _ar(n: int, one: str, two: str, few: str, many: str) -> str:
    if n == 1:
        return one
    if n == 2:
        return two
    return f"{n} {few if 3 <= n % 100 <= 10 else many}"


def _en(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def no_timeline(story: Story | None, lang: str) -> str:
    """Why a story question got an ordinary answer: `story` None when the articles do not hold
    the story at all, else too few of its articles have a date."""
    if story is None:
        if lang == "arabic":
            return "لا خط زمني: لا تروي المقالات هذه القصة."
        return "No timeline: the articles do not tell this story."
    events = len(story.events)
    if lang == "arabic":
        return (
            f"لا خط زمني: عن هذه القصة {story.dated} مقالة مؤرخة في {events} حدث"
            f" (وبلا تاريخ: {story.undated})؛ هذه إجابة عادية."
        )
    return (
        f"No timeline: {_en(story.dated, 'dated article')} about this story, telling"
        f" {_en(events, 'event')} ({story.undated} undated); an ordinary answer instead."
    )
