"""A question's ranking -> the spans to cite: sentences of the top passages, chosen by score.

Candidates are the index's sentences overlapping the top `passages` chunks, scored by
qa.scoring. The best one is cited, extended by its better neighbour when that scores within
`neighbour_margin` (DESIGN: the answer often runs over a sentence end; ARCD answer@1 .69 -> .74
at ~270 characters a citation). A sentence from another article that scores within
`second_margin` of the best is cited as a further source, unless it is a near copy of a span
already cited (wire copies are cited once). Sentences are ordered by their score plus what BM25
added to their passage in the rerank (qa.retrieve): first citation holds the answer, ARCD .747
-> .754, TyDi .847 -> .848. Measured and dropped: only the top passage's sentences (ARCD .753,
English ARCD .486 -> .477), a bonus for the top passage's sentences (English -.01), the sentence's
idf-weighted share of the question's words in its score (ARCD -.002..-.03, TyDi -.01..-.03).

What this module does NOT do: decide whether to answer (qa.abstain), or write the answer text
and check the spans (qa.answer).
"""

from __future__ import annotations

from dataclasses import dataclass

from index.store import Index
from qa.retrieve import Ranking
from qa.scoring import Scored, trigrams


@dataclass(frozen=True)
class ComposeSettings:
    passages: int = 3  # top chunks whose sentences are candidates
    neighbour_margin: float = 0.03
    second_margin: float = 0.02
    max_citations: int = 3
    max_citation_chars: int = 700  # a neighbour is not added past this length
    duplicate_jaccard: float = 0.6  # trigram overlap from which two spans are one text


@dataclass(frozen=True)
class Span:
    article_row: int
    start: int
    end: int
    score: float  # the score of the sentence the span was chosen for


def candidates(ranking: Ranking, settings: ComposeSettings) -> list[Scored]:
    """Scored sentences of the top passages, best first."""
    # the retriever already scored every sentence of every hit; a sentence is ordered by its
    # score plus what its passage's BM25 match added to the passage's own (qa.retrieve)
    bonus: dict[int, float] = {}
    for hit in ranking.hits[: settings.passages]:
        b = ranking.lexical_bonus.get(hit.chunk_row, 0.0)
        for r in ranking.hit_sentences[hit.chunk_row]:
            bonus[r] = max(bonus.get(r, 0.0), b)
    return sorted(
        (ranking.sentences[r] for r in bonus), key=lambda s: (-s.score - bonus[s.row], s.row)
    )


def choose_spans(
    scored: list[Scored], ranking: Ranking, index: Index, settings: ComposeSettings
) -> list[Span]:
    """The spans to cite, best first, from the `candidates` (best first); [] if there are none."""
    if not scored:
        return []
    best = scored[0]
    spans = [_with_neighbour(ranking, index, best, settings)]
    cited = [trigrams(_text(index, spans[0]))]
    for s in scored[1:]:
        if len(spans) >= settings.max_citations or s.score < best.score - settings.second_margin:
            break
        art = int(index.sent_article[s.row])
        if any(sp.article_row == art for sp in spans):
            continue
        grams = trigrams(index.articles[art].text[index.sent_start[s.row] : index.sent_end[s.row]])
        if any(_jaccard(grams, g) >= settings.duplicate_jaccard for g in cited):
            continue  # a copy of what is already cited
        spans.append(Span(art, int(index.sent_start[s.row]), int(index.sent_end[s.row]), s.score))
        cited.append(grams)
    return spans


def _with_neighbour(
    ranking: Ranking, index: Index, best: Scored, settings: ComposeSettings
) -> Span:
    art = int(index.sent_article[best.row])
    start, end = int(index.sent_start[best.row]), int(index.sent_end[best.row])
    own = index.sentence_rows(art)
    rows = [r for r in (best.row - 1, best.row + 1) if r in own]
    scored = [ranking.sentences.get(r) or ranking.scorer.score([r])[0] for r in rows]
    if scored:
        n = max(scored, key=lambda s: (s.score, -s.row))
        s, e = min(start, int(index.sent_start[n.row])), max(end, int(index.sent_end[n.row]))
        close = n.score >= best.score - settings.neighbour_margin
        if close and e - s <= settings.max_citation_chars:
            start, end = s, e
    return Span(art, start, end, best.score)


def _text(index: Index, span: Span) -> str:
    return index.articles[span.article_row].text[span.start : span.end]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0
