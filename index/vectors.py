"""Vector search that scales: exact below a size bound, IVF with 8-bit scalar quantisation above.

`build_vector_index(vectors)` returns a FAISS index over unit vectors (inner product = cosine):
`IndexFlatIP` for up to `FLAT_MAX` rows (exact; every index of today's sizes, so their answers
do not change), else `IVF{nlist},SQ8` with nlist = 4 x sqrt(n) (FAISS's guideline is 4-16 x
sqrt(n)), trained on a sample of 64 vectors a list, ~0.4 KB a vector instead of 1.5 KB.
`calibrate_nprobe` then picks the smallest nprobe whose recall@10 against exact search reaches
`RECALL` on sample queries; it is stored in the index (`nprobe` of the IVF). Written with
faiss.write_index; `read_vector_index` maps an IVF index from disk (IO_FLAG_MMAP) instead of
reading it into memory.

`search(index, queries, k, allowed)` searches either kind, inside an allowed-rows mask when
given (an id selector: a filter, or deleted rows, never widen the result). An index of several
segments (index.store) searches through `Segments`: each segment's own FAISS index, its
deleted rows excluded inside the search, results merged; `stack_rows` reads the live rows of
several segments' vectors as one array.

What this module does NOT do: decide which vectors go in (index.build), or rank (qa.retrieve).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

FLAT_MAX = 200_000  # rows up to which search is exact
RECALL = 0.98  # recall@10 against exact search that nprobe must reach
TRAIN_PER_LIST = 64
NPROBES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
SEED = 1234
REFINE = 4  # an IVF search fetches this many times k candidates, then re-scores them exactly
# ... but re-scores at most this many (the codes' best) a query: a retrieval's sentence search
# asks for 1,000 rows, and re-scoring 4,000 read as many scattered pages of the sentence
# vectors a question (946 MB of them resident after 100 questions at 2.1M sentences); the
# rows past this keep their 8-bit scores, which order them closely enough for a tail
EXACT_ROWS = 400


def build_vector_index(vectors: np.ndarray, *, flat_max: int | None = None, queries=None):
    """A FAISS index over `vectors` (n, d) float32 unit rows: flat up to `flat_max` (default
    FLAT_MAX), else IVF-SQ8 with nprobe calibrated on `queries` (default: a sample of the
    vectors, perturbed)."""
    import faiss

    flat_max = FLAT_MAX if flat_max is None else flat_max
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if n <= flat_max:
        index = faiss.IndexFlatIP(d)
        if n:
            index.add(vectors)
        return index
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 8))  # small n (tests): lists of >= 8
    index = faiss.index_factory(d, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(SEED)
    sample = vectors[rng.choice(n, size=min(n, nlist * TRAIN_PER_LIST), replace=False)]
    index.train(sample)
    index.add(vectors)
    if queries is None:
        queries = _probe_queries(vectors, rng)
    index.nprobe = calibrate_nprobe(index, vectors, queries)
    return index


def range_means(vectors: np.ndarray, lo: np.ndarray, hi: np.ndarray, block: int = 65_536):
    """Row i: the unit-length mean of vectors[lo[i]:hi[i]] (zeros where the range is empty).
    Sums come from a float64 running sum over one block of rows at a time, so memory stays
    bounded for millions of rows."""
    lo, hi = np.asarray(lo, np.int64), np.asarray(hi, np.int64)
    out = np.zeros((len(lo), vectors.shape[1]), dtype=np.float32)
    for a in range(0, len(lo), block):
        b = min(a + block, len(lo))
        first, last = int(lo[a:b].min(initial=0)), int(hi[a:b].max(initial=0))
        if last <= first:
            continue
        running = np.zeros((last - first + 1, vectors.shape[1]), dtype=np.float64)
        np.cumsum(vectors[first:last], axis=0, dtype=np.float64, out=running[1:])
        sums = running[hi[a:b] - first] - running[np.minimum(lo[a:b], hi[a:b]) - first]
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out[a:b] = np.where(norms > 0, sums / np.maximum(norms, 1e-12), 0.0)
    return out


def calibrate_nprobe(index, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> int:
    """The smallest nprobe (of NPROBES) with mean recall@k >= RECALL against exact search, the
    way `search` runs (REFINE x k candidates re-scored exactly)."""
    exact = _exact_top(vectors, queries, k)
    nlist = _ivf(index).nlist
    for nprobe in [p for p in NPROBES if p < nlist] + [nlist]:
        index.nprobe = nprobe
        _, rows = search(index, queries, k, vectors=vectors)
        if recall(rows, exact) >= RECALL:
            return nprobe
    return nlist


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top-k rows that `found` holds."""
    hits = [
        len(set(f.tolist()) & set(e.tolist())) / len(e) for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(hits)) if hits else 1.0


def search(
    index,
    queries: np.ndarray,
    k: int,
    allowed: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
):
    """(scores, rows) of the k best rows for each query, rows -1 where fewer exist; `allowed`,
    a bool per row, restricts the search to those rows. For an IVF index with its `vectors`
    (float32, memory-mapped is fine), REFINE x k candidates are re-scored exactly: the 8-bit
    codes decide which rows are near, the float vectors their order."""
    import faiss

    if isinstance(index, Segments):
        return index.search(queries, k, allowed)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    refine = vectors is not None and is_ivf(index)
    fetch = min(max(k, min(k * REFINE, EXACT_ROWS)), index.ntotal) if refine else k
    params = None
    if allowed is not None:
        bits = np.packbits(np.asarray(allowed, bool), bitorder="little")
        selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
        params = (
            faiss.SearchParametersIVF(sel=selector, nprobe=_ivf(index).nprobe)
            if is_ivf(index)
            else faiss.SearchParameters(sel=selector)
        )
    scores, rows = index.search(queries, fetch, params=params)
    if not refine:
        return scores, rows
    return _refine(queries, scores, rows, vectors, k)


def _refine(queries: np.ndarray, scores: np.ndarray, rows: np.ndarray, vectors, k: int):
    """The candidates of each query (best first by their codes) with the first EXACT_ROWS
    re-scored exactly from `vectors`, the best k kept, best first."""
    out_s = np.full((len(queries), k), -np.inf, np.float32)
    out_r = np.full((len(queries), k), -1, np.int64)
    for i, (q, approx, cand) in enumerate(zip(queries, scores, rows, strict=True)):
        keep = cand >= 0
        cand, approx = cand[keep], approx[keep].astype(np.float32)
        if not len(cand):
            continue
        head = cand[:EXACT_ROWS]
        approx[: len(head)] = read_rows(vectors, head) @ q
        top = np.argsort(-approx, kind="stable")[:k]
        out_s[i, : len(top)] = approx[top]
        out_r[i, : len(top)] = cand[top]
    return out_s, out_r


def _ivf(index):
    import faiss

    return faiss.extract_index_ivf(index)


def is_ivf(index) -> bool:
    import faiss

    if isinstance(index, Segments):
        return any(is_ivf(i) for i, _, _ in index.parts)
    try:
        faiss.extract_index_ivf(index)
        return True
    except RuntimeError:
        return False


class Segments:
    """Several segments' vector indexes searched as one, over their live rows numbered in
    segment order (deleted rows excluded inside each search, never filtered afterwards)."""

    def __init__(self, parts) -> None:
        """`parts`: (FAISS index or None, the segment's vectors, bool live mask per row) each;
        None (a small segment that has no index of its own) searches its vectors exactly."""
        import faiss

        self.parts, self._number, n = [], [], 0
        for index, vectors, live in parts:
            if index is None:
                index = faiss.IndexFlatIP(vectors.shape[1])
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            live = np.asarray(live, bool)
            self.parts.append((index, vectors, None if live.all() else live))
            self._number.append(np.where(live, n + np.cumsum(live) - 1, -1).astype(np.int64))
            n += int(live.sum())
        self.ntotal = n

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None):
        """As `search`: (scores, rows) of the k best live rows per query (rows -1 past the end)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.ntotal)
        scores = [np.zeros((len(queries), 0), np.float32)]
        rows = [np.zeros((len(queries), 0), np.int64)]
        allowed = None if allowed is None else np.asarray(allowed, bool)
        for (index, vectors, live), number in zip(self.parts, self._number, strict=True):
            mask = live
            if allowed is not None:
                mask = np.zeros(len(number), bool)
                here = number >= 0
                mask[here] = allowed[number[here]]
            if k <= 0 or (mask is not None and not mask.any()):
                continue
            s, r = search(index, queries, k, mask, vectors)
            scores.append(np.where(r >= 0, s, -np.inf).astype(np.float32))
            rows.append(np.where(r >= 0, number[np.maximum(r, 0)], -1))
        scores, rows = np.concatenate(scores, axis=1), np.concatenate(rows, axis=1)
        order = np.lexsort((rows, -scores), axis=1)[:, :k] if scores.size else rows[:, :k]
        out_s = np.take_along_axis(scores, order, 1)
        out_r = np.take_along_axis(rows, order, 1)
        out_r[~np.isfinite(out_s)] = -1
        return out_s, out_r


class Rows:
    """The live rows of several segments' (memory-mapped) vectors, read as one array: row i of
    the index is found in its segment when asked for, nothing is copied up front."""

    def __init__(self, parts) -> None:
        self._arrays = [a for a, _ in parts]
        self._rows = [np.flatnonzero(live) for _, live in parts]
        self._starts = np.cumsum([0] + [len(r) for r in self._rows])
        dim = self._arrays[0].shape[1] if self._arrays else 0
        self.shape = (int(self._starts[-1]), dim)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows):
        scalar = np.ndim(rows) == 0
        rows = np.atleast_1d(np.asarray(rows, np.int64))
        out = np.empty((len(rows), self.shape[1]), np.float32)
        which = np.searchsorted(self._starts, rows, side="right") - 1
        for s in np.unique(which):
            here = which == s
            local = self._rows[s][rows[here] - self._starts[s]]
            out[here] = read_rows(self._arrays[s], local)
        return out[0] if scalar else out

    def __array__(self, dtype=None, copy=None):
        return self[np.arange(len(self))].astype(dtype or np.float32, copy=False)


def read_rows(vectors, rows) -> np.ndarray:
    """vectors[rows] as float32. Rows of a large memory-mapped .npy (past FLAT_MAX) are read
    with pread rather than through the map: a page fault on a mapped file also maps up to 15
    neighbouring pages the page cache holds (the kernel's fault-around, which MADV_RANDOM does
    not stop), so at 2.1M sentences a few hundred scattered rows a question left 2.2 GB of the
    sentence vectors resident in the process after 100 questions when the file was cached
    (0.1 GB read this way). Consecutive rows are read in one call."""
    rows = np.asarray(rows, np.int64).reshape(-1)
    if isinstance(vectors, Rows):
        return vectors[rows]
    mapped = isinstance(vectors, np.memmap) and vectors.filename and vectors.ndim == 2
    if not mapped or len(vectors) <= FLAT_MAX or not vectors.flags.c_contiguous or not len(rows):
        return np.asarray(vectors[rows], dtype=np.float32)
    width = vectors.shape[1] * vectors.dtype.itemsize
    order = np.argsort(rows, kind="stable")
    ranked = rows[order]
    got = np.empty((len(rows), vectors.shape[1]), vectors.dtype)
    cuts = np.flatnonzero(np.diff(ranked) != 1) + 1
    # opened per call (microseconds, a few calls a question): a descriptor kept open would
    # hold a merged-away segment's file on disk for the life of the server
    fd = os.open(vectors.filename, os.O_RDONLY)
    try:
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(ranked)], strict=True):
            first, n = int(ranked[lo]), int(hi - lo)
            data = os.pread(fd, n * width, vectors.offset + first * width)
            got[lo:hi] = np.frombuffer(data, vectors.dtype).reshape(n, -1)
    finally:
        os.close(fd)
    out = np.empty_like(got, dtype=np.float32)
    out[order] = got
    return out


def stack_rows(parts):
    """The live rows of several segments' vectors ((array, bool live mask) each) as one array:
    copied into memory up to the exact-search bound (where every row is read per question
    anyway), read where they lie above it (`Rows`)."""
    if sum(int(np.count_nonzero(live)) for _, live in parts) <= FLAT_MAX:
        arrays = [np.asarray(a[np.flatnonzero(live)], np.float32) for a, live in parts]
        return np.concatenate(arrays) if arrays else np.zeros((0, 0), np.float32)
    return Rows(parts)


def read_vector_index(path: Path):
    """Read an index written by faiss.write_index, once: FAISS maps an IVF index's lists from
    disk and reads a flat index whole (the mmap flag only applies where it can)."""
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)


def _probe_queries(vectors: np.ndarray, rng, n: int = 500) -> np.ndarray:
    """Stand-ins for questions: stored vectors moved off themselves (cosine ~.85 to the
    original), so the nearest neighbours are not the query itself."""
    q = vectors[rng.choice(len(vectors), size=min(n, len(vectors)), replace=False)].copy()
    q += rng.normal(0, 0.6 / math.sqrt(q.shape[1]), q.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]
