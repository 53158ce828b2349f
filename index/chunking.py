"""Articles -> overlapping chunks and sentences, as character offsets into `article.text`.

`chunk_article` splits with langchain's RecursiveCharacterTextSplitter (paragraphs, lines,
sentence ends, spaces, characters; ~600 characters with ~100 overlap). The splitter returns
strings, not offsets, so it is run on a stand-in copy of the text in which no stretch repeats
(`_shadow`): each chunk then has exactly one place, even where the article repeats a passage,
and the placement is checked. Every character lies in some chunk; no chunk is only whitespace.
`split_sentences` cuts a span into citable sentences: ends before whitespace (so "3.5" and
"U.S.A" stay whole) or before an Arabic letter typed without a space ("(داعش).وأوضحت"), every
newline ends one, and the Arabic comma "،" does not.

What this module does NOT do: strip, normalise or re-find text. Chunk text is always
`article.text[chunk.start:chunk.end]`.
"""

from __future__ import annotations

import random
import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from index.articles import Article

if TYPE_CHECKING:  # imported where a splitter is made: loading an index needs no langchain
    from langchain_text_splitters import RecursiveCharacterTextSplitter

CHUNKER_VERSION = (
    2  # 2: a sentence also ends before an Arabic letter with no space ("(داعش).وأوضحت")
)
MAX_SENTENCE_CHARS = 400

# Sentence-ending punctuation, optionally followed by closing quotes or brackets. Matching only
# from the start of a run keeps "!!!!..." without a space after it linear instead of quadratic.
_END = r"(?<![.!?؟؛])[.!?؟؛]+[\"'”’»)\]]*"
_LINE = "\n\u2028\u2029"  # line breaks
# Tried in order; the splitter keeps each separator at the end of the piece before it.
_SEPARATORS = [
    rf"[{_LINE}][^\S{_LINE}]*[{_LINE}]\s*",  # paragraph: a blank line
    rf"[{_LINE}]\s*",  # line
    _END + r"\s+",  # sentence end before whitespace
    r"[؟؛]+",  # Arabic question mark / semicolon written without a space after it
    r"\s+",  # words
    "",  # characters
]
# The characters the separators tell apart, in classes whose members they treat alike; every
# other character ("other") they ignore. Used by _shadow.
_CLASSES = {
    "line": _LINE,
    "space": "".join(c for c in map(chr, range(0x3001)) if c.isspace() and c not in _LINE),
    "end": ".!?",
    "arabic_end": "؟؛",
    "closing": "\"'”’»)]",
}
_CLASS_RUNS = re.compile(
    "".join(f"(?P<{name}>[{re.escape(chars)}]+)|" for name, chars in _CLASSES.items())
    + f"(?P<other>[^{re.escape(''.join(_CLASSES.values()))}]+)"
)
_PERIOD = 65521
_ARABIC_LETTER = "\u0621-\u064a"
# A sentence ends before whitespace, at the end, at a newline, or, as Arabic news copy is often
# typed, right before an Arabic letter when the word before the stop has two or more characters
# (so the initials of "أ.د" stay whole).
_SENTENCE_BREAK = re.compile(
    _END + rf"(?=\s|\Z)|(?<=[^\s.]{{2}})[.!?؟][\"'”’»)\]]*(?=[{_ARABIC_LETTER}])|[{_LINE}]"
)


@dataclass(frozen=True)
class Chunk:
    article_id: str
    start: int
    end: int  # text is always article.text[start:end]


@dataclass(frozen=True)
class ChunkerSettings:
    size: int = 600
    overlap: int = 100

    def __post_init__(self) -> None:
        assert self.size > 0, f"chunk size must be positive, got {self.size}"
        assert 0 <= self.overlap < self.size, (
            f"chunk overlap must be in [0, size={self.size}), got {self.overlap}"
        )

    def as_dict(self) -> dict:
        """What the index manifest records; a different dict means the chunks must be rebuilt."""
        return {"version": CHUNKER_VERSION, "size": self.size, "overlap": self.overlap}


def chunk_article(article: Article, settings: ChunkerSettings = ChunkerSettings()) -> list[Chunk]:
    """Overlapping chunks of about `settings.size` characters, in order, covering every
    character of `article.text`. An empty (or whitespace-only) text gives []."""
    text = article.text
    if not text.strip():
        return []
    shadow = _shadow(text)
    pieces = _splitter(settings).split_text(shadow)
    spans = [(s, e) for s, e in _align(shadow, pieces, settings.overlap) if text[s:e].strip()]
    # Dropped whitespace-only pieces leave gaps: the chunk before takes them over.
    starts = [0] + [s for s, _ in spans[1:]]
    ends = [max(e, nxt) for (_, e), nxt in zip(spans, starts[1:] + [len(text)], strict=True)]
    chunks = [Chunk(article.id, s, e) for s, e in zip(starts, ends, strict=True)]
    for a, b in pairwise(chunks):
        assert a.start < b.start <= a.end < b.end, f"chunks out of order: {a} then {b}"
    return chunks


def _shadow(text: str) -> str:
    """text with each character replaced by a pseudo-random one of its class (_CLASSES; CJK
    ideographs for the characters the separators ignore). The splitter cuts the shadow exactly
    where it would cut text, but a piece of the shadow occurs at only one place nearby, so even
    "ha ha ha ..." or "!!!..." aligns at once and without ambiguity."""
    stand_ins = _stand_ins()

    def replace(m: re.Match) -> str:
        cycle, n = stand_ins[m.lastgroup], m.end() - m.start()
        i = m.start() % _PERIOD
        if i + n > _PERIOD:
            cycle *= (i + n) // _PERIOD + 1
        return cycle[i : i + n]

    return _CLASS_RUNS.sub(replace, text)


@lru_cache(maxsize=1)
def _stand_ins() -> dict[str, str]:
    """For each class, _PERIOD pseudo-random members (fixed seed)."""
    rng = random.Random(0)
    classes = {**_CLASSES, "other": "".join(map(chr, range(0x4E00, 0xA000)))}
    return {name: "".join(rng.choices(chars, k=_PERIOD)) for name, chars in classes.items()}


@lru_cache(maxsize=8)
def _splitter(settings: ChunkerSettings) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    # keep_separator="end" and no stripping: every chunk is then an exact substring of the text.
    return RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=False,
        chunk_size=settings.size,
        chunk_overlap=settings.overlap,
    )


def _align(text: str, pieces: list[str], overlap: int) -> list[tuple[int, int]]:
    """Offsets of the splitter's pieces: the first starts at 0, each next one starts inside or
    right after the one before, sharing at most `overlap` characters with it, and the last ends
    at len(text). Where a piece matches at several places, all consistent placements are kept
    until the end decides."""
    if not pieces:
        return []
    candidates: list[list[int]] = []
    prev: list[int] = []
    for i, piece in enumerate(pieces):
        if i == 0:
            found = [0] if text.startswith(piece) else []
        else:
            step = len(pieces[i - 1])
            found = []
            pos, hi = max(prev[0] + 1, prev[0] + step - overlap), prev[-1] + step
            while (pos := text.find(piece, pos, hi + len(piece))) != -1:
                if _predecessor(prev, step, pos, len(piece), overlap) is not None:
                    found.append(pos)
                pos += 1
        assert found, f"cannot place chunk {i} of {len(pieces)} in the text (splitter changed?)"
        candidates.append(found)
        prev = found
    last = [s for s in candidates[-1] if s + len(pieces[-1]) == len(text)]
    assert last, "the splitter's chunks do not end at the end of the text (splitter changed?)"
    starts = [last[0]]
    for i in range(len(pieces) - 2, -1, -1):
        s = _predecessor(candidates[i], len(pieces[i]), starts[-1], len(pieces[i + 1]), overlap)
        assert s is not None, "chunk alignment lost"
        starts.append(s)
    starts.reverse()
    return [(s, s + len(p)) for s, p in zip(starts, pieces, strict=True)]


def _predecessor(
    starts: list[int], length: int, pos: int, next_length: int, overlap: int
) -> int | None:
    """The last of the sorted `starts` where a piece of `length` can precede one placed at
    `pos`: it starts before pos, reaches pos (no gap) but by at most `overlap` characters, and
    ends before the next piece ends."""
    lo = pos - length  # s in [lo, hi)
    hi = min(pos, pos + next_length - length, pos - length + overlap + 1)
    j = bisect_left(starts, hi) - 1
    return starts[j] if j >= 0 and starts[j] >= lo else None


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences of `text[start:end]` as (start, end) offsets into `text`, in order, without
    surrounding whitespace. A sentence ends after . ! ? ؟ ؛ (and closing quotes or brackets)
    followed by whitespace or the end, and at every newline; one longer than 400 characters is
    cut at its last "،"/"," (or else space) before 400.

    >>> split_sentences("نما 3.5%، ثم توقف. Next")
    [(0, 18), (19, 23)]
    """
    end = len(text) if end is None else end
    assert 0 <= start <= end <= len(text), f"bad span ({start}, {end}) for text of {len(text)}"
    spans: list[tuple[int, int]] = []
    piece_start = start
    for m in _SENTENCE_BREAK.finditer(text, start, end):
        _add_sentence(text, piece_start, m.end(), spans)
        piece_start = m.end()
    _add_sentence(text, piece_start, end, spans)
    return spans


def _add_sentence(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    start, end = _trim(text, start, end)
    while end - start > MAX_SENTENCE_CHARS:
        cut = _cut_point(text, start, start + MAX_SENTENCE_CHARS)
        spans.append(_trim(text, start, cut))
        start, end = _trim(text, cut, end)
    if start < end:
        spans.append((start, end))


def _cut_point(text: str, start: int, limit: int) -> int:
    """Where to cut an over-long sentence: after its last comma in the second half of
    text[start:limit], else at its last whitespace, else at limit."""
    window = text[start:limit]
    comma = max(window.rfind("،"), window.rfind(","))
    if comma + 1 >= MAX_SENTENCE_CHARS // 2:
        return start + comma + 1
    space = max((m.start() for m in re.finditer(r"\s", window)), default=0)
    return start + space if space > 0 else limit


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_ranges(
    chunk_article: np.ndarray,
    chunk_start: np.ndarray,
    chunk_end: np.ndarray,
    sent_article: np.ndarray,
    sent_start: np.ndarray,
    sent_end: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per chunk: the sentence rows [lo, hi) overlapping it. Rows are in article order
    and an article's sentences are sorted and disjoint, so those rows are contiguous."""
    big = np.int64(1) << 32
    sent_art = np.asarray(sent_article, np.int64) * big
    ends = sent_art + sent_end
    starts = sent_art + sent_start
    chunk_art = np.asarray(chunk_article, np.int64) * big
    lo = np.searchsorted(ends, chunk_art + chunk_start, side="right")
    hi = np.searchsorted(starts, chunk_art + chunk_end, side="left")
    return lo, np.maximum(hi, lo)
