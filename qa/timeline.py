"""A story question -> a dated timeline of cited sentences, one entry per event.

The shape follows news timeline summarisation (news-tls, Ghalandari and Ifrim 2020: choose the
dates, then one summary sentence per date; Google News' "Full Coverage" clusters a story's
articles into events), with every entry a verified span:

1. Retrieve deep: the story's topic (qa.story.story_topic) ranked `depth` chunks down, far past
   an answer's ten (a story's articles can be dozens), one chunk per wire-copy cluster.
   A period the question names («في 2016», "since March 2017", qa.timeq.story_period) is a
   filter on the ranking, and its words are left out of the topic.
2. Keep the articles about the story: of the `articles` best, those qa.story_model gives a
   probability at its fitted threshold or above (how each stands against the best ones:
   relative score, the article as a whole against the story, rank, BM25, title words); an
   article that only mentions the story in passing stays out.
3. Group into events: articles on the same day or the next (`event_days`) whose whole vectors
   are at least `event_cosine` alike are one event; its most probable article is cited, the
   others are listed ("also reported by").
4. Cite: the best article's sentence that is closest to the story and to its event (its
   cosine to each, added), and the sentence after it when that one scores within
   `second_margin` (a lead often runs over two sentences).
5. Keep the `max_entries` most probable events, oldest first.

What this module does NOT do: decide that a question is a story (qa.story), check spans or make
citations (qa.answer does, for timelines as for answers), or format the entries (qa.export,
ui/render.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.store import Index
from index.vectors import read_rows
from qa.compose import Span
from qa.retrieve import Ranking
from qa.story_model import StoryModel, candidates


@dataclass(frozen=True)
class TimelineSettings:
    depth: int = 300  # chunks ranked for a story (an answer ranks 10)
    articles: int = 120  # the best articles of those chunks weighed by the story model
    event_days: int = 1  # one event's articles lie within this many days of each other
    event_cosine: float = 0.95  # ... and their whole vectors are at least this alike (fitted)
    max_entries: int = 12
    min_articles: int = 2  # fewer dated articles about the story: no timeline
    second_margin: float = 0.02  # the next sentence is cited too when it scores within this
    max_entry_chars: int = 500  # ... and the two stay within this length


@dataclass(frozen=True)
class Event:
    day: int  # date ordinal of its best article
    spans: tuple[Span, ...]  # the sentences cited, of its best article
    article_rows: tuple[int, ...]  # its articles, the most probable first
    relevance: float  # its best article's probability of being about the story


@dataclass(frozen=True)
class Story:
    """What the timeline is made of, before citations are made and checked."""

    events: tuple[Event, ...]  # the shown events, oldest first (none: too few dated articles)
    more: int  # relevant events left out past max_entries
    undated: int  # relevant articles left out for want of a readable date
    dated: int  # relevant articles with a date (within the period the question names)


def tell(
    index: Index,
    ranking: Ranking,
    topic: str,
    model: StoryModel,
    settings: TimelineSettings,
) -> Story:
    """The story in `ranking` (a deep ranking of the story's `topic`, within the period the
    question names if any); no events when fewer than `min_articles` dated articles are about
    it."""
    found = candidates(index, ranking, topic, settings.articles)
    p, threshold = model.probabilities(ranking, found.features)
    keep = np.flatnonzero(p >= threshold)
    keep = keep[np.argsort(-p[keep], kind="stable")]
    days = index.catalog.days
    dated = [i for i in keep if days[found.rows[i]] >= 0]
    undated = len(keep) - len(dated)
    if len(dated) < settings.min_articles:
        return Story((), 0, undated, len(dated))
    groups = _events([found.rows[i] for i in dated], found.vectors[dated], days, settings)
    shown = groups[: settings.max_entries]  # most probable first
    prob = {found.rows[i]: float(p[i]) for i in dated}
    vector = {found.rows[i]: found.vectors[i] for i in dated}
    events = []
    for members in shown:
        lead = members[0]
        centroid = np.mean([vector[r] for r in members], axis=0)
        spans = _sentences(index, lead, found.story, centroid, prob[lead], settings)
        if spans:
            events.append(Event(int(days[lead]), spans, tuple(members), prob[lead]))
    events.sort(key=lambda e: (e.day, -e.relevance))
    return Story(tuple(events), len(groups) - len(shown), undated, len(dated))


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
