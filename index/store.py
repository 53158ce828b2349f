"""The index directory on disk: write atomically, load with checks.

Layout of an index directory:

    manifest.json        the commit point: format, model, chunker, counts, hashes, data folder
    data-<token>/        one generation of data, never modified once the manifest names it
        articles.jsonl   id, title, text, meta, hash (the text is kept: citations are checked
                         against it, whether or not the corpus folder is still there)
        chunks.npz       chunk_article, chunk_start, chunk_end (int32)
        vectors.npy      chunk vectors, float32 (n_chunks, dim), memory-mapped on load (each the
                         unit mean of its sentences' vectors: index.build)
        sentences.npz    sent_article, sent_start, sent_end (int32)
        sent_vectors.npy sentence vectors, float32, memory-mapped on load (indexes written
                         before this kept them in sentences.npz; both are read)
        faiss.index      the chunk vectors' FAISS index (index.vectors: exact up to a size
                         bound, IVF-SQ8 above, memory-mapped)
        sentences.faiss  likewise for the sentences, only above the bound (below it the
                         sentences are scored exactly, all of them)
        lexical/         the BM25 index (index.lexical)
        tokens.txt       each chunk's BM25 tokens, one line per chunk, so an update
                         tokenises only the new chunks
        copies.npz       per article: its MinHash signature and its wire-copy cluster
                         (index.copies); absent in indexes built before copies were found
    pending/             embeddings of an unfinished build, so a killed build resumes

A new generation is written into a fresh `data-*` folder, then `manifest.json` is replaced
(os.replace) to point at it, then older generations are removed. A build killed at any moment
leaves the previous manifest and its folder intact.

What this module does NOT do: decide what to (re-)embed; that is `index.build`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from index import vectors as vector_search
from index.articles import Article
from index.catalog import Catalog
from index.chunking import Chunk
from index.lexical import TOKENIZER_VERSION, LexicalIndex, LexicalIndexError
from index.vectors import build_vector_index, read_vector_index

FORMAT_VERSION = 1
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
    chunk_vectors: np.ndarray
    faiss_index: object
    lexical: LexicalIndex
    sent_article: np.ndarray
    sent_start: np.ndarray
    sent_end: np.ndarray
    sent_vectors: np.ndarray
    sentence_index: object | None = None  # FAISS index over sent_vectors (large indexes only)
    copy_signatures: np.ndarray | None = None  # (n_articles, n_perm) uint64 MinHash values
    copy_cluster: np.ndarray | None = None  # per article: its cluster's first article row

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
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexMismatch(
            f"the index at {index_dir} has format {manifest.get('format')}, this isnad reads "
            f"format {FORMAT_VERSION}; rebuild with `isnad index build PATH --index {index_dir}`"
        )
    return manifest


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
        counts, data = manifest["counts"], index_dir / manifest["data"]
    except (KeyError, TypeError) as exc:
        raise IndexError_(f"the index manifest at {index_dir} is incomplete; {rebuild}") from exc
    if encoder_model_id is not None and encoder_model_id != built_with:
        raise IndexMismatch(
            f"the index at {index_dir} was built with model {built_with!r}, not "
            f"{encoder_model_id!r}; rebuild with `isnad index build PATH --index {index_dir}` "
            "or use the same --model"
        )
    try:
        articles, hashes = [], []
        with open(data / "articles.jsonl", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                articles.append(Article(rec["id"], rec["title"], rec["text"], rec["meta"]))
                hashes.append(rec["hash"])
        with np.load(data / "chunks.npz") as z:
            chunks = {k: z[k] for k in ("chunk_article", "chunk_start", "chunk_end")}
        with np.load(data / "sentences.npz") as z:
            sents = {k: z[k] for k in z.files}
        if (data / "sent_vectors.npy").exists():
            sents["sent_vectors"] = np.load(data / "sent_vectors.npy", mmap_mode="r")
        vectors = np.load(data / "vectors.npy", mmap_mode="r")
        fidx = read_vector_index(data / "faiss.index")
        sidx = None
        if (data / "sentences.faiss").exists():
            sidx = read_vector_index(data / "sentences.faiss")
        lexical = LexicalIndex.load(data / "lexical")
        signatures = cluster = None
        if (data / "copies.npz").exists():
            with np.load(data / "copies.npz") as z:
                signatures, cluster = z["signatures"], z["cluster"]
    except (*DAMAGED, LexicalIndexError) as exc:
        raise IndexError_(f"the index at {index_dir} is damaged ({exc}); {rebuild}") from exc

    n_chunks = counts["chunks"]
    sizes_ok = (
        len(articles) == counts["articles"]
        and vectors.shape == (n_chunks, dim)
        and len(chunks["chunk_start"]) == n_chunks
        and fidx.ntotal == n_chunks
        and fidx.d == dim
        and len(lexical) == n_chunks
        and sents["sent_vectors"].shape == (counts["sentences"], dim)
        and (cluster is None or len(cluster) == len(signatures) == len(articles))
        and (sidx is None or sidx.ntotal == counts["sentences"])
    )
    if not sizes_ok:
        raise IndexError_(f"the index at {index_dir} is inconsistent (sizes differ); {rebuild}")
    return Index(
        path=index_dir,
        manifest=manifest,
        articles=articles,
        article_row={a.id: i for i, a in enumerate(articles)},
        article_hash=hashes,
        chunk_article=chunks["chunk_article"],
        chunk_start=chunks["chunk_start"],
        chunk_end=chunks["chunk_end"],
        chunk_vectors=vectors,
        faiss_index=fidx,
        lexical=lexical,
        sent_article=sents["sent_article"],
        sent_start=sents["sent_start"],
        sent_end=sents["sent_end"],
        sent_vectors=sents["sent_vectors"],
        sentence_index=sidx,
        copy_signatures=signatures,
        copy_cluster=cluster,
    )


def write_index(
    index_dir: Path,
    *,
    manifest: dict,
    articles: list[Article],
    hashes: list[str],
    chunk_arrays: dict[str, np.ndarray],
    chunk_vectors: np.ndarray,
    sentence_arrays: dict[str, np.ndarray],
    lexical: LexicalIndex,
    chunk_tokens: list[list[str]],
    copy_signatures: np.ndarray,
    copy_cluster: np.ndarray,
    calibration: np.ndarray | None = None,
) -> Path:
    """Write a new generation and commit it by replacing the manifest. Returns the data folder.

    `calibration`: query vectors an IVF index's nprobe is tuned on (index.vectors), when the
    chunks or sentences are past the exact-search bound."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"data-{secrets.token_hex(6)}"
    tmp = index_dir / f".{name}.tmp"
    tmp.mkdir()
    try:
        with open(tmp / "articles.jsonl", "w", encoding="utf-8") as f:
            for a, h in zip(articles, hashes, strict=True):
                rec = {
                    "id": a.id,
                    "title": a.title,
                    "text": a.text,
                    "meta": dict(a.meta),
                    "hash": h,
                }
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        np.savez(tmp / "chunks.npz", **chunk_arrays)
        sentence_arrays = dict(sentence_arrays)
        sent_vectors = sentence_arrays.pop("sent_vectors")
        np.savez(tmp / "sentences.npz", **sentence_arrays)
        np.save(tmp / "sent_vectors.npy", sent_vectors)
        np.save(tmp / "vectors.npy", chunk_vectors)
        fidx = build_vector_index(chunk_vectors, queries=calibration)
        faiss.write_index(fidx, str(tmp / "faiss.index"))
        if len(sent_vectors) > vector_search.FLAT_MAX:
            sidx = build_vector_index(sent_vectors, queries=calibration)
            faiss.write_index(sidx, str(tmp / "sentences.faiss"))
        (tmp / "lexical").mkdir()
        lexical.save(tmp / "lexical")
        with open(tmp / "tokens.txt", "w", encoding="utf-8") as f:
            f.writelines(" ".join(tokens) + "\n" for tokens in chunk_tokens)
        np.savez(tmp / "copies.npz", signatures=copy_signatures, cluster=copy_cluster)
        _fsync_tree(tmp)
        os.replace(tmp, index_dir / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    manifest = dict(manifest, data=name, format=FORMAT_VERSION, tokenizer=TOKENIZER_VERSION)
    _atomic_write(index_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))
    remove_stale(index_dir, keep=name)
    return index_dir / name


def read_chunk_tokens(index: Index) -> list[list[str]] | None:
    """The stored BM25 tokens of every chunk, or None if absent or from another tokenizer."""
    if index.manifest.get("tokenizer") != TOKENIZER_VERSION:
        return None
    try:
        with open(index.path / index.manifest["data"] / "tokens.txt", encoding="utf-8") as f:
            tokens = [line.split() for line in f]
    except OSError:
        return None
    return tokens if len(tokens) == len(index) else None


def remove_stale(index_dir: Path, keep: str) -> None:
    """Remove data generations and leftovers that the manifest does not name."""
    for child in Path(index_dir).iterdir():
        stale_data = child.name.startswith("data-") and child.name != keep
        leftover = child.name.startswith(".data-") and child.name.endswith(".tmp")
        if stale_data or leftover:
            shutil.rmtree(child, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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
