"""The index directory on disk: segments written once, a manifest that commits them, loads
with checks.

Layout of an index directory:

    manifest.json        the commit point: format, model, chunker, counts, and the segments
                         that make up the index, each with its deleted articles (the articles'
                         content hashes live in their segments)
    seg-<token>/         one segment: the articles one build added, never modified once a
                         manifest names it
        articles.jsonl   id, title, meta, hash per article
        texts.bin        the articles' texts, UTF-8, one after another (kept: citations are
                         checked against them, whether or not the corpus folder is still
                         there), and texts.npy their byte offsets; a text is read from disk
                         when asked for (StoredArticle), so a large index does not hold every
                         text in memory
        chunks.npz       chunk_article, chunk_start, chunk_end (int32; article rows local to
                         the segment)
        vectors.npy      chunk vectors, float32 (n_chunks, dim), memory-mapped on load (each the
                         unit mean of its sentences' vectors: index.build)
        sentences.npz    sent_article, sent_start, sent_end (int32)
        sent_vectors.npy sentence vectors, float32, memory-mapped on load
        faiss.index      the chunk vectors' FAISS index (index.vectors: exact up to a size
                         bound, IVF-SQ8 above, memory-mapped)
        sentences.faiss  likewise for the sentences, only above the bound
        postings*.np[yz]  the chunks' BM25 postings (index.lexical.Postings) and lexical.json
        tokens.txt       each chunk's BM25 tokens, one line per chunk, so a merge tokenises
                         nothing again
        signatures.npy   per article its MinHash signature (index.copies), and bands.npy its
                         LSH band keys, so an added article finds its copies without reading
                         every signature
        keys.npz         per article 64-bit keys of its id, content hash and text, and where
                         its line of articles.jsonl starts: `isnad index add/remove` finds an
                         article by id without reading the segment's articles.jsonl
    pending/             embeddings of an unfinished build, so a killed build resumes

A build writes at most one new segment (the new and changed articles, plus the live articles
of any segments it merges: index.build), then replaces `manifest.json` (os.replace) to name the
segments that now make up the index and the articles deleted from each (changed or removed
ones: their rows stay on disk, masked, until a merge drops them), then removes what no manifest
names. A build killed at any moment leaves the previous manifest and its segments intact.
Collection-wide results are recomputed on each commit and kept in the manifest: counts, the
wire-copy clusters (only articles that have copies).

Loading concatenates the live rows of every segment, so the rest of isnad sees one index with
rows numbered 0..n-1 in segment order; vector searches run per segment with deleted rows
excluded inside the search (index.vectors.Segments). An index written in format 1 (one
`data-*` folder) is read as one segment; the next build rewrites it as a segment without
embedding anything again.

What this module does NOT do: decide what to (re-)embed or merge; that is `index.build`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from index import copies
from index import vectors as vector_search
from index.articles import Article, text_key
from index.catalog import Catalog
from index.chunking import Chunk
from index.lexical import TOKENIZER_VERSION, LexicalIndex, LexicalIndexError, Postings
from index.vectors import build_vector_index, read_vector_index

FORMAT_VERSION = 2  # 1: one data-* folder per build (still read, rewritten by the next build)
READ_FORMATS = (1, 2)
# What is embedded, and how (index.build.sentence_text): an index built with another recipe is
# re-embedded by the next build. 2: only sentences, with the title's first words; a chunk's
# vector is the mean of its sentences' (before: chunks embedded too, sentences with the whole
# title). Manifests written before the key was recorded are recipe 1.
EMBEDDED_TEXTS = 2
# What reading a damaged or cut-short file raises (a truncated .npz: BadZipFile or EOFError).
DAMAGED = (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile)
MANIFEST = "manifest.json"


class IndexError_(Exception):
    """The index is missing, damaged or built differently; the message says what to run."""


class IndexMissing(IndexError_):
    pass


class IndexMismatch(IndexError_):
    pass


def default_data_dir() -> Path:
    """isnad's per-user data folder: $XDG_DATA_HOME/isnad, else ~/.local/share/isnad."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "isnad"


def default_index_dir() -> Path:
    """$ISNAD_INDEX, else a per-user data folder (never the `index/` package of this repo)."""
    env = os.environ.get("ISNAD_INDEX")
    return Path(env) if env else default_data_dir() / "index"


class TextStore:
    """A segment's article texts: texts.bin read with pread when a text is asked for (the last
    few hundred kept decoded: a question reads the same articles many times). Not mapped: a
    page fault on a mapping also maps the neighbouring pages the page cache holds, and over a
    million articles the texts read by 900 questions would stay resident in the process."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path, self.offsets = path, offsets
        self._fd: int | None = None
        self.text = functools.lru_cache(maxsize=512)(self._read)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _read(self, row: int) -> str:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        start, end = int(self.offsets[row]), int(self.offsets[row + 1])
        data = os.pread(self._fd, end - start, start)
        if len(data) != end - start:
            raise OSError(f"{self.path} is shorter than its offsets say")
        return data.decode("utf-8")

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


class StoredArticle(Article):
    """An article of a loaded index: id, title and meta in memory, the text read from its
    segment's TextStore when asked for. Equal to an Article with the same fields."""

    def __init__(self, id: str, title: str, meta: dict, texts: TextStore, row: int) -> None:
        for name, value in (("id", id), ("title", title), ("meta", meta)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_texts", texts)
        object.__setattr__(self, "_row", row)

    @property
    def text(self) -> str:
        return self._texts.text(self._row)

    def __reduce__(self):  # copied or pickled (UI state, conversations): a plain Article
        return Article, (self.id, self.title, self.text, self.meta)

    def __eq__(self, other) -> bool:  # as Article's: meta does not count
        if not isinstance(other, Article):
            return NotImplemented
        return (self.id, self.title, self.text) == (other.id, other.title, other.text)

    def __hash__(self) -> int:
        return hash((self.id, self.title, self.text))


@dataclass
class Index:
    path: Path
    manifest: dict
    articles: list[Article]
    article_row: dict[str, int]
    article_hash: list[str]
    chunk_article: np.ndarray
    chunk_start: np.ndarray
    chunk_end: np.ndarray
    chunk_vectors: np.ndarray  # or a vector_search.Rows over several segments (large indexes)
    faiss_index: object  # a FAISS index, or vector_search.Segments
    lexical: LexicalIndex
    sent_article: np.ndarray
    sent_start: np.ndarray
    sent_end: np.ndarray
    sent_vectors: np.ndarray
    sentence_index: object | None = None  # FAISS search over sent_vectors (large indexes only)
    copy_cluster: np.ndarray | None = None  # per article: its cluster's first article row
    segments: list[_Segment] = field(default_factory=list)
    article_segment: np.ndarray | None = None  # per article: its segment's position
    article_local: np.ndarray | None = None  # per article: its row within that segment

    @cached_property
    def catalog(self) -> Catalog:
        """Dates, sources, categories and wire-copy clusters of the articles (index.catalog)."""
        return Catalog.of(self.articles, self.copy_cluster)

    @property
    def model_id(self) -> str:
        return self.manifest["model"]["id"]

    def __len__(self) -> int:
        return len(self.chunk_start)

    def chunk(self, i: int) -> Chunk:
        a = self.articles[self.chunk_article[i]]
        return Chunk(a.id, int(self.chunk_start[i]), int(self.chunk_end[i]))

    def chunk_text(self, i: int) -> str:
        return self.articles[self.chunk_article[i]].text[self.chunk_start[i] : self.chunk_end[i]]

    def sentence_rows(self, article_row: int) -> range:
        lo, hi = np.searchsorted(self.sent_article, [article_row, article_row + 1])
        return range(int(lo), int(hi))

    def copy_signatures(self) -> np.ndarray | None:
        """Every article's MinHash signature (index.copies), read from the segments now (only
        a build needs them); None if a segment has none."""
        parts = []
        for seg in self.segments:
            if seg.signatures is None:
                return None
            parts.append(np.asarray(seg.signatures)[seg.live_articles])
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.uint64)

    def chunk_tokens(self, rows=None) -> dict[int, list[str]] | None:
        """The stored BM25 tokens of chunk `rows` (default: every chunk), read only from the
        segments that hold them (a merge reads the merged segments, not the index); None if
        one of them has none."""
        rows = np.arange(len(self)) if rows is None else np.unique(np.asarray(rows, np.int64))
        starts = np.cumsum([0] + [seg.live_chunk_count for seg in self.segments])
        which = np.searchsorted(starts, rows, side="right") - 1
        out: dict[int, list[str]] = {}
        for i in np.unique(which).tolist():
            seg = self.segments[i]
            tokens = seg.tokens()
            if tokens is None:
                return None
            local = np.flatnonzero(seg.live_chunks)
            for r in rows[which == i].tolist():
                out[r] = tokens[local[r - starts[i]]]
        return out


@dataclass
class _Segment:
    """One segment as loaded: its folder, what the manifest says of it, and which rows live."""

    folder: Path
    entry: dict  # the manifest's entry: name, counts, deleted (local article rows)
    legacy: bool  # a format-1 data folder
    live_articles: np.ndarray  # bool per article of the segment
    live_chunks: np.ndarray
    live_sentences: np.ndarray
    signatures: np.ndarray | None

    @property
    def name(self) -> str:
        return self.entry["name"]

    @property
    def live_chunk_count(self) -> int:
        return int(self.live_chunks.sum())

    def tokens(self) -> list[list[str]] | None:
        try:
            tokens = _read_tokens(self.folder)
        except OSError:
            return None
        return tokens if len(tokens) == len(self.live_chunks) else None


def _read_tokens(folder: Path) -> list[list[str]]:
    """A segment's tokens.txt: each chunk's BM25 tokens."""
    with open(folder / "tokens.txt", encoding="utf-8") as f:
        return [line.split() for line in f]


def read_manifest(index_dir: Path) -> dict:
    """The manifest of `index_dir`, checked for format; IndexMissing if there is no index."""
    path = Path(index_dir) / MANIFEST
    if not path.is_file():
        raise IndexMissing(
            f"no index at {index_dir}; build one with `isnad index build PATH --index {index_dir}`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexError_(
            f"the index manifest {path} is unreadable ({exc}); "
            f"rebuild with `isnad index build PATH --index {index_dir}`"
        ) from exc
    if manifest.get("format") not in READ_FORMATS:
        raise IndexMismatch(
            f"the index at {index_dir} has format {manifest.get('format')}, this isnad reads "
            f"formats {READ_FORMATS}; rebuild with `isnad index build PATH --index {index_dir}`"
        )
    return manifest


def segment_entries(manifest: dict) -> list[dict]:
    """The manifest's segments (a format-1 index: its one data folder, nothing deleted)."""
    if manifest.get("format") == 1:
        return [{"name": manifest["data"], "deleted": []}]
    return manifest["segments"]


def load_index(index_dir: Path, *, encoder_model_id: str | None = None) -> Index:
    """Load and check the index at `index_dir`.

    `encoder_model_id`, when given, must be the model the index was built with: vectors of
    two different models cannot be compared.
    """

    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    rebuild = f"rebuild with `isnad index build PATH --index {index_dir}`"
    try:
        built_with, dim = manifest["model"]["id"], manifest["model"]["dim"]
        counts, entries = manifest["counts"], segment_entries(manifest)
    except (KeyError, TypeError) as exc:
        raise IndexError_(f"the index manifest at {index_dir} is incomplete; {rebuild}") from exc
    if encoder_model_id is not None and encoder_model_id != built_with:
        raise IndexMismatch(
            f"the index at {index_dir} was built with model {built_with!r}, not "
            f"{encoder_model_id!r}; rebuild with `isnad index build PATH --index {index_dir}` "
            "or use the same --model"
        )
    legacy = manifest["format"] == 1
    try:
        parts = [_read_segment(index_dir / e["name"], e, legacy, dim) for e in entries]
    except (*DAMAGED, LexicalIndexError) as exc:
        raise IndexError_(f"the index at {index_dir} is damaged ({exc}); {rebuild}") from exc
    index = _concatenate(index_dir, manifest, parts, legacy)
    sizes_ok = (
        len(index.articles) == counts["articles"]
        and len(index) == counts["chunks"]
        and len(index.sent_start) == counts["sentences"]
        and index.faiss_index.ntotal == len(index)
        and len(index.lexical) == len(index)
        and (index.sentence_index is None or index.sentence_index.ntotal == counts["sentences"])
    )
    if not sizes_ok:
        raise IndexError_(f"the index at {index_dir} is inconsistent (sizes differ); {rebuild}")
    return index


def load_segments(index_dir: Path, entries: list[dict], dim: int) -> Index:
    """An index over only the segments `entries` name (rows numbered over them alone): what a
    merge reads, without loading the rest of a large index."""
    try:
        parts = [_read_segment(Path(index_dir) / e["name"], e, False, dim) for e in entries]
    except (*DAMAGED, LexicalIndexError) as exc:
        raise IndexError_(
            f"the index at {index_dir} is damaged ({exc}); "
            f"rebuild with `isnad index build PATH --index {index_dir}`"
        ) from exc
    return _concatenate(Path(index_dir), {"model": {"dim": dim}}, parts, False)


@dataclass
class _Read:
    """A segment's files as read (vectors memory-mapped)."""

    segment: _Segment
    articles: list[Article]
    hashes: list[str]
    chunks: dict[str, np.ndarray]
    sents: dict[str, np.ndarray]
    vectors: np.ndarray
    sent_vectors: np.ndarray
    fidx: object
    sidx: object | None
    postings: Postings
    cluster: np.ndarray | None  # a format-1 index's copy clusters (later ones: the manifest)


def _read_segment(folder: Path, entry: dict, legacy: bool, dim: int) -> _Read:
    articles, hashes = [], []
    texts = None
    if (folder / "texts.bin").exists():
        texts = TextStore(folder / "texts.bin", np.load(folder / "texts.npy"))
    with open(folder / "articles.jsonl", encoding="utf-8") as f:
        for row, line in enumerate(f):
            rec = json.loads(line)
            if texts is None:  # format 1 (and early segments) kept the texts here
                articles.append(Article(rec["id"], rec["title"], rec["text"], rec["meta"]))
            else:
                articles.append(StoredArticle(rec["id"], rec["title"], rec["meta"], texts, row))
            hashes.append(rec["hash"])
    if texts is not None and len(texts) != len(articles):
        raise ValueError(
            f"segment {folder.name} has {len(texts)} texts for {len(articles)} articles"
        )
    with np.load(folder / "chunks.npz") as z:
        chunks = {k: z[k] for k in ("chunk_article", "chunk_start", "chunk_end")}
    with np.load(folder / "sentences.npz") as z:
        sents = {k: z[k] for k in z.files}
    if (folder / "sent_vectors.npy").exists():
        sent_vectors = _mapped(folder / "sent_vectors.npy")
    else:  # written before sentence vectors had a file of their own
        sent_vectors = sents.pop("sent_vectors")
    vectors = _mapped(folder / "vectors.npy")
    fidx = read_vector_index(folder / "faiss.index")
    sidx = None
    if (folder / "sentences.faiss").exists():
        sidx = read_vector_index(folder / "sentences.faiss")
    signatures = cluster = None
    if legacy:
        postings = _legacy_postings(folder, len(chunks["chunk_start"]))
        if (folder / "copies.npz").exists():
            with np.load(folder / "copies.npz") as z:
                signatures, cluster = z["signatures"], z["cluster"]
    else:
        postings = Postings.load(folder)
        signatures = np.load(folder / "signatures.npy", mmap_mode="r")
    n_art, n_chunks, n_sents = len(articles), len(chunks["chunk_start"]), len(sent_vectors)
    sizes_ok = (
        vectors.shape == (n_chunks, dim)
        and sent_vectors.shape == (n_sents, dim)
        and len(sents["sent_start"]) == n_sents
        and fidx.ntotal == n_chunks
        and fidx.d == dim
        and len(postings) == n_chunks
        and (sidx is None or sidx.ntotal == n_sents)
        and (signatures is None or len(signatures) == n_art)
        and (cluster is None or len(cluster) == n_art)
        and all(0 <= r < n_art for r in entry["deleted"])
    )
    if not sizes_ok:
        raise ValueError(f"segment {folder.name}'s files disagree in size")
    live = np.ones(n_art, bool)
    live[np.asarray(entry["deleted"], np.int64)] = False
    segment = _Segment(
        folder=folder,
        entry=entry,
        legacy=legacy,
        live_articles=live,
        live_chunks=live[chunks["chunk_article"]],
        live_sentences=live[sents["sent_article"]],
        signatures=signatures,
    )
    return _Read(
        segment=segment,
        articles=articles,
        hashes=hashes,
        chunks=chunks,
        sents=sents,
        vectors=vectors,
        sent_vectors=sent_vectors,
        fidx=fidx,
        sidx=sidx,
        postings=postings,
        cluster=cluster,
    )


def _mapped(path: Path) -> np.ndarray:
    """A .npy array memory-mapped for random reads: a question reads a few thousand scattered
    rows, and the kernel's default read-ahead would bring in ~30 pages around each (a million-
    chunk index then held 5 GB of its files in memory after 100 questions)."""
    array = np.load(path, mmap_mode="r")
    if hasattr(array, "_mmap") and array._mmap is not None and hasattr(mmap, "MADV_RANDOM"):
        array._mmap.madvise(mmap.MADV_RANDOM)
    return array


def _legacy_postings(folder: Path, n_chunks: int) -> Postings:
    """A format-1 segment's BM25 postings, from its stored tokens (its bm25s files are not read
    any more)."""
    try:
        tokens = _read_tokens(folder)
        lexical = json.loads((folder / "lexical" / "lexical.json").read_text(encoding="utf-8"))
    except OSError as exc:
        raise LexicalIndexError(f"{folder.name} has no usable BM25 tokens ({exc})") from exc
    if lexical.get("tokenizer_version") != TOKENIZER_VERSION or len(tokens) != n_chunks:
        raise LexicalIndexError(f"{folder.name}'s BM25 tokens are stale")
    return Postings.from_tokens(tokens)


def _concatenate(index_dir: Path, manifest: dict, parts: list[_Read], legacy: bool) -> Index:
    """One index over the live rows of every segment, numbered in segment order."""
    articles, hashes, seg_of, local_of = [], [], [], []
    chunk_cols = {k: [] for k in ("chunk_article", "chunk_start", "chunk_end")}
    sent_cols = {k: [] for k in ("sent_article", "sent_start", "sent_end")}
    for i, part in enumerate(parts):
        seg = part.segment
        number = np.cumsum(seg.live_articles) - 1 + len(articles)  # local row -> index row
        live = np.flatnonzero(seg.live_articles)
        articles += [part.articles[r] for r in live]
        hashes += [part.hashes[r] for r in live]
        seg_of.append(np.full(len(live), i, np.int32))
        local_of.append(live.astype(np.int32))
        for cols, arrays, mask, prefix in (
            (chunk_cols, part.chunks, seg.live_chunks, "chunk"),
            (sent_cols, part.sents, seg.live_sentences, "sent"),
        ):
            cols[f"{prefix}_article"].append(number[arrays[f"{prefix}_article"][mask]])
            cols[f"{prefix}_start"].append(arrays[f"{prefix}_start"][mask])
            cols[f"{prefix}_end"].append(arrays[f"{prefix}_end"][mask])

    def cat(arrays):
        return np.concatenate(arrays).astype(np.int32) if arrays else np.zeros(0, np.int32)

    chunks = {k: cat(v) for k, v in chunk_cols.items()}
    sents = {k: cat(v) for k, v in sent_cols.items()}
    segments = [p.segment for p in parts]
    whole = len(parts) == 1 and parts[0].segment.live_articles.all()
    if whole:
        (p,) = parts
        chunk_vectors, sent_vectors, fidx, sidx = p.vectors, p.sent_vectors, p.fidx, p.sidx
    else:
        chunk_vectors = vector_search.stack_rows(
            [(p.vectors, p.segment.live_chunks) for p in parts]
        )
        sent_vectors = vector_search.stack_rows(
            [(p.sent_vectors, p.segment.live_sentences) for p in parts]
        )
        fidx = vector_search.Segments([(p.fidx, p.vectors, p.segment.live_chunks) for p in parts])
        sidx = None
        if len(sents["sent_start"]) > vector_search.FLAT_MAX:
            sidx = vector_search.Segments(
                [(p.sidx, p.sent_vectors, p.segment.live_sentences) for p in parts]
            )
    if legacy:
        cluster = parts[0].cluster
    else:
        cluster = np.arange(len(articles), dtype=np.int64)
        for row, first in manifest.get("copy_clusters", []):
            cluster[row] = first
    return Index(
        path=index_dir,
        manifest=manifest,
        articles=articles,
        article_row={a.id: i for i, a in enumerate(articles)},
        article_hash=hashes,
        **chunks,
        chunk_vectors=chunk_vectors,
        faiss_index=fidx,
        lexical=LexicalIndex(
            [p.postings for p in parts], [None if whole else p.segment.live_chunks for p in parts]
        ),
        **sents,
        sent_vectors=sent_vectors,
        sentence_index=sidx,
        copy_cluster=cluster,
        segments=segments,
        article_segment=np.concatenate(seg_of) if seg_of else np.zeros(0, np.int32),
        article_local=np.concatenate(local_of) if local_of else np.zeros(0, np.int32),
    )


def id_key(article_id: str) -> int:
    """A 64-bit key of an article id (keys.npz; equal ids give equal keys, the id itself is
    checked against articles.jsonl after a match)."""
    digest = hashlib.blake2b(article_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash_key(content_hash: str) -> int:
    """The first 64 bits of an article's content hash (index.articles.content_hash)."""
    return int(content_hash[:16], 16)


def text_key64(text: str) -> int:
    """The first 64 bits of index.articles.text_key: equal for texts a build loads once."""
    return int.from_bytes(text_key(text)[:8], "little")


class SegmentKeys:
    """A segment's keys.npz (id, content-hash and text keys per article, and where each
    article's line starts in articles.jsonl), for finding articles by id without loading the
    segment. A segment written before keys.npz existed gets one made from its articles.jsonl
    and texts the first time (a derived file: written atomically, or only kept in memory if
    the folder is read-only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        try:
            with np.load(folder / "keys.npz") as z:
                arrays = {k: z[k] for k in ("id", "hash", "text", "line")}
        except FileNotFoundError:
            arrays = self._derive()
        self.id, self.hash = arrays["id"], arrays["hash"]
        self.text, self.line = arrays["text"], arrays["line"]

    @functools.cached_property
    def texts(self) -> TextStore | None:
        """The segment's texts (None in segments written before texts.bin: they are inline)."""
        if not (self.folder / "texts.bin").exists():
            return None
        return TextStore(self.folder / "texts.bin", np.load(self.folder / "texts.npy"))

    def _derive(self) -> dict[str, np.ndarray]:
        ids, hashes, texts, lines = [], [], [], []
        store = self.texts
        with open(self.folder / "articles.jsonl", "rb") as f:
            row, pos = 0, 0
            for raw in f:
                rec = json.loads(raw)
                ids.append(id_key(rec["id"]))
                hashes.append(hash_key(rec["hash"]))
                texts.append(text_key64(store._read(row) if store else rec["text"]))
                lines.append(pos)
                row, pos = row + 1, pos + len(raw)
        arrays = {
            "id": np.array(ids, np.uint64),
            "hash": np.array(hashes, np.uint64),
            "text": np.array(texts, np.uint64),
            "line": np.array(lines, np.int64),
        }
        try:
            _save_keys(self.folder, arrays, atomic=True)
        except OSError:
            pass
        return arrays

    def record(self, row: int) -> dict:
        """Article `row`'s line of articles.jsonl: id, title, meta, hash (and, in segments
        written before texts.bin, text)."""
        with open(self.folder / "articles.jsonl", "rb") as f:
            f.seek(int(self.line[row]))
            return json.loads(f.readline())

    def article(self, row: int) -> Article:
        rec = self.record(row)
        text = rec["text"] if "text" in rec else self.texts.text(row)
        return Article(rec["id"], rec["title"], text, rec["meta"])


def _save_keys(folder: Path, arrays: dict[str, np.ndarray], *, atomic: bool = False) -> None:
    if atomic:  # into a segment that is already part of the index
        _replace_file(folder / "keys.npz", lambda f: np.savez(f, **arrays))
    else:
        np.savez(folder / "keys.npz", **arrays)


def segment_bands(folder: Path) -> np.ndarray | None:
    """A segment's LSH band keys (index.copies.band_keys), from bands.npy, or made from its
    signatures (and saved) for a segment written before bands.npy; None if it has neither."""
    try:
        return np.load(folder / "bands.npy", mmap_mode="r")
    except FileNotFoundError:
        pass
    try:
        sigs = np.load(folder / "signatures.npy", mmap_mode="r")
    except FileNotFoundError:
        return None
    bands = copies.band_keys(sigs)
    try:
        _replace_file(folder / "bands.npy", lambda f: np.save(f, bands))
    except OSError:
        pass
    return bands


def write_segment(
    index_dir: Path,
    *,
    articles: list[Article],
    hashes: list[str],
    chunk_arrays: dict[str, np.ndarray],
    chunk_vectors: np.ndarray,
    sentence_arrays: dict[str, np.ndarray],
    sent_vectors: np.ndarray,
    chunk_tokens: list[list[str]],
    copy_signatures: np.ndarray,
    calibration: np.ndarray | None = None,
) -> dict:
    """Write a new segment folder (not yet part of the index: `commit` makes it so). Returns
    its manifest entry.

    `calibration`: query vectors an IVF index's nprobe is tuned on (index.vectors), when the
    chunks or sentences are past the exact-search bound."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"seg-{secrets.token_hex(6)}"
    tmp = index_dir / f".{name}.tmp"
    tmp.mkdir()
    try:
        offsets = np.zeros(len(articles) + 1, np.int64)
        lines = np.zeros(len(articles), np.int64)
        with open(tmp / "articles.jsonl", "wb") as f, open(tmp / "texts.bin", "wb") as t:
            for i, (a, h) in enumerate(zip(articles, hashes, strict=True)):
                rec = {"id": a.id, "title": a.title, "meta": dict(a.meta), "hash": h}
                line = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
                lines[i] = f.tell()
                f.write(line)
                offsets[i + 1] = offsets[i] + t.write(a.text.encode("utf-8"))
        np.save(tmp / "texts.npy", offsets)
        np.savez(tmp / "chunks.npz", **chunk_arrays)
        np.savez(tmp / "sentences.npz", **sentence_arrays)
        np.save(tmp / "sent_vectors.npy", sent_vectors)
        np.save(tmp / "vectors.npy", chunk_vectors)
        fidx = build_vector_index(chunk_vectors, queries=calibration)
        faiss.write_index(fidx, str(tmp / "faiss.index"))
        if len(sent_vectors) > vector_search.FLAT_MAX:
            sidx = build_vector_index(sent_vectors, queries=calibration)
            faiss.write_index(sidx, str(tmp / "sentences.faiss"))
        Postings.from_tokens(chunk_tokens).save(tmp)
        with open(tmp / "tokens.txt", "w", encoding="utf-8") as f:
            f.writelines(" ".join(tokens) + "\n" for tokens in chunk_tokens)
        np.save(tmp / "signatures.npy", copy_signatures)
        np.save(tmp / "bands.npy", copies.band_keys(copy_signatures))
        _save_keys(
            tmp,
            {
                "id": np.array([id_key(a.id) for a in articles], np.uint64),
                "hash": np.array([hash_key(h) for h in hashes], np.uint64),
                "text": np.array([text_key64(a.text) for a in articles], np.uint64),
                "line": lines,
            },
        )
        _fsync_tree(tmp)
        os.replace(tmp, index_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "name": name,
        "articles": len(articles),
        "chunks": len(chunk_vectors),
        "sentences": len(sent_vectors),
        "deleted": [],
    }


def commit(index_dir: Path, manifest: dict) -> None:
    """Make `manifest` (naming its segments) the index: replace manifest.json atomically, then
    remove what it does not name."""
    index_dir = Path(index_dir)
    manifest = dict(manifest, format=FORMAT_VERSION, tokenizer=TOKENIZER_VERSION)
    manifest.pop("data", None)
    _atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    remove_stale(index_dir, keep={s["name"] for s in manifest["segments"]})


def remove_stale(index_dir: Path, keep: set[str]) -> None:
    """Remove segments, older data generations and leftovers that the manifest does not name."""
    for child in Path(index_dir).iterdir():
        stale = child.name.startswith(("data-", "seg-")) and child.name not in keep
        leftover = child.name.startswith((".data-", ".seg-")) and child.name.endswith(".tmp")
        if stale or leftover:
            shutil.rmtree(child, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    _replace_file(path, lambda f: f.write(text.encode("utf-8")))
    _fsync_dir(path.parent)


def _replace_file(path: Path, write) -> None:
    """`write(binary file)` into a temporary file beside `path`, synced, then renamed over it:
    readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def embedded_with_older_recipe(manifest: dict) -> bool:
    """Whether the index was embedded another way than today's builds embed (EMBEDDED_TEXTS):
    it still answers, and the next build re-embeds every article."""
    return manifest.get("embedded_texts", 1) != EMBEDDED_TEXTS
