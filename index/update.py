"""Add, replace or remove articles by id, reading only what changes: `isnad index add` and
`isnad index remove`.

`build_index` makes the index mirror its sources: it reads and hashes every article under them
and recomputes the wire-copy clusters over every signature, which at a million articles takes
minutes before anything is embedded. `update_index(index_dir, encoder, add=..., remove=...)`
reads only the files it is given and the ids it is told to drop:

- each article is found by id through its segment's keys.npz (index.store.SegmentKeys): an
  unchanged one is left alone, a changed one masked in its segment, a new one added;
- the new and changed articles go into one new segment (embedded and checkpointed as a build
  does: a killed update resumes), and small segments are merged by the build's policy
  (index.build.log_merge), loading only the segments merged (index.store.load_segments);
- wire copies are found for the new articles only: their LSH band keys against every
  segment's bands.npy, candidates checked on their shingles; clusters that lost an article are
  re-formed from their remaining members. The clusters are those a full build computes.

What this module does NOT do: notice files that changed or vanished under the index's sources
(that is `isnad index build`), or re-embed an index built with another model or recipe.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np

from index import copies
from index.articles import Article, Skipped, content_hash, covered, load_articles, source_name
from index.build import (
    MERGE_FACTOR,
    BuildError,
    BuildReport,
    Embed,
    Progress,
    _build_lock,
    _Pending,
    _Plan,
    _write_new_segment,
    embed_pending,
    log_merge,
    no_articles,
    reuse_problem,
)
from index.catalog import Catalog
from index.chunking import ChunkerSettings
from index.encoder import Encoder
from index.store import (
    SegmentKeys,
    commit,
    hash_key,
    id_key,
    load_segments,
    read_manifest,
    segment_bands,
    text_key64,
)


def update_index(
    index_dir: str | Path,
    encoder: Encoder,
    *,
    add: Sequence[str | Path] = (),
    remove: Iterable[str] = (),
    settings: ChunkerSettings | None = None,
    progress: Progress | None = None,
    max_chars: int = 1_000_000,
    embed: Embed | None = None,
) -> BuildReport:
    """Add the articles under `add` (new ids added, known ids replaced if their content
    changed) and remove the articles with ids `remove`, keeping every other article as it is.
    Raises BuildError (nothing changed) for an unknown id, an id both added and removed, or an
    index that must be rebuilt instead."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    settings = settings or ChunkerSettings()
    remove = list(dict.fromkeys(remove))
    articles, skipped = load_articles(add, max_chars=max_chars) if add else ([], [])
    if add and not articles and not remove:
        raise no_articles(add, skipped)
    both = sorted({a.id for a in articles} & set(remove))
    if both:
        raise BuildError(
            f"article {both[0]!r} is both added and removed; the index was not changed; "
            "add it or remove it"
        )
    read_manifest(index_dir)  # no index: say so before taking the lock
    try:
        with _build_lock(index_dir):
            # read under the lock: a build that committed meanwhile is what this one extends
            manifest = _updatable(index_dir, encoder, settings)
            return _update_locked(
                index_dir, manifest, encoder, articles, skipped, remove, add, settings,
                progress, embed, started,
            )  # fmt: skip
    except OSError as exc:  # disk full, read-only folder, ...: the old index is untouched
        raise BuildError(
            f"the update could not write to {index_dir} ({exc.strerror or exc}); the index was "
            "not changed; free space or fix permissions and try again"
        ) from exc


def _updatable(index_dir: Path, encoder: Encoder, settings: ChunkerSettings) -> dict:
    """The index's manifest, if its rows can be kept as they are by an update."""
    manifest = read_manifest(index_dir)
    if manifest.get("format") != 2:
        raise BuildError(
            f"the index at {index_dir} is in an older format; the index was not changed; "
            f"run `isnad index build PATH --index {index_dir}` once to convert it"
        )
    problem = reuse_problem(manifest, encoder, settings)
    if not problem and manifest.get("copy_signature") != copies.SIGNATURE:
        problem = "its wire-copy signatures were made another way"
    if problem:
        raise BuildError(
            f"the index at {index_dir} cannot be updated in place ({problem}); the index was "
            f"not changed; rebuild it with `isnad index build PATH --index {index_dir}`"
        )
    return manifest


@dataclass
class _Seg:
    """One segment of the index being updated: its manifest entry (deleted rows grow here),
    its keys, and which rows are live."""

    folder: Path
    entry: dict
    keys: SegmentKeys
    live: np.ndarray  # bool per local article row

    @classmethod
    def open(cls, index_dir: Path, entry: dict) -> _Seg:
        folder = index_dir / entry["name"]
        return cls(
            folder,
            dict(entry, deleted=list(entry["deleted"])),
            SegmentKeys(folder),
            _live_of(entry),
        )

    @cached_property
    def signatures(self) -> np.ndarray:
        return np.load(self.folder / "signatures.npy", mmap_mode="r")


def _update_locked(
    index_dir, manifest, encoder, articles, skipped, remove, add, settings, progress, embed,
    started,
):  # fmt: skip
    segs = [_Seg.open(index_dir, e) for e in manifest["segments"]]
    old_layout = _Layout.of(segs)
    found = _find(segs, {a.id for a in articles} | set(remove))
    unknown = [i for i in remove if i not in found]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise BuildError(
            f"no article {unknown[0]!r}{more} in the index at {index_dir}; the index was not "
            "changed; `isnad index status` counts what it holds"
        )

    fresh, changed, unchanged = [], [], 0
    for a in articles:
        h = content_hash(a)
        if a.id not in found:
            fresh.append((a, h))
        elif int(segs[found[a.id][0]].keys.hash[found[a.id][1]]) != hash_key(h):
            changed.append(a.id)
            fresh.append((a, h))
        else:
            unchanged += 1
    gone = [found[i] for i in changed + remove]
    fresh, dupes = _drop_known_texts(segs, fresh, set(gone))
    skipped = skipped + dupes
    added = [a.id for a, _ in fresh if a.id not in found]
    # a changed article whose new text another article already has is gone, as a build that
    # loads the other first would leave it out
    kept_ids = {a.id for a, _ in fresh}
    removed = remove + [i for i in changed if i not in kept_ids]
    changed = [i for i in changed if i in kept_ids]
    if not fresh and not gone:
        return _report(index_dir, manifest, [], [], [], unchanged, 0, 0, skipped, started, 0, 0)

    gone_articles = [segs[i].keys.article(r) for i, r in gone]
    for i, r in gone:
        segs[i].live[r] = False
        segs[i].entry["deleted"] = sorted(segs[i].entry["deleted"] + [r])

    new = _Plan()
    for a, h in fresh:
        new.add(a, h, settings)
    pending = _Pending(index_dir / "pending", encoder.model_id)
    embedded, resumed = embed_pending(new.texts_to_embed, pending, encoder, progress, embed)

    live_rows = [_live_rows(s.folder, s.entry, s.live) for s in segs]  # (chunks, sentences)
    merge = _to_merge(segs, [c for c, _ in live_rows], len(new.chunks))
    sub = None
    plan = _Plan()
    if merge:
        ordered = sorted(merge)
        sub = load_segments(index_dir, [segs[i].entry for i in ordered], encoder.dim)
        for r in range(len(sub.articles)):
            plan.reuse(sub, r)
    plan.extend(new)
    kept = [i for i in range(len(segs)) if i not in merge]
    entries = [segs[i].entry for i in kept]
    written = 0
    new_sigs = np.zeros((0, copies.NUM_PERM), np.uint64)
    if plan.articles:
        stored = sub.copy_signatures() if sub is not None else None
        entry, new_sigs = _write_new_segment(index_dir, plan, sub, pending, encoder, stored)
        entries.append(entry)
        written = 1

    # where each surviving article now lives: (position in `entries`, local row)
    layout = _Layout([_live_of(e) for e in entries])
    if sub is not None:
        merged_from = {ordered[i]: i for i in range(len(ordered))}
        sub_start = np.searchsorted(sub.article_segment, np.arange(len(ordered) + 1))
    kept_pos = {i: pos for pos, i in enumerate(kept)}

    def now(seg: int, r: int) -> int | None:
        """The updated index's row of old segment `seg`'s local row `r` (None: deleted)."""
        if not segs[seg].live[r]:
            return None
        if seg in kept_pos:
            return layout.row(kept_pos[seg], r)
        j = merged_from[seg]  # merged: its live rows come first in the new segment, in order
        lo = int(sub_start[j])
        local = int(np.searchsorted(sub.article_local[lo : sub_start[j + 1]], r))
        return layout.row(len(kept), lo + local)

    new_first = len(plan.articles) - len(new.articles)
    pairs, n_clusters, n_in = _clusters(
        old_layout, manifest.get("copy_clusters", []), now, layout, segs, kept, plan,
        new_sigs, new_first,
    )  # fmt: skip

    n_articles = layout.total
    new_entries = entries[len(kept) :]  # the segment written now: every row live
    counted = [live_rows[i] for i in kept] + [(e["chunks"], e["sentences"]) for e in new_entries]
    n_chunks, n_sents = sum(c for c, _ in counted), sum(n for _, n in counted)
    fresh_catalog = Catalog.of([a for a, _ in fresh])
    gone_catalog = Catalog.of(gone_articles)
    gone_ids = {a.id for a in gone_articles}
    counts = dict(manifest["counts"])
    counts.update(
        articles=n_articles,
        chunks=n_chunks,
        sentences=n_sents,
        skipped=counts.get("skipped", 0) + len(skipped),
        dated=counts.get("dated", 0)
        - int((gone_catalog.days >= 0).sum())
        + int((fresh_catalog.days >= 0).sum()),
        copy_clusters=n_clusters,
        articles_in_copy_clusters=n_in,
        segments=len(entries),
    )
    updated = dict(manifest)
    updated.update(
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sources=_sources_after(manifest.get("sources", []), add),
        counts=counts,
        segments=entries,
        copy_clusters=pairs,
        unreadable_dates=[
            d for d in manifest.get("unreadable_dates", []) if d["article_id"] not in gone_ids
        ]
        + [{"article_id": i, "published": p} for i, p in fresh_catalog.unparsed],
        skipped=manifest.get("skipped", [])
        + [{"source": s.source, "reason": s.reason} for s in skipped],
    )
    commit(index_dir, updated)
    pending.clear()
    return _report(
        index_dir, updated, added, changed, removed, unchanged, embedded, resumed, skipped,
        started, written, len(merge),
    )  # fmt: skip


def _report(index_dir, manifest, added, changed, removed, unchanged, embedded, resumed,
            skipped, started, written, merged) -> BuildReport:  # fmt: skip
    counts = manifest["counts"]
    return BuildReport(
        index_dir=index_dir,
        articles=counts["articles"],
        chunks=counts["chunks"],
        sentences=counts["sentences"],
        added=list(added),
        changed=list(changed),
        removed=list(removed),
        unchanged=unchanged,
        texts_embedded=embedded,
        texts_resumed=resumed,
        skipped=list(skipped),
        seconds=time.perf_counter() - started,
        segments_written=written,
        segments_merged=merged,
    )


def _find(segs: list[_Seg], ids: set[str]) -> dict[str, tuple[int, int]]:
    """Where each of `ids` lives: (segment position, local row) of its live row."""
    if not ids:
        return {}
    by_key: dict[int, list[str]] = {}
    for i in ids:
        by_key.setdefault(id_key(i), []).append(i)
    wanted = np.array(list(by_key), np.uint64)
    found = {}
    for pos, seg in enumerate(segs):
        for r in np.flatnonzero(np.isin(seg.keys.id, wanted) & seg.live).tolist():
            rec_id = seg.keys.record(r)["id"]  # the key matched; the id must too
            if rec_id in ids:
                found[rec_id] = (pos, r)
    return found


def _drop_known_texts(segs, fresh, gone: set[tuple[int, int]]):
    """New articles whose text an article staying in the index already has are skipped, as a
    build skips a second copy of one text (index.articles)."""
    if not fresh:
        return fresh, []
    keys = np.array([text_key64(a.text) for a, _ in fresh], np.uint64)
    holder: dict[int, str] = {}
    for pos, seg in enumerate(segs):
        for r in np.flatnonzero(np.isin(seg.keys.text, keys) & seg.live).tolist():
            if (pos, r) not in gone:
                holder.setdefault(int(seg.keys.text[r]), seg.keys.record(r)["id"])
    kept, dupes = [], []
    for (a, h), k in zip(fresh, keys.tolist(), strict=True):
        first = holder.get(k)
        if first is not None and first != a.id:
            reason = f"duplicate of article {first!r} (in the index): same text, loaded once"
            dupes.append(Skipped(a.id, reason))
        else:
            kept.append((a, h))
    return kept, dupes


def _live_rows(folder: Path, entry: dict, live: np.ndarray) -> tuple[int, int]:
    """Live chunks and sentences of a segment (its arrays read only if rows are deleted)."""
    if live.all():
        return entry["chunks"], entry["sentences"]
    with np.load(folder / "chunks.npz") as z:
        chunks = int(live[z["chunk_article"]].sum())
    with np.load(folder / "sentences.npz") as z:
        sents = int(live[z["sent_article"]].sum())
    return chunks, sents


def _live_of(entry: dict) -> np.ndarray:
    live = np.ones(entry["articles"], bool)
    live[np.asarray(entry["deleted"], np.int64)] = False
    return live


def _to_merge(segs: list[_Seg], live: list[int], new_chunks: int) -> set[int]:
    """The build's merge policy (index.build._to_merge) over segments known by their keys:
    more than half of a segment's chunks deleted, or MERGE_FACTOR segments of a size class."""
    merge = {i for i, seg in enumerate(segs) if live[i] * 2 < seg.entry["chunks"]}
    return log_merge(live, merge, new_chunks, MERGE_FACTOR)


class _Layout:
    """Rows of an index numbered 0..n-1 over the live rows of its segments, in order, with
    no per-row Python objects (a million rows)."""

    def __init__(self, live: list[np.ndarray]) -> None:
        self.live = live
        self.rank = [np.cumsum(m) - 1 for m in live]  # local row -> its number in the segment
        self.start = np.cumsum([0] + [int(m.sum()) for m in live])
        self.total = int(self.start[-1])
        self._local: dict[int, np.ndarray] = {}

    @classmethod
    def of(cls, segs: list[_Seg]) -> _Layout:
        return cls([s.live.copy() for s in segs])

    def row(self, pos: int, r: int) -> int:
        return int(self.start[pos] + self.rank[pos][r])

    def where(self, row: int) -> tuple[int, int]:
        pos = int(np.searchsorted(self.start, row, side="right")) - 1
        if pos not in self._local:
            self._local[pos] = np.flatnonzero(self.live[pos])
        return pos, int(self._local[pos][row - self.start[pos]])


def _clusters(old_layout, old_pairs, now, layout, segs, kept, plan, new_sigs, new_first):
    """The updated index's wire-copy clusters as the manifest keeps them ([row, first row of
    its cluster] for articles that have copies), and how many clusters and articles: the old
    clusters with their removed members left out (one that lost a member re-formed from the
    rest, whose links may have passed through it), joined by the pairs new articles make."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)

    members: dict[int, list[int]] = {}
    for row, first in old_pairs:
        members.setdefault(first, []).append(row)
    check: set[int] = set()  # rows whose links are checked again on their shingles
    for group in members.values():
        rows = [now(*old_layout.where(r)) for r in group]
        alive = [r for r in rows if r is not None]
        if len(alive) < len(rows):
            check.update(alive)
        for r in alive[1:]:
            if len(alive) == len(rows):
                union(alive[0], r)

    new_pos = len(kept)
    new_rows = range(new_first, len(plan.articles))
    check.update(layout.row(new_pos, r) for r in new_rows)
    if len(new_rows):
        bands = copies.band_keys(new_sigs[new_first:])

        def sharing(seg_bands: np.ndarray) -> np.ndarray:
            hit = np.zeros(len(seg_bands), bool)
            for k in range(copies.BANDS):
                hit |= np.isin(seg_bands[:, k], bands[:, k])
            return hit

        for pos, i in enumerate(kept):
            seg_bands = segment_bands(segs[i].folder)
            if seg_bands is not None:
                hit = sharing(seg_bands) & layout.live[pos]
                check.update(layout.row(pos, r) for r in np.flatnonzero(hit).tolist())
        if new_first:  # the merged articles that moved into the new segment
            hit = sharing(copies.band_keys(new_sigs[:new_first]))
            check.update(layout.row(new_pos, r) for r in np.flatnonzero(hit).tolist())
    if check:
        rows = sorted(check)
        where = [layout.where(r) for r in rows]
        arts = [_article(w, segs, kept, plan) for w in where]
        sigs = np.stack([_signature(w, segs, kept, new_sigs) for w in where])
        local = copies.clusters(arts, sigs, Catalog.of(arts).days)
        for i, c in enumerate(local.tolist()):
            if c != i:
                union(rows[i], rows[c])
    groups: dict[int, list[int]] = {}
    for r in parent:
        groups.setdefault(root(r), []).append(r)
    pairs = sorted([r, first] for first, rows in groups.items() if len(rows) > 1 for r in rows)
    return pairs, sum(len(g) > 1 for g in groups.values()), len(pairs)


def _article(where, segs, kept, plan) -> Article:
    pos, r = where
    if pos == len(kept):
        return plan.articles[r]
    return segs[kept[pos]].keys.article(r)


def _signature(where, segs, kept, new_sigs) -> np.ndarray:
    pos, r = where
    if pos == len(kept):
        return new_sigs[r]
    return segs[kept[pos]].signatures[r]


def _sources_after(sources: list[str], add: Sequence[str | Path]) -> list[str]:
    """The manifest's sources with the added paths that no source covers yet (a web-UI upload
    lands in a folder that is a source already: listed twice, a rebuild from the manifest's
    sources would have reported it a duplicate)."""
    out = list(sources)
    for path in add:
        if not covered(path, out):
            out.append(source_name(path))
    return out
