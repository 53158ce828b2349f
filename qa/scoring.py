"""How well one precomputed sentence answers a question: the score shared by ranking and citing.

`score = cosine(question, "title: sentence") + w_coverage * coverage + w_type * type_match`:
- the cosine uses the sentence vectors stored in the index (DESIGN: the strongest single signal);
- coverage is the share of the question's character trigrams (normalised words, stopwords
  dropped, and the words of the sentence's article title left out) found in the sentence; it
  only counts when the question is written in the corpus' script (across scripts word overlap
  is noise; names are matched instead, index.translit);
- type_match is 1 when a "when" question meets a sentence with a year, month or century, or a
  "how many" question one with a number (DESIGN: "when" .78 -> .84).

What this module does NOT do: embed (vectors come from the index), or choose what to cite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from index.articles import title_from_lead
from index.lexical import WORD, fold, is_stopword, normalize
from index.store import Index
from index.translit import arabic_skeletons, latin_skeletons
from index.vectors import read_rows


@dataclass(frozen=True)
class Weights:
    # Chosen on half of ARCD's articles: answer@1 .63 with the cosine alone, .69 with these;
    # coverage .05-.10 and type 0-.06 all within .01 of each other, coverage .2 worse.
    # Re-measured on the sentences-only indexes (bench/answers.py, distractors in the index,
    # answer@1 of ARCD with the TyDi-fitted abstention / of TyDi with the ARCD-fitted one):
    # coverage 0 .629/.853, .03 .684/.846, .05 .691/.837, .07 .688/.831, .10 .680/.822,
    # .15 .659/.782. Chosen on ARCD (.05: its best answer@1), so TyDi's .822 -> .837 is the
    # out-of-sample figure; TyDi alone would choose 0 (its askers did not see the passage and
    # share fewer words with it), which costs ARCD .05.
    coverage: float = 0.05
    type: float = 0.03
    # Questions in another script than the corpus (English over Arabic): the share of their
    # names' consonant skeletons found in the sentence (index.translit) instead of coverage.
    # English hit@5 .735 -> .79 (ARCD), .86 -> .90 (TyDi); .03 and .05 within .01 on both.
    names: float = 0.05


@dataclass(frozen=True)
class Scored:
    row: int  # sentence row in the index
    score: float
    cosine: float
    coverage: float
    type_match: float


_MONTHS = (
    "يناير فبراير مارس ابريل أبريل مايو يونيو يونيه يوليو يوليه اغسطس أغسطس سبتمبر اكتوبر "
    "أكتوبر نوفمبر ديسمبر جانفي فيفري أفريل ماي جوان جويلية أوت كانون شباط آذار نيسان أيار "
    "حزيران تموز آب أيلول تشرين محرم صفر ربيع جمادى رجب شعبان رمضان شوال ذو القرن القرون "
    "january february march april may june july august september october november december "
    "century"
)
_NUMBER_WORDS = (
    "واحد اثنان اثنين اثنتان ثلاث ثلاثة أربع أربعة خمس خمسة ست ستة سبع سبعة ثمان ثمانية تسع "
    "تسعة عشر عشرة عشرون عشرين مئة مائة مئات الف ألف آلاف مليون ملايين مليار "
    "one two three four five six seven eight nine ten hundred thousand million billion"
)
_MONTH_SET = frozenset(normalize(w)[0] for w in _MONTHS.split())
_NUMBER_SET = frozenset(normalize(w)[0] for w in _NUMBER_WORDS.split())
# Matched against the normalised question (alef forms unified, ى -> ي, Latin lowercased).
_ASKS_TIME = re.compile(
    r"(^|\W)(و?متي|(في|ب)? ?اي (عام|سنه|شهر|يوم|تاريخ|قرن)|when|what year|which year"
    r"|what date|which century|what century)(\W|$)"
)
_ASKS_NUMBER = re.compile(
    r"(^|\W)(و?ب?كم|ما (هو )?عدد|ماهو عدد|how many|how much|how old|how long|how far"
    r"|what number|what percentage)(\W|$)"
)


def question_type(question: str) -> str:
    """ "time", "number" or "" from a question's wording, Arabic or English.
    >>> question_type("متى ولد جبران؟"), question_type("How many people died?")
    ('time', 'number')
    """
    q = normalize(question)[0]
    if _ASKS_TIME.search(q):
        return "time"
    if _ASKS_NUMBER.search(q):
        return "number"
    return ""


def type_match(kind: str, sentence: str) -> float:
    """1.0 when `sentence` holds what a question of `kind` asks for, else 0.0."""
    if not kind:
        return 0.0
    words = _words(sentence)
    if kind == "time":
        return float(
            any(w.isdigit() and len(w) in (3, 4) for w in words)
            or any(_strip_prefix(w) in _MONTH_SET for w in words)
        )
    return float(any(w.isdigit() or _strip_prefix(w) in _NUMBER_SET for w in words))


def _strip_prefix(word: str) -> str:
    for p in ("وال", "بال", "لل", "ال", "و", "ب", "ف"):
        if word.startswith(p) and len(word) - len(p) >= 2:
            return word[len(p) :]
    return word


@lru_cache(maxsize=1 << 16)
def content_words(text: str) -> str:
    """The normalised, stopword-free words of text, as " w1 w2 ... wn ". Cached: the same
    sentences come back question after question (~6 ms a question saved on 10k articles)."""
    words = [w for w in _words(text) if not is_stopword(w)]
    return f" {' '.join(words)} "


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> tuple[str, ...]:
    return tuple(WORD.findall(fold(text)))


def trigrams(text: str) -> frozenset[str]:
    """Character trigrams of the normalised, stopword-free words, each padded with spaces."""
    padded = [f" {w} " for w in content_words(text).split()]
    return frozenset(p[i : i + 3] for p in padded for i in range(len(p) - 2))


def trigram_coverage(grams: frozenset[str], text: str) -> float:
    """Share of `grams` (a question's trigrams) among the trigrams of `text`.

    A question trigram has a space only at its start or end, so it is a trigram of some word
    of text exactly when it occurs in content_words(text): no need to build text's own set.
    """
    if not grams:
        return 0.0
    words = content_words(text)
    return sum(g in words for g in grams) / len(grams)


def name_coverage(names: frozenset[str], text: str) -> float:
    """Share of `names` (skeletons of a Latin-script question's names, index.translit) among
    the skeletons of the words of `text`."""
    if not names:
        return 0.0
    return len(names.intersection(arabic_skeletons(text))) / len(names)


def sentence_text(index: Index, row: int) -> str:
    a = index.articles[index.sent_article[row]]
    return a.text[index.sent_start[row] : index.sent_end[row]]


class QuestionScorer:
    """Scores sentence rows for one question (its vector, trigrams and type computed once)."""

    def __init__(
        self, index: Index, question: str, vector: np.ndarray, *, use_words: bool, weights: Weights
    ) -> None:
        self.index = index
        self.vector = vector
        self.weights = weights
        self.grams = trigrams(question) if use_words else frozenset()
        self.names = (
            frozenset(latin_skeletons(question))
            if not use_words and weights.names > 0
            else frozenset()
        )
        self.kind = question_type(question)
        self._grams_of_article: dict[int, frozenset[str]] = {}

    def article_grams(self, article_row: int) -> frozenset[str]:
        """The question's trigrams less those of the article's title: the title's words are
        in every "title: sentence" vector already and tell none of its sentences apart
        ("ماهي الدولة التي تحد سوريا شمالاً؟" matched the lead's «سوريا» over «يحدها شمالاً
        تركيا»). All of them when the title holds every one."""
        if not self.grams:
            return self.grams
        grams = self._grams_of_article.get(article_row)
        if grams is None:
            article = self.index.articles[article_row]
            # a title made from the lead is no headline: its words are the lead's own
            title = frozenset() if title_from_lead(article) else trigrams(article.title)
            grams = self._grams_of_article[article_row] = (self.grams - title) or self.grams
        return grams

    def score(self, rows: list[int]) -> list[Scored]:
        """Scored sentences, in the order of `rows`."""
        if not rows:
            return []
        cosines = (read_rows(self.index.sent_vectors, rows) @ self.vector).tolist()
        out = []
        for row, cos in zip(rows, cosines, strict=True):
            text = sentence_text(self.index, row)
            if self.names:
                cov = name_coverage(self.names, text)
                score = cos + self.weights.names * cov
            else:
                grams = self.article_grams(int(self.index.sent_article[row]))
                cov = trigram_coverage(grams, text)
                score = cos + self.weights.coverage * cov
            tm = type_match(self.kind, text)
            score += self.weights.type * tm
            out.append(Scored(row, score, cos, cov, tm))
        return out


class MeanScorer:
    """Scores sentences by the mean of several scorers: a follow-up question and the same
    question with its chat context. With one scorer, exactly that scorer's scores."""

    def __init__(self, scorers: list[QuestionScorer]) -> None:
        assert scorers, "at least one scorer"
        self.scorers = scorers

    def score(self, rows: list[int]) -> list[Scored]:
        if len(self.scorers) == 1:
            return self.scorers[0].score(rows)
        each = [s.score(rows) for s in self.scorers]
        n = len(each)
        return [
            Scored(
                group[0].row,
                sum(g.score for g in group) / n,
                sum(g.cosine for g in group) / n,
                sum(g.coverage for g in group) / n,
                sum(g.type_match for g in group) / n,
            )
            for group in zip(*each, strict=True)
        ]
