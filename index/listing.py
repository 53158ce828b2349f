"""The archive's table: a loaded index's articles listed newest first, searched and filtered from
what the index already holds in memory (titles, metadata, the catalog, the BM25 postings), never
by reading the articles' texts.

`Listing(index)` computes once per loaded index the newest-first order, each article's chunk
and wire-copy counts and its source and category codes; `listing.page(query=..., since=...,
until=..., sources=..., categories=..., limit=100, offset=0)` returns a `Page(total, rows)`.
A query matches an article when each of its words, normalised and stemmed as retrieval does
(index.lexical), is in the article's title or text: the text side through the chunks' BM25
postings, the title side through postings of the titles, made per segment the first time a
query needs them and kept for the process (a segment never changes once written, so after an
update only its new segment's titles are tokenised: ~35 us a title here). `titles()` makes
them ahead of the first search. `listing.article(id)` is one article whole: its row, its text
and its wire copies.

What this module does NOT do: rank by relevance (a search narrows the table, which stays newest
first), read a text to list (only `article` reads one), parse filter values (qa.filters), or
change the index (ui/live.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from index.catalog import _key as name_key
from index.lexical import WORD, Postings, fold, tokenize
from index.store import Index

MAX_LIMIT = 1000  # rows a page may ask for


class ListingError(ValueError):
    """A page that cannot be listed as asked (a bad limit, a search of only common words); the
    message says what to ask instead."""


class NoSuchArticle(KeyError):
    """An article id the index does not hold (never there, or removed since)."""

    def __str__(self) -> str:  # KeyError's own str() quotes the whole message
        return self.args[0]


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    id: str
    title: str
    published: str | None  # ISO 8601 (index.dates), else as the article wrote it, else None
    source: str
    category: str
    url: str
    chunks: int
    copies: int  # other articles in its wire-copy cluster

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "published": self.published,
            "source": self.source,
            "category": self.category,
            "url": self.url,
            "chunks": self.chunks,
            "copies": self.copies,
        }


@dataclass(frozen=True)
class Page:
    total: int  # every article that matches, not only this page's
    rows: tuple[Row, ...]

    def to_json(self) -> dict:
        return {"total": self.total, "articles": [r.to_json() for r in self.rows]}


@dataclass(frozen=True)
class ArticleView:
    """One article whole: its row, its text, and its wire copies' rows."""

    row: Row
    text: str
    wire_copies: tuple[Row, ...]

    def to_json(self) -> dict:
        return {
            **self.row.to_json(),
            "text": self.text,
            "wire_copies": [r.to_json() for r in self.wire_copies],
        }

    def lead(self) -> tuple[int, int]:
        """[start, end) of the text's first non-blank line: what a permalink to the article
        highlights (qa.export.permalink needs a span)."""
        start = len(self.text) - len(self.text.lstrip())
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else len(self.text[:end].rstrip())
        return (start, end) if end > start else (0, len(self.text))


class Listing:
    """The table over one loaded index (made once, then shared by every request on it)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        catalog = index.catalog
        n = len(index.articles)
        self.rows = np.arange(n, dtype=np.int64)
        # ascending by day, then by the full ISO time, then by row; read backwards: newest
        # first, undated articles (day -1) last
        iso = np.array([p or "" for p in catalog.published], dtype=str) if n else np.zeros(0, str)
        self.order = np.lexsort((self.rows, iso, catalog.days))[::-1] if n else self.rows
        self.chunks = np.bincount(index.chunk_article, minlength=n)
        cluster = np.asarray(catalog.cluster, np.int64)
        self.copies = np.bincount(cluster, minlength=n)[cluster] - 1 if n else cluster
        self.source_codes, self.source_names = _codes(catalog.source)
        self.category_codes, self.category_names = _codes(catalog.category)
        self._titles: list[tuple[np.ndarray, Postings]] | None = None
        self._titles_lock = threading.Lock()  # one maker; a search meanwhile waits for it

    def __len__(self) -> int:
        return len(self.rows)

    def page(
        self,
        query: str = "",
        since: date | None = None,
        until: date | None = None,
        sources: Sequence[str] = (),
        categories: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """The articles matching all that is given, newest first, `limit` of them from
        `offset`; a page past the end is empty (its total still counts every match)."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ListingError(f"limit must be 1 to {MAX_LIMIT}, got {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise ListingError(f"offset must be 0 or more, got {offset!r}")
        mask = self.mask(query, since, until, sources, categories)
        matching = self.order if mask is None else self.order[mask[self.order]]
        chosen = matching[offset : offset + limit]
        return Page(len(matching), tuple(self.row(int(r)) for r in chosen))

    def mask(
        self,
        query: str = "",
        since: date | None = None,
        until: date | None = None,
        sources: Sequence[str] = (),
        categories: Sequence[str] = (),
    ) -> np.ndarray | None:
        """One bool per article row (None: every article)."""
        days = self.index.catalog.days
        mask = None

        def narrow(m: np.ndarray) -> None:
            nonlocal mask
            mask = m if mask is None else mask & m

        if since is not None:
            narrow(days >= since.toordinal())
        if until is not None:
            narrow((days >= 0) & (days <= until.toordinal()))
        for names, codes, known in (
            (sources, self.source_codes, self.source_names),
            (categories, self.category_codes, self.category_names),
        ):
            if names:
                wanted = [known[k] for k in {name_key(n) for n in names} if k in known]
                narrow(np.isin(codes, wanted))
        if query and query.strip():
            narrow(self._search(query))
        return mask

    def row(self, r: int) -> Row:
        a = self.index.articles[r]
        published = self.index.catalog.published[r] or a.meta.get("published") or None
        return Row(
            id=a.id,
            title=a.title,
            published=published,
            source=a.meta.get("source", "") or "",
            category=a.meta.get("category", "") or "",
            url=a.meta.get("url", "") or "",
            chunks=int(self.chunks[r]),
            copies=int(self.copies[r]),
        )

    def article(self, article_id: str) -> ArticleView:
        """The article with this id whole; NoSuchArticle if the index does not hold it."""
        r = self.index.article_row.get(article_id)
        if r is None:
            raise NoSuchArticle(
                f"no article {article_id!r} in the index (never added, or removed since); "
                "list them with `isnad articles list`"
            )
        copies = self.index.catalog.copies(r)
        return ArticleView(
            self.row(r), self.index.articles[r].text, tuple(self.row(c) for c in copies)
        )

    def _search(self, query: str) -> np.ndarray:
        tokens = list(dict.fromkeys(tokenize(query)))
        if not tokens:
            words = WORD.findall(fold(query))
            raise ListingError(
                f"the search {query.strip()!r} has only common words that every article holds; "
                "search for a name or a topic word"
                if words
                else f"the search {query.strip()!r} has no word in it; search for a name or a "
                "topic word"
            )
        n = len(self.rows)
        titles = self.titles()
        found = np.ones(n, bool)
        for token in tokens:
            hit = np.zeros(n, bool)
            # the index's BM25 postings: the live chunks holding the token (index.lexical)
            for docs, _, _ in self.index.lexical._postings([token]):
                hit[self.index.chunk_article[docs]] = True
            for rows, postings in titles:
                for i in postings.ids([token]):
                    now = rows[postings.docs[postings.ptr[i] : postings.ptr[i + 1]]]
                    hit[now[now >= 0]] = True  # -1: removed since the postings were made
            found &= hit
        return found

    def titles(self) -> list[tuple[np.ndarray, Postings]]:
        """Per segment, (its titles' documents -> article row, -1 if removed since; postings
        of the titles' tokens), from the process's cache where the segment was seen before."""
        with self._titles_lock:
            if self._titles is None:
                self._titles = self._make_titles()
            return self._titles

    def _make_titles(self) -> list[tuple[np.ndarray, Postings]]:
        index, out = self.index, []
        for i, seg in enumerate(index.segments):
            rows = (
                np.flatnonzero(index.article_segment == i) if len(index.segments) > 1 else self.rows
            )
            local = np.asarray(index.article_local)[rows]
            made = _segment_titles(seg.folder, local, [index.articles[r].title for r in rows])
            # the postings' documents are the local rows live when they were made: now's rows
            now = np.full(max(len(seg.live_articles), int(made[0].max(initial=-1)) + 1), -1)
            now[local] = rows
            out.append((now[made[0]], made[1]))
        return out


_TITLES: dict[str, tuple[np.ndarray, Postings]] = {}  # segment folder -> (local rows, postings)
_TITLES_LOCK = threading.Lock()
_TITLES_KEPT = 64  # segments whose title postings the process keeps


def _segment_titles(folder, local: np.ndarray, titles: list[str]) -> tuple[np.ndarray, Postings]:
    """(local rows, postings of their titles' tokens) of one segment, made once a process."""
    key = str(folder)
    with _TITLES_LOCK:
        made = _TITLES.get(key)
    if made is not None and np.isin(local, made[0]).all():
        return made
    made = (np.asarray(local, np.int64), Postings.from_tokens([tokenize(t) for t in titles]))
    with _TITLES_LOCK:
        if len(_TITLES) >= _TITLES_KEPT:
            _TITLES.pop(next(iter(_TITLES)))
        _TITLES[key] = made
    return made


def _codes(values: Sequence[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Per value the code of its name key (index.catalog: case and spacing ignored), and the
    codes by key."""
    known: dict[str, int] = {}
    seen: dict[str, int] = {}  # the same raw value repeats: key it once
    codes = np.empty(len(values), np.int32)
    for i, v in enumerate(values):
        code = seen.get(v)
        if code is None:
            code = seen[v] = known.setdefault(name_key(v), len(known))
        codes[i] = code
    return codes, known
