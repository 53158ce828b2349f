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

What this module does NOT do: serve queries (qa/), or parse files (index.articles).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
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
from index.lexical import LexicalIndex, tokenize
from index.store import (
    DAMAGED,
    EMBEDDED_TEXTS,
    Index,
    IndexError_,
    IndexMissing,
    embedded_with_older_recipe,
    load_index,
    read_chunk_tokens,
    read_manifest,
    write_index,
)
from index.vectors import range_means

Progress = Callable[[int, int], None]  # (texts embedded so far, texts to embed)
# embed(texts, on_shard, shard): embeds texts somewhere else (index.ray_embed), handing back
# (texts, vectors) `shard` at a time, in order, as they are done
Embed = Callable[[Sequence[str], Callable[[list[str], np.ndarray], None], int], None]
SHARD = 256  # texts per checkpoint file
# The title's words a sentence is embedded with: the whole title costs 8% more tokens for no
# measured gain (bench/answers.py crosswise, every cell within .006); without any title the
# Arabic figures fall by .04-.06 (a title vector added to the sentence's does not make up for it).
TITLE_WORDS = 6
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
        where = ", ".join(str(p) for p in paths)
        raise BuildError(
            f"no articles found in {where} ({len(skipped)} files skipped); the index was not "
            f"changed; {READS}"
        )
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
        # Longest first: each shard's batches carry little padding (7% faster here), and the
        # largest tensors come first, so later, smaller ones reuse their memory (shortest first
        # grew the peak RSS of a 3,000-article build from 1.8 GB to 2.7 GB).
        todo = [t for t in dict.fromkeys(plan.texts_to_embed) if t not in pending]
        todo.sort(key=len, reverse=True)
        resumed = len(set(plan.texts_to_embed)) - len(todo)
        done = 0

        def on_shard(group: list[str], vectors: np.ndarray) -> None:
            nonlocal done
            assert vectors.shape == (len(group), encoder.dim), "embedded shard has a wrong shape"
            pending.add(group, vectors)
            done += len(group)
            if progress is not None:
                progress(done, len(todo))

        if embed is None:
            for lo in range(0, len(todo), SHARD):
                group = todo[lo : lo + SHARD]
                on_shard(group, encoder.encode_documents(group))
        else:
            embed(todo, on_shard, SHARD)
            missing = sum(1 for t in todo if t not in pending)
            if missing:
                raise BuildError(
                    f"{missing} of {len(todo)} texts came back unembedded; the index was not "
                    "changed; build again to embed them"
                )

        sent_vectors = plan.assemble_sentence_vectors(old, pending, encoder.dim)
        chunk_arrays, sentence_arrays = plan.chunk_arrays(), plan.sentence_arrays()
        # Sentences cover every character but whitespace and no chunk is only whitespace
        # (index.chunking), so every chunk holds a sentence.
        lo, hi = sentence_ranges(*chunk_arrays.values(), *sentence_arrays.values())
        assert (hi > lo).all(), "a chunk without a sentence"
        chunk_vectors = range_means(sent_vectors, lo, hi)
        chunk_tokens = _chunk_tokens(articles, plan.chunks, old)
        lexical = LexicalIndex.from_tokens(chunk_tokens)
        signatures = _copy_signatures(articles, plan.hashes, old)
        catalog = Catalog.of(articles)
        cluster = copies.clusters(articles, signatures, catalog.days)
        sizes = np.bincount(cluster, minlength=len(articles))
        manifest = {
            "model": {"id": encoder.model_id, "dim": encoder.dim},
            "chunker": settings.as_dict(),
            "embedded_texts": EMBEDDED_TEXTS,
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "sources": [source_name(p) for p in paths],
            "counts": {
                "articles": len(articles),
                "chunks": len(chunk_tokens),
                "sentences": len(sent_vectors),
                "skipped": len(skipped),
                "dated": int((catalog.days >= 0).sum()),
                "copy_clusters": int((sizes > 1).sum()),
                "articles_in_copy_clusters": int((sizes[cluster] > 1).sum()),
            },
            # dates that did not parse (index.dates): kept as text, listed by `index status`
            "copy_signature": copies.SIGNATURE,
            "unreadable_dates": [{"article_id": i, "published": p} for i, p in catalog.unparsed],
            "articles": {a.id: h for a, h in zip(articles, plan.hashes, strict=True)},
            "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        }
        write_index(
            index_dir,
            manifest=manifest,
            articles=articles,
            hashes=plan.hashes,
            chunk_arrays=chunk_arrays,
            chunk_vectors=chunk_vectors,
            sentence_arrays={**sentence_arrays, "sent_vectors": sent_vectors},
            lexical=lexical,
            chunk_tokens=chunk_tokens,
            copy_signatures=signatures,
            copy_cluster=cluster,
            calibration=_calibration(articles, plan, encoder, len(chunk_tokens), len(sent_vectors)),
        )
        pending.clear()

    old_ids = set(old.article_row) if old else set()
    return BuildReport(
        index_dir=index_dir,
        articles=len(articles),
        chunks=len(chunk_tokens),
        sentences=len(sent_vectors),
        added=[a.id for a in articles if a.id not in old_ids],
        changed=plan.changed,
        removed=sorted(old_ids - {a.id for a in articles}),
        unchanged=plan.unchanged,
        texts_embedded=len(todo),
        texts_resumed=resumed,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        note=note,
    )


def sentence_text(article: Article, start: int, end: int) -> str:
    """What a sentence is embedded as: the first TITLE_WORDS words of its article's title, then
    the sentence. A title made from the article's lead (index.articles.title_from_lead) is left
    out: it would lend every sentence the lead's meaning, and the lead would no longer stand out
    for what it says."""
    if title_from_lead(article):
        return article.text[start:end]
    return f"{' '.join(article.title.split()[:TITLE_WORDS])}: {article.text[start:end]}"


def _previous(index_dir: Path, encoder: Encoder, settings: ChunkerSettings):
    """The current index if its vectors can be reused, and a note on why not otherwise."""
    try:
        manifest = read_manifest(index_dir)
    except IndexMissing:
        return None, ""
    except IndexError_ as exc:
        return None, f"previous index not reused: {exc}"
    if manifest["model"]["id"] != encoder.model_id:
        return None, f"model changed from {manifest['model']['id']}: every article re-embedded"
    if manifest["chunker"] != settings.as_dict():
        return None, "chunker settings changed: every article re-chunked and re-embedded"
    if embedded_with_older_recipe(manifest):
        return None, "what is embedded changed (sentences only): every article re-embedded"
    try:
        return load_index(index_dir, encoder_model_id=encoder.model_id), ""
    except IndexError_ as exc:
        return None, f"previous index not reused: {exc}"


class _Plan:
    """Per article: reuse the old rows (unchanged hash) or chunk and split it anew."""

    def __init__(self) -> None:
        self.hashes: list[str] = []
        self.changed: list[str] = []
        self.unchanged = 0
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


def _plan(articles: list[Article], old: Index | None, settings: ChunkerSettings) -> _Plan:
    plan = _Plan()
    old_chunks_by_article: dict[int, list[int]] = {}
    if old is not None:
        for row, a in enumerate(old.chunk_article.tolist()):
            old_chunks_by_article.setdefault(a, []).append(row)
    for row, article in enumerate(articles):
        h = content_hash(article)
        plan.hashes.append(h)
        old_row = old.article_row.get(article.id) if old else None
        if old_row is not None and old.article_hash[old_row] == h:
            plan.unchanged += 1
            for r in old_chunks_by_article.get(old_row, []):
                plan.chunks.append(
                    (row, int(old.chunk_start[r]), int(old.chunk_end[r]), ("old", r))
                )
            for r in old.sentence_rows(old_row):
                plan.sents.append((row, int(old.sent_start[r]), int(old.sent_end[r]), ("old", r)))
            continue
        if old_row is not None:
            plan.changed.append(article.id)
        for c in chunk_article(article, settings):  # its vector: the mean of its sentences'
            plan.chunks.append((row, c.start, c.end, ("new", None)))
        for s, e in split_sentences(article.text):
            text = sentence_text(article, s, e)
            plan.sents.append((row, s, e, ("new", text)))
            plan.texts_to_embed.append(text)
    return plan


def _calibration(articles, plan, encoder: Encoder, n_chunks: int, n_sents: int):
    """Question-like vectors to tune an IVF index's nprobe on (index.vectors), only when the
    index is past the exact-search bound: CALIBRATION sentences of the corpus, embedded as
    queries (stored vectors stand in for questions poorly: questions lie off the corpus)."""
    if max(n_chunks, n_sents) <= vector_search.FLAT_MAX:
        return None
    rng = np.random.default_rng(0)
    rows = rng.choice(len(plan.sents), size=min(CALIBRATION, len(plan.sents)), replace=False)
    texts = [articles[plan.sents[r][0]].text[plan.sents[r][1] : plan.sents[r][2]] for r in rows]
    return encoder.encode_queries(texts)


def _copy_signatures(articles: list[Article], hashes: list[str], old: Index | None) -> np.ndarray:
    """MinHash signatures (index.copies): the stored ones of unchanged articles, new ones for
    the rest."""
    out = np.empty((len(articles), copies.NUM_PERM), dtype=np.uint64)
    todo = []
    stored = (
        old is not None
        and old.copy_signatures is not None
        and old.manifest.get("copy_signature") == copies.SIGNATURE
    )
    for row, (a, h) in enumerate(zip(articles, hashes, strict=True)):
        old_row = old.article_row.get(a.id) if stored else None
        if old_row is not None and old.article_hash[old_row] == h:
            out[row] = old.copy_signatures[old_row]
        else:
            todo.append(row)
    if todo:
        out[todo] = copies.signatures([articles[r] for r in todo])
    return out


def _chunk_tokens(articles: list[Article], chunks, old: Index | None) -> list[list[str]]:
    """BM25 tokens per chunk: the stored ones for reused chunks, tokenised anew otherwise."""
    stored = read_chunk_tokens(old) if old is not None else None
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
    """Embeddings computed by this (or an interrupted earlier) build, keyed by text."""

    def __init__(self, folder: Path, model_id: str) -> None:
        self.folder = folder / hashlib.sha1(model_id.encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.folder.glob("shard-*.npz")):
            try:
                with np.load(shard) as data:
                    keys, vecs = data["keys"], data["vectors"]
            except DAMAGED:
                continue  # a shard cut short by a kill: its texts are embedded again
            self.vectors.update(zip(keys.tolist(), vecs, strict=True))
        self._next = len(list(self.folder.glob("shard-*.npz")))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __contains__(self, text: str) -> bool:
        return self.key(text) in self.vectors

    def __getitem__(self, text: str) -> np.ndarray:
        return self.vectors[self.key(text)]

    def add(self, texts: list[str], vectors: np.ndarray) -> None:
        keys = [self.key(t) for t in texts]
        self.vectors.update(zip(keys, vectors, strict=True))
        name = self.folder / f"shard-{self._next:06d}.npz"
        tmp = self.folder / f".shard-{self._next:06d}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), vectors=vectors)
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
