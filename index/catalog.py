"""What an index knows of each article besides its text: the day it was published, its source and
category, and the wire-copy cluster it belongs to, as arrays that filters and answers read.

`Catalog.of(articles, clusters)` parses every `published` once (index.dates); `article_mask`
turns a date range and source/category names into one boolean per article row. Articles without
a readable date never pass a date bound: a user who asks for March 2017 wants what is known to
be from March 2017.

What this module does NOT do: find the copies (index.copies), or read dates out of questions
(qa.timeq).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from index.articles import Article
from index.dates import parse_published, to_ordinal


@dataclass(frozen=True)
class Catalog:
    published: tuple[str | None, ...]  # ISO 8601 per article row, None if absent or unreadable
    days: np.ndarray  # int64 day ordinal per article row, -1 without a readable date
    unparsed: tuple[tuple[str, str], ...]  # (article id, published text) that did not parse
    source: tuple[str, ...]  # per article row, "" if none
    category: tuple[str, ...]
    cluster: np.ndarray  # int64 per article row: the row of its cluster's first article

    @classmethod
    def of(cls, articles: Sequence[Article], cluster: np.ndarray | None = None) -> Catalog:
        published, days, unparsed = [], [], []
        for a in articles:
            raw = a.meta.get("published")
            p = parse_published(raw)
            published.append(p.iso if p else None)
            days.append(to_ordinal(p.day) if p else -1)
            if raw and p is None:
                unparsed.append((a.id, raw))
        if cluster is None:
            cluster = np.arange(len(articles), dtype=np.int64)
        assert len(cluster) == len(articles), "one cluster entry per article"
        return cls(
            published=tuple(published),
            days=np.array(days, dtype=np.int64).reshape(-1),
            unparsed=tuple(unparsed),
            source=tuple(a.meta.get("source", "") for a in articles),
            category=tuple(a.meta.get("category", "") for a in articles),
            cluster=np.asarray(cluster, dtype=np.int64),
        )

    def names(self, field: str) -> list[str]:
        """The distinct non-empty sources (field="source") or categories, sorted."""
        return sorted({v for v in getattr(self, field) if v})

    def date_range(self) -> tuple[date, date] | None:
        """The first and last publication day, or None if no article has a readable date."""
        dated = self.days[self.days >= 0]
        if not len(dated):
            return None
        return date.fromordinal(int(dated.min())), date.fromordinal(int(dated.max()))

    def copies(self, row: int) -> list[int]:
        """The other article rows of `row`'s wire-copy cluster (empty for a lone article)."""
        members = np.flatnonzero(self.cluster == self.cluster[row])
        return [int(r) for r in members if r != row]

    def article_mask(
        self,
        since: date | None = None,
        until: date | None = None,
        sources: Sequence[str] = (),
        categories: Sequence[str] = (),
    ) -> np.ndarray:
        """One bool per article row: published within [since, until] (inclusive) and from one
        of `sources` and one of `categories` (an empty list does not filter; names match
        ignoring case and spacing)."""
        mask = np.ones(len(self.days), dtype=bool)
        if since is not None:
            mask &= self.days >= since.toordinal()
        if until is not None:
            mask &= (self.days >= 0) & (self.days <= until.toordinal())
        for names, values in ((sources, self.source), (categories, self.category)):
            if names:
                wanted = {_key(n) for n in names}
                mask &= np.fromiter((_key(v) in wanted for v in values), bool, len(values))
        return mask


def _key(name: str) -> str:
    """Names match whatever their case and spacing: "jawhara  fm" is "Jawhara FM"."""
    return " ".join(name.split()).casefold()
