"""Evaluation sets for bench/answers.py: questions with gold answer offsets, English
translations, and the rule that says whether a passage or a cited span holds the answer.

A set is a folder laid out as ../shared/eval/README.md says (articles/<id>.txt with the title on
the first line, questions.jsonl with answer offsets into the file text); its hand-translated
English questions live in bench/data/english-<name>.jsonl ({"id", "question"} by question id).

Counting follows ../shared/eval/README.md: a span holds the answer when it comes from the
question's article and contains the answer's span. Two kinds of twin article also count: ARCD's
articles that share a title (the answer text must then be inside the span), and articles whose
text is identical (isnad indexes such a text once, under the first id).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
EDGE = " \t\n،,.;:؛()«»\"'-"


@dataclass(frozen=True)
class EvalSet:
    name: str  # "arcd", "tydi"
    articles: Path
    questions: list[dict]  # each with "lang" ("ar" or "en") and the gold fields
    twins_by_title: bool  # ARCD: articles sharing a title count as one article


def load_set(name: str, folder: Path, limit: int = 0) -> EvalSet:
    """The set's Arabic questions (the first `limit`, if given) and their English
    translations, each a dict with "id", "question", "lang" and the gold fields."""
    lines = (folder / "questions.jsonl").read_text("utf-8").splitlines()
    arabic = [dict(json.loads(x), lang="ar") for x in lines if x.strip()]
    arabic = arabic[:limit] if limit else arabic
    english_file = DATA / f"english-{name}.jsonl"
    english = {}
    if english_file.is_file():
        for line in english_file.read_text("utf-8").splitlines():
            rec = json.loads(line)
            english[rec["id"]] = rec["question"]
    translated = [
        dict(q, question=english[q["id"]], lang="en") for q in arabic if q["id"] in english
    ]
    return EvalSet(name, folder / "articles", arabic + translated, twins_by_title=name == "arcd")


class Gold:
    """Where each question's answer is, and whether a span of an index holds it."""

    def __init__(self, index, evalset: EvalSet) -> None:
        from index.articles import text_key

        self.index = index
        self.twins_by_title = evalset.twins_by_title
        self.titles = [a.title for a in index.articles]
        by_text = {text_key(a.text): row for row, a in enumerate(index.articles)}
        self.rows: dict[str, int] = {}  # question's article id -> article row in the index
        for path in sorted(evalset.articles.glob("*.txt")):
            row = index.article_row.get(path.name)
            if row is None:  # indexed once under a twin's id
                text = path.read_text("utf-8")
                row = by_text.get(text_key(text))
            if row is not None:
                self.rows[path.stem] = row

    def target(self, q: dict) -> tuple[int, int, int, str]:
        """(article row, start, end, text) of the gold answer, trimmed of edge punctuation."""
        row = self.rows[q["article_id"]]
        ans, start = q["answers"][0], q["answer_starts"][0]
        lo, hi = len(ans) - len(ans.lstrip(EDGE)), len(ans.rstrip(EDGE))
        return row, start + lo, start + max(hi, lo), ans[lo:hi]

    def contains(self, q: dict, row: int, start: int, end: int) -> bool:
        a, s, e, text = self.target(q)
        if row == a:
            return start <= s and e <= end
        if self.twins_by_title and self.titles[row] == self.titles[a]:
            return text in self.index.articles[row].text[start:end]
        return False

    def chunk(self, q: dict, c: int) -> bool:
        ix = self.index
        return self.contains(
            q, int(ix.chunk_article[c]), int(ix.chunk_start[c]), int(ix.chunk_end[c])
        )


# --- short answers: SQuAD-style token F1 and exact match after Arabic normalisation -----------

_PUNCT = re.compile(r"[^\w\s]|_")


def normalize_answer(text: str) -> list[str]:
    """The answer's tokens after Arabic normalisation: diacritics and tatweel removed, alef
    forms unified (index.lexical.fold, which also unifies ta marbuta and alef maqsura and
    lowercases Latin), punctuation removed."""
    from index.lexical import fold

    return _PUNCT.sub(" ", fold(text)).split()


def answer_f1(prediction: str, golds: list[str]) -> tuple[float, float]:
    """(F1, exact match), each the best over the gold answers."""
    pred = normalize_answer(prediction)
    best_f1 = best_em = 0.0
    for gold in golds:
        g = normalize_answer(gold)
        best_em = max(best_em, float(pred == g))
        common = Counter(pred) & Counter(g)
        same = sum(common.values())
        if same:
            p, r = same / len(pred), same / len(g)
            best_f1 = max(best_f1, 2 * p * r / (p + r))
    return best_f1, best_em
