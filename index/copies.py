"""Wire copies: articles that tell the same story in nearly the same words (one dispatch run by
several outlets, or rerun with light edits), found with MinHash LSH.

`signatures(articles)` gives each article a MinHash of the word shingles of its title and text;
`clusters(articles, sigs)` finds candidate pairs with LSH (`candidate_pairs`: articles whose
signatures agree on one of BANDS slices; `LSH_THRESHOLD` set below the cut-off:
at the cut-off itself LSH found only .77-.92 of the pairs; .1 lower, .97-1.00), keeps the pairs
whose exact shingle Jaccard reaches `THRESHOLD`, and returns per article the row of its cluster's
first article (itself when it has no copy). A build stores the signatures (index.store,
copies.npz), so an update hashes only the new and changed articles.

Measured on ant-news.jsonl (9,965 articles): 32 clusters, 65 articles; 33 of their 34 pairs read
as the same story; the other, a derby traffic-notice template reused 102 days later, is kept
apart by `MAX_DAYS_APART` (the same-story pairs were 0-10 days apart). Pairs just below the cut-off
are mostly an eve-of preview rewritten on the day; lower cut-offs let templates in (weather,
daily digests; the title keeps digest stubs apart). Hashing 10k articles takes ~5 s (only new
and changed articles are hashed), finding the pairs ~0.1 s.

What this module does NOT do: drop copies from the index (every copy stays searchable and can
be opened), or choose which copy to cite (qa.retrieve cites the best-ranked one).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from index.articles import Article
from index.lexical import fold

SHINGLE = 3  # words per shingle
NUM_PERM = 128
THRESHOLD = 0.5  # exact Jaccard of the shingle sets from which two articles are one story
LSH_THRESHOLD = 0.4  # candidates: LSH tuned below the cut-off so it misses few pairs
# datasketch's optimal (bands, rows) for LSH_THRESHOLD at NUM_PERM (datasketch.lsh._optimal_param)
BANDS, ROWS = 32, 4
MAX_DAYS_APART = 30  # two dated articles further apart are a reused template, not a copy
SEED = 1
SCHEME = "affine32"  # datasketch 2.0's hashing (signatures() makes the same values)
# what stored signatures depend on: a build reuses them only while this is unchanged
SIGNATURE = {"shingle": SHINGLE, "fields": "title+text", "num_perm": NUM_PERM, "seed": SEED,
             "scheme": SCHEME, "fold": 1}  # fmt: skip


_WORD = re.compile(r"[^\W_]+")  # a run of str.isalnum() characters (\w is those and "_")
_BATCH = 1 << 15  # shingles hashed through the permutations at a time (x NUM_PERM x 4 bytes)


def shingles(article: Article) -> set[bytes]:
    """The SHINGLE-word shingles of the article's title and text, over folded words (hamza
    forms, diacritics, case and punctuation do not tell copies apart); a short text is one."""
    words = _WORD.findall(fold(f"{article.title}\n{article.text}"))
    if len(words) <= SHINGLE:
        return {" ".join(words).encode("utf-8")}
    return {
        " ".join(words[i : i + SHINGLE]).encode("utf-8") for i in range(len(words) - SHINGLE + 1)
    }


def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """The NUM_PERM affine maps h -> a*h + b (mod 2^32, a odd) of datasketch's "affine32" scheme
    for SEED, drawn the way datasketch draws them, so signatures made here and there agree."""
    gen = np.random.RandomState(SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (a bijection that spreads the bits), applied by the scheme
    before the affine maps. uint32 products wrap, which is the intended arithmetic."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def signatures(articles: Sequence[Article]) -> np.ndarray:
    """(len(articles), NUM_PERM) uint64 MinHash values, one row per article: each shingle hashed
    to 32 bits (the first 4 bytes of its SHA-1, little-endian), mixed, sent through the NUM_PERM
    affine maps, and the minimum kept per map. The values equal datasketch's MinHash(num_perm=
    NUM_PERM, seed=SEED, scheme="affine32").update_batch (tests/test_filters.py) without its
    import (0.8 s: it pulls scipy) or a Python object per article; the shingles of many
    articles go through the maps in one numpy product."""
    a, b = _permutations()
    out = np.empty((len(articles), NUM_PERM), dtype=np.uint64)
    hashes: list[int] = []
    owners: list[int] = []  # the first hash of each article in the pending batch

    def flush(first: int) -> None:
        h = _fmix32(np.array(hashes, dtype=np.uint32))[:, None]
        mins = np.minimum.reduceat(h * a + b, np.array(owners), axis=0)
        out[first : first + len(owners)] = mins
        hashes.clear()
        owners.clear()

    first = 0
    for i, article in enumerate(articles):
        if len(hashes) >= _BATCH:
            flush(first)
            first = i
        owners.append(len(hashes))
        hashes.extend(
            int.from_bytes(hashlib.sha1(s).digest()[:4], "little") for s in shingles(article)
        )
    if owners:
        flush(first)
    return out


def band_keys(sigs: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64: per signature, one key per LSH band (its ROWS values mixed into 64
    bits). Two signatures that agree on a band have equal keys there; unequal bands collide
    with odds of ~2^-64, and a candidate is checked on its shingles anyway."""
    sigs = np.asarray(sigs, dtype=np.uint64).reshape(len(sigs), BANDS, ROWS)
    key = np.zeros((len(sigs), BANDS), np.uint64)
    for r in range(ROWS):
        key = (key ^ sigs[:, :, r]) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2^64
        key ^= key >> np.uint64(29)
    return key


def candidate_pairs(sigs: np.ndarray) -> np.ndarray:
    """(m, 2) rows i < j whose signatures agree on a whole band: MinHash LSH with datasketch's
    optimal bands for LSH_THRESHOLD (BANDS x ROWS = NUM_PERM), found by grouping equal band slices
    with numpy instead of a dict of buckets (10k articles: ~0.1 s against ~2 s; the same pairs,
    tests/test_filters.py)."""
    found = [np.zeros((0, 2), dtype=np.int64)]
    for k in range(BANDS):
        band = np.ascontiguousarray(sigs[:, k * ROWS : (k + 1) * ROWS], dtype=np.uint64)
        keys = band.view(np.dtype((np.void, band.itemsize * ROWS))).reshape(-1)  # one per row
        _, group, counts = np.unique(keys, return_inverse=True, return_counts=True)
        group = group.reshape(-1)
        shared = counts[group] > 1
        if not shared.any():
            continue
        rows = np.flatnonzero(shared)
        rows = rows[np.argsort(group[rows], kind="stable")]
        bounds = np.flatnonzero(np.diff(group[rows])) + 1
        for members in np.split(rows, bounds):
            i, j = np.triu_indices(len(members), 1)
            found.append(np.stack([members[i], members[j]], axis=1))
    return np.unique(np.concatenate(found), axis=0)


def clusters(
    articles: Sequence[Article], sigs: np.ndarray, days: np.ndarray | None = None
) -> np.ndarray:
    """Per article row, the first row of its cluster of copies (int64). `days`, when given, is
    each article's publication day ordinal (-1 if unknown): dated pairs further apart than
    MAX_DAYS_APART are not copies."""
    assert sigs.shape == (len(articles), NUM_PERM), f"expected {len(articles)} signatures"
    parent = list(range(len(articles)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cache: dict[int, set[bytes]] = {}
    for i, j in candidate_pairs(sigs).tolist():
        if root(i) == root(j):
            continue
        if days is not None and min(days[i], days[j]) >= 0:
            if abs(int(days[i]) - int(days[j])) > MAX_DAYS_APART:
                continue
        a = cache.setdefault(i, shingles(articles[i]))
        b = cache.setdefault(j, shingles(articles[j]))
        if len(a & b) >= THRESHOLD * len(a | b):
            ri, rj = root(i), root(j)
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([root(i) for i in range(len(articles))], dtype=np.int64)
