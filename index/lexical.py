"""Arabic-aware normalisation, tokenisation and a BM25 index (bm25s) over token lists.

`normalize` makes a matching COPY of a text (harakat and tatweel gone, alef/ya/ta-marbuta forms
unified, digits ASCII, Latin lowercased, presentation forms unfolded) plus an offset map back to
the original, so spans found in the copy can be cited in the original. `tokenize` turns text into
stemmed tokens (Snowball "arabic" or "english" per token, a short stopword list dropped);
`LexicalIndex` scores documents with bm25s' BM25 (k1=1.5, b=0.75, Lucene variant) over them.

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

import bm25s
import numpy as np
import Stemmer

FORMAT = "isnad-lexical 1"
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
    0x00AD, 0x061C, *range(0x200B, 0x2010), 0x2060, 0xFEFF,
}  # fmt: skip
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


def _stem(token: str) -> str:
    if not hasattr(_local, "arabic"):
        _local.arabic = Stemmer.Stemmer("arabic")
        _local.english = Stemmer.Stemmer("english")
    first = token[0]
    if _is_arabic(first):
        return _local.arabic.stemWord(token)
    if first < "\u0250":  # Latin (basic, Latin-1, Extended A/B); digits never reach here
        return _local.english.stemWord(token)
    return token


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


class LexicalIndex:
    """BM25 over documents 0..n-1, built from texts with `tokenize`; keeps no text."""

    def __init__(self, bm25: bm25s.BM25 | None, n_docs: int):
        # bm25 is None when no document has a token (bm25s cannot index that).
        self._bm25 = bm25
        self._n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        """Index `texts`; document i of the index is texts[i]."""
        return cls.from_tokens([tokenize(t) for t in texts])

    @classmethod
    def from_tokens(cls, docs: Sequence[Sequence[str]]) -> LexicalIndex:
        """Index documents already tokenised with `tokenize`."""
        if not any(docs):
            return cls(None, len(docs))
        bm25 = bm25s.BM25()  # k1=1.5, b=0.75, method="lucene"
        bm25.index([list(d) for d in docs], show_progress=False)
        return cls(bm25, len(docs))

    def __len__(self) -> int:
        return self._n_docs

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.search_batch([query], k)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        k: int,
        allowed: Sequence[np.ndarray | None] | None = None,
    ) -> list[list[tuple[int, float]]]:
        """For each query, up to k (doc_index, score) with score > 0, best first (ties by index).

        A query none of whose tokens occurs in the corpus gets []. `allowed[i]`, when given and
        not None, is one bool per document: query i ranks only those.
        """
        assert k > 0, f"k must be positive, got {k}"
        allowed = list(allowed) if allowed is not None else [None] * len(queries)
        assert len(allowed) == len(queries), "one mask (or None) per query"
        results: list[list[tuple[int, float]]] = []
        for query, mask in zip(queries, allowed, strict=True):
            ids = self._bm25.get_tokens_ids(tokenize(query)) if self._bm25 is not None else []
            if not ids:
                results.append([])
                continue
            scores = self._bm25.get_scores_from_ids(ids)
            if mask is not None:
                scores = np.where(mask, scores, 0.0)
            hits = np.flatnonzero(scores > 0)
            hits = hits[np.lexsort((hits, -scores[hits]))][:k]
            results.append([(int(i), float(scores[i])) for i in hits])
        return results

    def idf(self, tokens: Sequence[str]) -> dict[str, float]:
        """BM25's idf of each token, log(1 + (N - df + .5) / (df + .5)); a token no document
        holds gets the idf of df = 0."""
        n = self._n_docs
        df = dict.fromkeys(tokens, 0)
        if self._bm25 is not None:
            vocab = self._bm25.vocab_dict
            indptr = self._bm25.scores["indptr"]  # postings of token id i: indptr[i]:indptr[i+1]
            for t in df:
                i = vocab.get(t)
                if i is not None:
                    df[t] = int(indptr[i + 1] - indptr[i])
        return {t: float(np.log(1 + (n - d + 0.5) / (d + 0.5))) for t, d in df.items()}

    def save(self, dir: Path) -> None:
        """Write the index into the existing folder `dir` (bm25s' files, then lexical.json)."""
        dir = Path(dir)
        if self._bm25 is not None:
            self._bm25.save(str(dir), show_progress=False)
        manifest = {
            "format": FORMAT,
            "tokenizer_version": TOKENIZER_VERSION,
            "n_docs": self._n_docs,
            "has_bm25": self._bm25 is not None,
            "bm25s_version": bm25s.__version__,
        }
        (dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, dir: Path) -> LexicalIndex:
        """Read an index written by `save`; raises LexicalIndexError if it is absent or stale."""
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
        n_docs = manifest["n_docs"]
        if not manifest["has_bm25"]:
            return cls(None, n_docs)
        bm25 = bm25s.BM25.load(str(dir), show_progress=False)
        if bm25.scores["num_docs"] != n_docs:
            raise LexicalIndexError(
                f"{dir}: manifest says {n_docs} documents, BM25 files hold "
                f"{bm25.scores['num_docs']}; rebuild the index"
            )
        return cls(bm25, n_docs)
