"""Arabic-aware normalisation, tokenisation and a BM25 index over token lists, kept per segment.

`normalize` makes a matching COPY of a text (harakat and tatweel gone, alef/ya/ta-marbuta forms
unified, digits ASCII, Latin lowercased, presentation forms unfolded) plus an offset map back to
the original, so spans found in the copy can be cited in the original. `tokenize` turns text into
stemmed tokens (Snowball "arabic" or "english" per token, a short stopword list dropped);
`Postings` hold one segment's token statistics; `LexicalIndex` scores the live documents of
all segments with BM25 (k1=1.5, b=0.75, Lucene variant) from them, with collection statistics
taken over every segment.

What this module does NOT do: keep the documents' texts (the caller maps doc indices to chunks),
fuse with dense scores, or decide how far to trust the lexical side (`script_of` only reports
which script a question is written in).
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import Stemmer

FORMAT = "isnad-lexical 2"  # 1: bm25s' files
# Bump when normalisation, stopwords or stemming change: an index built with other tokens is stale.
TOKENIZER_VERSION = 1
MANIFEST = "lexical.json"


class LexicalIndexError(Exception):
    """A saved lexical index is missing or was written by another version; rebuild it."""


# --- normalisation -------------------------------------------------------------------------

_STRIP = {
    *range(0x064B, 0x0660),  # harakat, shadda, sukun, hamza/madda marks
    0x0670,  # superscript alef
    *range(0x06D6, 0x06EE),  # Quranic annotation marks
    0x0640,  # tatweel
    # Invisible format characters common in Arabic web text; left in, they split words.
    0x00AD,
    0x061C,
    *range(0x200B, 0x2010),
    0x2060,
    0xFEFF,
}
_FOLD = {
    **dict.fromkeys("أإآٱٲٳ", "ا"),
    "ة": "ه",
    "ى": "ي",
    "ؤ": "و",
    "ئ": "ي",
    "ی": "ي",  # Farsi yeh, often typed for ya in web text
    "ک": "ك",  # keheh, likewise for kaf
    **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + d): str(d) for d in range(10)},  # Eastern Arabic-Indic digits
}


def _fold_simple(c: str) -> str:
    if ord(c) in _STRIP:
        return ""
    if c in _FOLD:
        return _FOLD[c]
    folded = c.casefold()
    if len(folded) == 1:
        return folded
    lowered = c.lower()
    return lowered if len(lowered) == 1 else c


class _FoldTable(dict):
    """code point -> replacement string, computed on first sight (usable by str.translate)."""

    def __missing__(self, code: int) -> str:
        c = chr(code)
        compat = unicodedata.normalize("NFKC", c)  # presentation forms, ligatures, full width
        out = "".join(_fold_simple(x) for x in compat)
        self[code] = out
        return out


_TABLE = _FoldTable()


def fold(text: str) -> str:
    """`normalize(text)[0]` without the offset map (several times faster)."""
    return text.translate(_TABLE)


def normalize(text: str) -> tuple[str, list[int]]:
    """Return (normalised copy, offsets) with len(offsets) == len(copy) + 1.

    `offsets[i]` is the index in `text` of the character that produced copy[i]; the last entry
    is len(text). A span [a, b) of the copy (b > a) is text[offsets[a] : offsets[b - 1] + 1].
    >>> normalize("أَحمد")[0]
    'احمد'
    """
    parts = [_TABLE[ord(c)] for c in text]
    out = "".join(parts)
    if len(out) == len(text) and "" not in parts:
        return out, list(range(len(text) + 1))
    offsets = [i for i, part in enumerate(parts) for _ in part]
    offsets.append(len(text))
    return out, offsets


# --- tokenisation --------------------------------------------------------------------------

# Function words and question words, Arabic and English. Deliberately short: BM25's idf already
# discounts frequent words; this removes the ones that match everything and carry no topic.
# Arabic entries are normalised on load, so they are written here in ordinary spelling.
_STOP_AR = (
    "في من على إلى عن أن إن ما لا لم لن هذا هذه ذلك تلك التي الذي الذين ثم قد كان كانت مع أو "
    "هو هي هم هل متى كم كيف ماذا لماذا أين أي"
)
_STOP_EN = (
    "the a an of to in on at by for with from and or is are was were be been it its this that "
    "these those as do does did has have had what who whom whose when where why how which many much"
)
STOPWORDS = frozenset(normalize(w)[0] for w in (_STOP_AR + " " + _STOP_EN).split())

WORD = re.compile(r"\d+|[^\W\d_]+")  # digit runs and letter runs: "2017م" -> "2017", "م"
_local = threading.local()  # Snowball stemmers are not thread-safe; one pair per thread


def _is_arabic(c: str) -> bool:
    o = ord(c)
    return 0x0600 <= o <= 0x06FF or 0x0750 <= o <= 0x077F or 0x08A0 <= o <= 0x08FF


_STEMS: dict[str, str] = {}  # token -> stem: news vocabularies repeat, Snowball is the slow part
_STEMS_MAX = 500_000  # entries kept before the memo starts over (~60 MB)


def _stem(token: str) -> str:
    stem = _STEMS.get(token)
    if stem is not None:
        return stem
    if not hasattr(_local, "arabic"):
        _local.arabic = Stemmer.Stemmer("arabic")
        _local.english = Stemmer.Stemmer("english")
    first = token[0]
    if _is_arabic(first):
        stem = _local.arabic.stemWord(token)
    elif first < "\u0250":  # Latin (basic, Latin-1, Extended A/B); digits never reach here
        stem = _local.english.stemWord(token)
    else:
        stem = token
    if len(_STEMS) >= _STEMS_MAX:
        _STEMS.clear()
    _STEMS[token] = stem
    return stem


def is_stopword(token: str) -> bool:
    """A stopword, also when written joined to the conjunction و."""
    # A conjunction و is written joined to the next word: وفي, ومن, والتي.
    return token in STOPWORDS or (token[0] == "و" and token[1:] in STOPWORDS)


def _stems(normalised: str) -> Iterator[tuple[str, int, int]]:
    """(stem, start, end) of each kept token in an already normalised text."""
    for m in WORD.finditer(normalised):
        token = m.group()
        if (len(token) > 1 or token.isdigit()) and not is_stopword(token):
            yield _stem(token), m.start(), m.end()


def tokenize(text: str) -> list[str]:
    """Stemmed, stopword-free tokens of `text`: tokenize("وَقَالَ المتحدثُ") == ["قال", "متحدث"]."""
    return [stem for stem, _, _ in _stems(fold(text))]


def tokenize_with_spans(text: str) -> list[tuple[str, int, int]]:
    """Like `tokenize`, with each token's [start, end) in the ORIGINAL text."""
    normalised, offsets = normalize(text)
    return [(stem, offsets[a], offsets[b - 1] + 1) for stem, a, b in _stems(normalised)]


def coverage(query: str, text: str) -> float:
    """Share (0..1) of the query's distinct tokens that occur among `text`'s tokens."""
    wanted = set(tokenize(query))
    if not wanted:
        return 0.0
    return len(wanted.intersection(tokenize(text))) / len(wanted)


def script_of(text: str) -> str:
    """ "arabic" or "latin" when more than half the letters are in that script, else "other";
    "none" when there are no letters."""
    letters = arabic = latin = 0
    for c in text:
        if c.isalpha():
            letters += 1
            o = ord(c)
            if _is_arabic(c) or 0xFB50 <= o <= 0xFDFF or 0xFE70 <= o <= 0xFEFF:
                arabic += 1
            elif o < 0x250 or 0x1E00 <= o <= 0x1EFF or 0xFF21 <= o <= 0xFF5A:
                latin += 1
    if letters == 0:
        return "none"
    if 2 * arabic > letters:
        return "arabic"
    if 2 * latin > letters:
        return "latin"
    return "other"


# --- BM25 index ----------------------------------------------------------------------------

K1, B = 1.5, 0.75  # Lucene's defaults (and bm25s', which isnad used before segments)


class Postings:
    """One segment's BM25 statistics, kept apart from every other segment's: for each token (in
    sorted order), the documents holding it and how often; and each document's length.

    Collection statistics (document count, mean length, document frequency) are not baked in,
    so segments written at different times score together as one index (`LexicalIndex`)."""

    def __init__(
        self,
        vocab: np.ndarray,
        ptr: np.ndarray,
        docs: np.ndarray,
        tf: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.vocab = vocab  # sorted tokens (numpy unicode array)
        self.ptr = ptr  # token i's postings: docs[ptr[i]:ptr[i + 1]], tf[...]
        self.docs = docs
        self.tf = tf
        self.lengths = lengths  # tokens per document

    @classmethod
    def from_tokens(cls, docs: Sequence[Sequence[str]]) -> Postings:
        """Postings of documents already tokenised with `tokenize` (numpy all the way after one
        pass over the tokens: a million documents take seconds, not a dict per token)."""
        lengths = np.fromiter(map(len, docs), np.int64, len(docs))
        ids: dict[str, int] = {}
        term = np.fromiter(
            (ids.setdefault(t, len(ids)) for d in docs for t in d), np.int64, int(lengths.sum())
        )
        vocab = np.array(list(ids), dtype=str)
        order = np.argsort(vocab, kind="stable")
        rank = np.empty(len(vocab), np.int64)
        rank[order] = np.arange(len(vocab))
        n = max(len(docs), 1)
        doc = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
        pairs, tf = np.unique(rank[term] * n + doc, return_counts=True)  # by token, then doc
        ptr = np.zeros(len(vocab) + 1, np.int64)
        np.cumsum(np.bincount(pairs // n, minlength=len(vocab)), out=ptr[1:])
        return cls(
            vocab[order], ptr, (pairs % n).astype(np.int32), tf.astype(np.float32),
            lengths.astype(np.int32),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.lengths)

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Vocabulary ids of `tokens`, unknown ones left out (repeats kept)."""
        if not len(self.vocab):
            return []
        where = np.searchsorted(self.vocab, tokens)
        return [
            int(i)
            for i, t in zip(where, tokens, strict=True)
            if i < len(self.vocab) and self.vocab[i] == t
        ]

    def save(self, dir: Path) -> None:
        """Write postings.npz (tokens, pointers, lengths), postings-docs.npy and postings-tf.npy
        (memory-mapped when loaded: a question reads only its tokens' postings) and lexical.json
        into the existing folder `dir`."""
        dir = Path(dir)
        np.savez(dir / "postings.npz", vocab=self.vocab, ptr=self.ptr, lengths=self.lengths)
        np.save(dir / "postings-docs.npy", self.docs)
        np.save(dir / "postings-tf.npy", self.tf)
        manifest = {"format": FORMAT, "tokenizer_version": TOKENIZER_VERSION, "n_docs": len(self)}
        (dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, dir: Path) -> Postings:
        """Read postings written by `save`; LexicalIndexError if absent, stale or damaged."""
        dir = Path(dir)
        path = dir / MANIFEST
        if not path.is_file():
            raise LexicalIndexError(f"no {MANIFEST} in {dir}; rebuild the index")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        got = (manifest.get("format"), manifest.get("tokenizer_version"))
        if got != (FORMAT, TOKENIZER_VERSION):
            raise LexicalIndexError(
                f"{path}: expected format {FORMAT!r} with tokenizer version {TOKENIZER_VERSION}, "
                f"got {got[0]!r} with {got[1]}; rebuild the index"
            )
        with np.load(dir / "postings.npz") as z:
            if "docs" in z.files:  # written before the postings were memory-mapped
                docs, tf = z["docs"], z["tf"]
            else:
                docs = np.load(dir / "postings-docs.npy", mmap_mode="r")
                tf = np.load(dir / "postings-tf.npy", mmap_mode="r")
            postings = cls(z["vocab"], z["ptr"], docs, tf, z["lengths"])
        if len(postings) != manifest["n_docs"] or len(postings.ptr) != len(postings.vocab) + 1:
            raise LexicalIndexError(f"{dir}: postings do not match their manifest; rebuild")
        return postings


class LexicalIndex:
    """BM25 over the live documents of one or more segments' `Postings`, numbered 0..n-1 in
    segment order; keeps no text. The collection statistics are those of the live documents,
    so an index of several segments with deletions scores exactly as one built from scratch."""

    def __init__(self, parts: Sequence[Postings], live: Sequence[np.ndarray | None] | None = None):
        """`live[i]`: a bool per document of parts[i] (None: all live)."""
        self.parts = list(parts)
        live = list(live) if live is not None else [None] * len(self.parts)
        assert len(live) == len(self.parts), "one live mask (or None) per part"
        # per part: document -> its number in the index (-1: deleted)
        self._number, n, total_len = [], 0, 0
        for part, mask in zip(self.parts, live, strict=True):
            if mask is None:
                number = np.arange(n, n + len(part), dtype=np.int64)
                total_len += int(part.lengths.sum(dtype=np.int64))
            else:
                number = np.where(mask, n + np.cumsum(mask) - 1, -1).astype(np.int64)
                total_len += int(part.lengths[mask].sum(dtype=np.int64))
            self._number.append(number)
            n += int(mask.sum()) if mask is not None else len(part)
        self._n_docs = n
        self._avg_len = total_len / n if n else 0.0

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index `texts`; document i of the index is texts[i]."""
        return cls.from_tokens([tokenize(t) for t in texts])

    @classmethod
    def from_tokens(cls, docs: Sequence[Sequence[str]]) -> LexicalIndex:
        """Index documents already tokenised with `tokenize`."""
        return cls([Postings.from_tokens(docs)])

    def __len__(self) -> int:
        return self._n_docs

    def _postings(self, tokens: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per query token (repeats kept, unknown ones left out): its live postings over all
        parts as (document numbers, tf, document lengths)."""
        found: dict[str, list] = {}
        for part, number in zip(self.parts, self._number, strict=True):
            for i in part.ids(list(dict.fromkeys(tokens))):
                lo, hi = part.ptr[i], part.ptr[i + 1]
                docs = number[part.docs[lo:hi]]
                keep = docs >= 0
                local = part.docs[lo:hi][keep]
                found.setdefault(str(part.vocab[i]), []).append(
                    (docs[keep], part.tf[lo:hi][keep], part.lengths[local])
                )
        out = []
        for t in tokens:
            if t in found:
                docs, tf, lengths = (np.concatenate(c) for c in zip(*found[t], strict=True))
                if len(docs):
                    out.append((docs, tf, lengths))
        return out

    def _idf(self, df: int) -> float:
        return float(np.log(1 + (self._n_docs - df + 0.5) / (df + 0.5)))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.search_batch([query], k)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int,
        allowed: Sequence[np.ndarray | None] | None = None,
    ) -> list[list[tuple[int, float]]]:
        """For each query, up to k (doc_index, score) with score > 0, best first (ties by index).

        Lucene's BM25 (k1 1.5, b .75; every query token counts, repeats too). A query none of
        whose tokens occurs in the corpus gets []. `allowed[i]`, when given and not None, is one
        bool per document: query i ranks only those.
        """
        assert k > 0, f"k must be positive, got {k}"
        allowed = list(allowed) if allowed is not None else [None] * len(queries)
        assert len(allowed) == len(queries), "one mask (or None) per query"
        results: list[list[tuple[int, float]]] = []
        for query, mask in zip(queries, allowed, strict=True):
            postings = self._postings(tokenize(query))
            if not postings:
                results.append([])
                continue
            scores = np.zeros(self._n_docs, np.float64)
            for docs, tf, lengths in postings:
                norm = K1 * (1 - B + B * lengths / self._avg_len)
                scores += np.bincount(
                    docs, weights=self._idf(len(docs)) * tf / (tf + norm), minlength=self._n_docs
                )
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            hits = np.flatnonzero(scores > 0)
            hits = hits[np.lexsort((hits, -scores[hits]))][:k]
            results.append([(int(i), float(scores[i])) for i in hits])
        return results

    def idf(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25's idf of each token, log(1 + (N - df + .5) / (df + .5)); a token no document
        holds gets the idf of df = 0."""
        df = dict.fromkeys(tokens, 0)
        for t in df:
            df[t] = sum(len(docs) for docs, _, _ in self._postings([t]))
        return {t: self._idf(d) for t, d in df.items()}

    def save(self, dir: Path) -> None:
        """Write a one-part index with no deletions into the existing folder `dir`."""
        assert len(self.parts) == 1 and self._n_docs == len(self.parts[0]), "one whole part"
        self.parts[0].save(dir)

    @classmethod
    def load(cls, dir: Path) -> LexicalIndex:
        """Read an index written by `save`; raises LexicalIndexError if it is absent or stale."""
        return cls([Postings.load(dir)])
