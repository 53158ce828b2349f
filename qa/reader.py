"""The short answer: the words of a cited sentence that answer the question.

`Reader(model).read(question, text, start, end)` looks at every run of 1 to MAX_WORDS words of
`text[start:end]` (a citation's span) and ranks them with a log-linear model over features of
the kind SQuAD's first baseline used (Rajpurkar et al. 2016: a logistic regression over
candidate spans with lexicalised features, F1 51 on gold paragraphs), written for Arabic
without a parser:
- what the question asks for (`question_kind`: a time, a number, a person, a place, a reason or
  a manner, a definition, anything else) crossed, through hashed lexical features, with the
  span's first and last words, the words around it, its length and edge, the shapes of its
  edges, and the question's first word with the span's first;
- where the question's words are (DENSE): a span that repeats them is rarely the answer, one
  right after or near them often is; for a question in another script than the text (English
  over Arabic), its names matched by consonant skeleton (index.translit) stand in for its
  words;
- what the span holds: a year, a month, a digit, a number word, a leading preposition or
  article.
The spans of a sentence compete in a softmax; the best one is the short answer when the share
of the spans overlapping it (`confidence`) reaches the fitted threshold, else None (the cited
sentence is then the answer as shown). The span never leaves [start, end) and is cut to whole
words without edge punctuation: `text[s:e]` is what is shown and checked.

The weights (qa/reader_model.json: one group for questions in the text's script, one for
others) are fitted by `bench/reader.py` on ARCD's and TyDi's answer spans, crosswise.

What this module does NOT do: choose the sentence (qa.compose), or check spans (qa.answer).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.lexical import fold, script_of, tokenize
from index.translit import arabic_skeleton, latin_skeletons
from qa.calibration import READER_FILE, CalibrationError, fitted_file, read_fitted, write_fitted
from qa.scoring import _MONTH_SET, _NUMBER_SET, question_type

FORMAT = "isnad-reader 4"
MAX_WORDS = 12
WINDOW = 4
EDGE = "\"'«»“”‘’()[]{}،,.:;؛!?؟-–—…"
KINDS = ("time", "number", "person", "place", "reason", "define", "other")
_PREPOSITIONS = frozenset(
    fold(w) for w in "في إلى الى من على عن منذ حتى خلال بين عند لدى نحو".split()
)
_PERSON = re.compile(r"(^|\W)(و?من (هو|هي|هم|الذي|التي)?|من الذي|لمن|who|whom|whose)(\W|$)")
_PLACE = re.compile(
    r"(^|\W)(و?اين|(في|الى|من) اي (مدينه|دوله|بلد|منطقه|مكان|قاره|ولايه|جزيره|حي|قريه)"
    r"|where|which (city|country|place|region|town)|in what (city|country))(\W|$)"
)
_REASON = re.compile(
    r"(^|\W)(و?لماذا|و?كيف|ما سبب|لم |why|how (did|does|do|is|was|can)|what caused)"
)
_DEFINE = re.compile(r"^\W*(ما|ماذا|من) (هو|هي|هم|تعني|يعني)\b|^\W*(what|who) (is|are|was|were)\b")
_YEAR = re.compile(r"^(1[0-9]|20)\d\d$")


class ReaderModelError(CalibrationError):
    """The reader's weights are missing or malformed; the message says what to run."""


def question_kind(question: str) -> str:
    """What a question asks for, one of KINDS, from its wording (Arabic or English).
    >>> question_kind("أين يقع مسجد السلطان عبد المجيد؟"), question_kind("Who invented it?")
    ('place', 'person')
    """
    kind = question_type(question)
    if kind:
        return kind
    q = fold(" ".join(question.split()))
    for name, pattern in (("place", _PLACE), ("person", _PERSON), ("reason", _REASON)):
        if pattern.search(q):
            return name
    return "define" if _DEFINE.search(q) else "other"


@dataclass(frozen=True)
class Words:
    """A sentence's words: each one's (start, end) without edge punctuation, its folded form,
    its stem ("" for stopwords) and its skeleton."""

    spans: tuple[tuple[int, int], ...]
    folded: tuple[str, ...]
    stems: tuple[str, ...]
    skeletons: tuple[str, ...]
    ends_clause: tuple[bool, ...]  # punctuation right after the word


def words_of(text: str, start: int, end: int) -> Words:
    spans, folded, stems, skel, ends = [], [], [], [], []
    for m in re.finditer(r"\S+", text[start:end]):
        a, b = start + m.start(), start + m.end()
        while a < b and text[a] in EDGE:
            a += 1
        core_end = b
        while core_end > a and text[core_end - 1] in EDGE:
            core_end -= 1
        if core_end <= a:
            continue
        word = text[a:core_end]
        f = fold(word)
        spans.append((a, core_end))
        folded.append(f)
        stems.append(_stem(word))
        skel.append(arabic_skeleton(f) if not f.isdigit() else f)
        ends.append(core_end < b)
    return Words(tuple(spans), tuple(folded), tuple(stems), tuple(skel), tuple(ends))


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    tokens = tokenize(word)
    return tokens[0] if tokens else ""


@dataclass(frozen=True)
class Question:
    """What the reader needs of a question, computed once."""

    kind: str
    wh: str  # its first word, folded ("متي", "كم", "من", "when" ...)
    stems: frozenset[str]  # its content words' stems (same script as the text)
    skeletons: frozenset[str]  # its names' skeletons (another script)
    cross: bool

    @classmethod
    def of(cls, question: str, text_script: str = "arabic") -> Question:
        cross = script_of(question) != text_script
        stems = frozenset() if cross else frozenset(tokenize(question))
        skeletons = frozenset(latin_skeletons(question)) if cross else frozenset()
        first = fold(question).split()[:1]
        wh = _word_class(_bare(first[0].strip("؟?!.,،:"))) if first else ""
        return cls(question_kind(question), wh, stems, skeletons, cross)


def matches(q: Question, w: Words) -> np.ndarray:
    """Per word: it is one of the question's words (by stem, or by skeleton across scripts)."""
    if q.cross:
        return np.array([s in q.skeletons for s in w.skeletons], bool)
    return np.array([bool(s) and s in q.stems for s in w.stems], bool)


DENSE = (
    "log_len", "len1", "len2_3", "len4_6", "len7+", "overlap", "digit", "year", "month",
    "number_word", "prep_first", "al_first", "before_left", "after_right", "near", "adjacent",
    "dist", "clause_end", "sent_start", "sent_end", "after_match", "comma_inside",
)  # fmt: skip
HASH_BITS = 12  # lexical features hashed into 2**12 weights
# The lexical templates, each crossed with the question's kind: the span's first and last
# word, the words around it, its length and edge, the question's first word with the span's
# first word, the shapes of the span's edges.
TEMPLATES = ("first", "last", "prev", "next", "len_edge", "wh_first", "shape", "hit_first")


def candidates(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of every span of 1..MAX_WORDS words among n words (words i..j-1)."""
    i = np.repeat(np.arange(n), [min(MAX_WORDS, n - k) for k in range(n)])
    j = np.concatenate([np.arange(k + 1, min(n, k + MAX_WORDS) + 1) for k in range(n)]) if n else i
    return i.astype(np.int64), j.astype(np.int64)


def dense_features(
    kind: str, w: Words, hit: np.ndarray, i: np.ndarray, j: np.ndarray
) -> np.ndarray:
    """(n_spans, len(DENSE) * (1 + len(KINDS))) for the spans (i, j) of a sentence's words:
    DENSE, then DENSE again in the block of the question's `kind` (zeros elsewhere)."""
    n = len(w.spans)
    length = (j - i).astype(np.float32)

    def ranged(flags) -> np.ndarray:  # how many of words i..j-1 have the flag
        c = np.concatenate([[0], np.cumsum(np.asarray(flags, np.float32))])
        return c[j] - c[i]

    def before(flags, k) -> np.ndarray:  # how many of the k words before i have it
        c = np.concatenate([[0], np.cumsum(np.asarray(flags, np.float32))])
        return c[i] - c[np.maximum(i - k, 0)]

    def after(flags, k) -> np.ndarray:
        c = np.concatenate([[0], np.cumsum(np.asarray(flags, np.float32))])
        return c[np.minimum(j + k, n)] - c[j]

    digit = [any(ch.isdigit() for ch in x) for x in w.folded]
    year = [bool(_YEAR.match(x)) for x in w.folded]
    month = [_bare(x) in _MONTH_SET for x in w.folded]
    number = [_bare(x) in _NUMBER_SET for x in w.folded]
    hits = np.asarray(hit, bool)
    where = np.flatnonzero(hits)
    if len(where):
        # distance from the span to the nearest question word outside it
        left = np.searchsorted(where, i, side="left") - 1
        right = np.searchsorted(where, j, side="left")
        d_left = np.where(left >= 0, i - where[np.maximum(left, 0)], 10)
        d_right = np.where(
            right < len(where), where[np.minimum(right, len(where) - 1)] - (j - 1), 10
        )
        dist = np.minimum(np.minimum(d_left, d_right), 10) / 10
    else:
        dist = np.ones(len(i))
    ends = np.asarray(w.ends_clause, bool)
    ends_c = np.concatenate([[0], np.cumsum(ends[:-1].astype(np.float32))]) if n else np.zeros(1)
    prev_hit = np.where(i > 0, hits[np.maximum(i - 1, 0)], False)
    next_hit = np.where(j < n, hits[np.minimum(j, n - 1)], False)
    left_n, right_n = before(hits, WINDOW), after(hits, WINDOW)
    cols = [
        np.log(length),
        length == 1,
        (length >= 2) & (length <= 3),
        (length >= 4) & (length <= 6),
        length >= 7,
        ranged(hits) / length,
        ranged(digit) > 0,
        ranged(year) > 0,
        ranged(month) > 0,
        ranged(number) > 0,
        np.array([w.folded[k] in _PREPOSITIONS for k in i]),
        np.array([w.folded[k].startswith("ال") for k in i]),
        np.minimum(left_n, 3) / 3,
        np.minimum(right_n, 3) / 3,
        np.minimum(left_n + right_n, 4) / 4,
        prev_hit | next_hit,
        dist,
        ends[j - 1] | (j == n),
        i == 0,
        j == n,
        prev_hit,
        (np.take(ends_c, j - 1) - np.take(ends_c, i)) > 0 if n else np.zeros(0),
    ]
    base = np.stack([np.asarray(c, np.float32) for c in cols], axis=1)
    # each feature also crossed with what the question asks for (a month matters to "when")
    crossed = np.zeros((len(i), len(KINDS) * base.shape[1]), np.float32)
    at = KINDS.index(kind) * base.shape[1]
    crossed[:, at : at + base.shape[1]] = base
    return np.concatenate([base, crossed], axis=1)


def hashed_features(q: Question, w: Words, hit, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """(n_spans, len(TEMPLATES)) indices into the 2**HASH_BITS lexical weights. Words are
    themselves only where they are function words (FUNCTION_WORDS); any other word is its
    shape and clitic (`_word_class`), so the weights learn how answers are framed, not which
    names a question set happens to ask about."""
    n = len(w.spans)
    bare = [_word_class(x) for x in w.folded]
    shape = [_shape(x) for x in w.folded]
    rows = []
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        k = q.kind
        prev = bare[a - 1] if a > 0 else "<s>"
        nxt = bare[b] if b < n else "</s>"
        edge = w.ends_clause[b - 1] or b == n
        rows.append(
            [
                f"{k}|f|{bare[a]}",
                f"{k}|l|{bare[b - 1]}",
                f"{k}|p|{prev}",
                f"{k}|n|{nxt}",
                f"{k}|len|{min(b - a, 8)}|{edge}",
                f"{q.wh}|wf|{bare[a]}",
                f"{k}|s|{shape[a]}|{shape[b - 1]}",
                f"{k}|h|{a > 0 and bool(hit[a - 1])}|{shape[a]}",
            ]
        )
    return np.array([[_hash(t) for t in r] for r in rows], np.int64).reshape(-1, len(TEMPLATES))


# Closed-class words (prepositions, conjunctions, pronouns, particles, copulas) and the few
# nouns and verbs that frame answers (dates, places, numbers, births, statements), folded.
FUNCTION_WORDS = frozenset(
    fold(x)
    for x in """في من إلى على عن مع منذ حتى خلال بين عند لدى نحو حول ضد بعد قبل أثناء بسبب عبر دون
    غير سوى أو أم ثم لكن بل و ف هو هي هم هن أنا نحن هذا هذه ذلك تلك هؤلاء الذي التي الذين ما
    ماذا متى أين كيف كم لماذا أي أن إن أنه أنها كان كانت يكون تكون ليس قد لقد لم لن لا سوف عام
    سنة يوم شهر قرن مدينة دولة قرية منطقة ولاية حيث كما مثل إذ إذا لو كل بعض جميع أول آخر مليون
    ألف مائة مئة حوالي أكثر أقل ولد توفي يقع تقع أسس تأسس قال أعلن أكد أضاف بلغ يبلغ وهو وهي
    وكان وكانت الذي اسم يسمى تسمى باسم بن ابن بنت عاصمة the of in on at by for from and or is
    was a an""".split()
)
_CLITICS = ("وال", "بال", "فال", "لل", "ال", "و", "ب", "ل", "ف", "ك")


@lru_cache(maxsize=1 << 16)
def _word_class(word: str) -> str:
    """A function word as itself; any other word as its clitic and shape: «والمدينة» ->
    "#وال·w", «1990» -> "#·d"."""
    if word in FUNCTION_WORDS:
        return word
    clitic = next((c for c in _CLITICS if word.startswith(c) and len(word) - len(c) >= 2), "")
    return f"#{clitic}·{_shape(word)}"


@lru_cache(maxsize=1 << 18)
def _hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8")) & ((1 << HASH_BITS) - 1)


def _shape(word: str) -> str:
    if any(c.isdigit() for c in word):
        return "d"
    if _bare(word) in _MONTH_SET:
        return "m"
    if _bare(word) in _NUMBER_SET:
        return "n"
    if word in _PREPOSITIONS:
        return "p"
    if word.startswith(("ال", "وال", "بال", "لل")):
        return "a"
    if word.isascii():
        return "l"
    return "w"


def _bare(word: str) -> str:
    for p in ("وال", "بال", "لل", "ال", "و", "ب", "ف"):
        if word.startswith(p) and len(word) - len(p) >= 2:
            return word[len(p) :]
    return word


@dataclass(frozen=True)
class ReaderGroup:
    mean: np.ndarray  # (len(DENSE) * (1 + len(KINDS)),)
    scale: np.ndarray
    dense: np.ndarray  # weights of the standardised dense features
    lexical: np.ndarray  # (2**HASH_BITS,) weights of the hashed features
    threshold: float  # the best span is the short answer when its probability reaches this

    def logits(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.dense + self.lexical[h].sum(axis=1)


@dataclass(frozen=True)
class ReaderModel:
    groups: dict[str, ReaderGroup]  # "same" (the text's script), "cross"
    notes: dict

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "dense": list(DENSE),
            "templates": list(TEMPLATES),
            "hash_bits": HASH_BITS,
            "groups": {
                name: {
                    "mean": [round(float(v), 6) for v in g.mean],
                    "scale": [round(float(v), 6) for v in g.scale],
                    "dense": [round(float(v), 6) for v in g.dense],
                    "lexical": [round(float(v), 5) for v in g.lexical],
                    "threshold": g.threshold,
                }
                for name, g in self.groups.items()
            },
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReaderModel:
        same = (
            data.get("format") == FORMAT
            and tuple(data.get("dense", ())) == DENSE
            and tuple(data.get("templates", ())) == TEMPLATES
            and data.get("hash_bits") == HASH_BITS
        )
        if not same:
            raise ReaderModelError(
                f"reader model has format {data.get('format')!r} and other features than this "
                "isnad's; refit it with `python bench/reader.py ... --fit`"
            )
        groups = {
            name: ReaderGroup(
                np.array(g["mean"], np.float32),
                np.array(g["scale"], np.float32),
                np.array(g["dense"], np.float32),
                np.array(g["lexical"], np.float32),
                float(g["threshold"]),
            )
            for name, g in data["groups"].items()
        }
        if "same" not in groups:
            raise ReaderModelError("reader model has no 'same' group; refit it")
        return cls(groups, data.get("notes", {}))


def load_reader_model(path: Path | None = None) -> ReaderModel:
    """The weights in `path`, by default the calibration folder's (qa.calibration), or the
    shipped ones where that folder has none."""
    path = fitted_file(READER_FILE) if path is None else path
    data = read_fitted(path, "reader model", "python bench/reader.py ... --fit", ReaderModelError)
    return ReaderModel.from_dict(data)


def save_reader_model(model: ReaderModel, path: Path) -> None:
    write_fitted(model.to_dict(), path)


def features(q: Question, w: Words) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, dense, hashed) of every candidate span of a sentence's words."""
    hit = matches(q, w)
    i, j = candidates(len(w.spans))
    return i, j, dense_features(q.kind, w, hit, i, j), hashed_features(q, w, hit, i, j)


def pick(group: ReaderGroup, x: np.ndarray, h: np.ndarray, i: np.ndarray, j: np.ndarray):
    """(the best candidate, the reader's confidence in it) among a sentence's candidates."""
    logits = group.logits(x, h)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    k = int(np.argmax(p))
    return k, confidence(p, i, j, k)


def confidence(p: np.ndarray, i: np.ndarray, j: np.ndarray, k: int) -> float:
    """How sure the reader is of span k: the probability of every candidate sharing a word with
    it. The softmax spreads one answer over the spans that hold it ("23.7", "23.7 %", "23.7 %
    من" on the seeds: .15, .18, .06), so span k's own share says too little."""
    return float(p[(i < j[k]) & (j > i[k])].sum())


class Reader:
    def __init__(self, model: ReaderModel) -> None:
        self.model = model

    def best(self, question: str, text: str, start: int, end: int, script: str = "arabic"):
        """(start, end, confidence, threshold) of the best span of text[start:end], or None if
        it has no words."""
        q = Question.of(question, script)
        w = words_of(text, start, end)
        if not w.spans:
            return None
        i, j, x, h = features(q, w)
        group = self.model.groups.get("cross" if q.cross else "same") or self.model.groups["same"]
        k, sure = pick(group, x, h, i, j)
        return w.spans[i[k]][0], w.spans[j[k] - 1][1], sure, group.threshold

    def read(self, question: str, text: str, start: int, end: int, script: str = "arabic"):
        """(start, end) of the short answer in text[start:end], or None when not confident."""
        found = self.best(question, text, start, end, script)
        if found is None:
            return None
        s, e, p, threshold = found
        return (s, e) if p >= threshold else None
