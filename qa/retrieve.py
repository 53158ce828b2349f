"""Question -> ranked chunks: dense, sentence-level dense and BM25, fused by reciprocal rank,
then the head reranked by each chunk's best sentence.

Three rankings of up to `depth` chunks each:
- dense: FAISS inner product of the question and the chunk vectors;
- sentences: each chunk's best cosine with the stored "title: sentence" vectors of the
  sentences it overlaps (DESIGN: the strongest single signal);
- lexical: BM25, trusted only where the question is written in a script of the corpus. An English
  question over Arabic articles gets `lexical_weight = 0`: BM25 has nothing to say there and
  fusing it in hurt (DESIGN: hit@1 .16 vs .63 dense alone).
A chunk's fused score is `sum(w / (rrf_k + rank))` over the rankings that hold it. The best
`max(rerank, k)` fused chunks are then ordered by their best sentence's score (qa.scoring:
cosine + trigram coverage + question type), which is `Hit.score`. Measured on ARCD's 1,395
questions: hit@1 .65 for dense+BM25 fusion, .69 with the sentence ranking, .75 reranked; with
10k news articles as distractors hit@1 .74, hit@5 .93 (bench/answers.py). 51 English
questions over ARCD: hit@1 .39 with BM25 fused into dense at equal weight, .61 dense alone.

BM25 also speaks inside the rerank, for questions in the corpus's script: its `lexical_head`
best chunks join the head wherever fusion put them (of ARCD's 106 questions whose answer was
not in the top five, 30 had it in BM25's top five, but 65 had it outside the fused head of 30:
rank fusion drowns a chunk only BM25 finds, e.g. by the question's one rare name), and a
chunk's score gains `w_lexical_rerank` x its BM25 score over the best BM25 score. Measured with
10k news articles as distractors (hit@1 / hit@5; TyDi, whose askers had not seen the passage,
is the set that was not used to choose): none .746/.924 ARCD, .913/.982 TyDi; head of 5 .750/
.931, TyDi unchanged (3, 5 and 10 all leave TyDi unchanged; sentences' or dense chunks' own top
fives add nothing, they are in the head already); with the rerank weight .01 .761/.939 and
.912/.984, .02 .770/.941 and .913/.982, .04 .763/.938 and .908/.981, .08 .743/.930 and .890/.973.
TyDi alone would choose .01 (its best hit@1 + hit@5), ARCD .02, which TyDi does not mind. The
chunk's cosine added for same-script questions as it is across scripts (w .1-.5) cost ARCD
hit@1 .01-.05 for TyDi +.005: not kept.

Filters (qa.filters) are applied inside the three searches (FAISS with an id selector, BM25 and
the sentence ranking over the allowed chunks only); the floors are read unfiltered. A period the
question names (qa.timeq) adds a fourth ranking, its sentences within that period, and
`period_bonus` to that period's chunks in the rerank; "latest" orders the hits within
`latest_band` of the best newest first. Of a story's wire copies (index.copies) only the best
ranked article's chunks are kept.

What this module does NOT do: choose what to cite or abstain (qa.compose, qa.abstain), or
embed anything but the questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from index import vectors as vector_search
from index.chunking import sentence_ranges
from index.encoder import Encoder
from index.lexical import script_of
from index.store import Index
from qa.scoring import MeanScorer, QuestionScorer, Scored, Weights
from qa.shift import QueryShift, load_query_shift
from qa.timeq import TimeHint, time_in_question

SCRIPT_SAMPLE = 200  # articles looked at to decide the corpus' scripts
SCRIPT_SHARE = 0.2
BATCH = 32  # questions scored against all sentences at once (memory: BATCH x n_sentences)
OUT = np.float32(-3.0)  # below any cosine: the score of a chunk a filter leaves out
SENTENCE_PROBE = 10  # x depth: sentences fetched by an approximate sentence search


@dataclass(frozen=True)
class RetrievalSettings:
    depth: int = 100  # chunks ranked by each side; the floors are read at this rank
    rrf_k: int = 60
    w_dense: float = 1.0
    w_sentence: float = 1.5
    w_lexical: float = 1.0
    rerank: int = 30  # fused chunks reordered by their best sentence
    lexical_head: int = 5  # BM25's best chunks join the reranked head wherever fusion put them
    w_lexical_rerank: float = 0.02  # + this x (the chunk's BM25 / the best BM25), in the rerank
    w_chunk_across: float = 0.5  # questions in another script: + this x the chunk's cosine
    w_period: float = 1.0  # the sentence ranking within a period the question names (qa.timeq)
    period_bonus: float = 0.05  # added to the rerank score of chunks from that period
    latest_band: float = 0.05  # "latest": hits within this of the best are ordered newest first
    weights: Weights = Weights()


@dataclass(frozen=True)
class Hit:
    chunk_row: int
    score: float  # the chunk's best sentence score (qa.scoring); hits are ordered by it
    dense: float  # cosine of the question and the chunk
    lexical: float  # BM25 score, 0.0 where BM25 did not rank the chunk
    fused: float  # reciprocal-rank fusion score


@dataclass(frozen=True)
class _Lists:
    """The three rankings of one query text, and what is read off them."""

    text: str
    vector: np.ndarray
    script: str
    lexical_weight: float
    dense: list[int]
    sentence: list[int]
    lexical: list[tuple[int, float]]
    dense_floor: float
    sentence_floor: float
    hint: TimeHint = TimeHint()  # the time the text names (qa.timeq)
    period: list[int] = field(default_factory=list)  # sentence ranking within that period
    in_period: np.ndarray | None = None  # per chunk: from that period (None if none named)


@dataclass(frozen=True)
class Ranking:
    """One question's retrieval, with what answering needs besides the hits."""

    question: str
    hits: tuple[Hit, ...]
    vector: np.ndarray  # the question's unit vector (dim,)
    script: str  # script_of(question)
    lexical_weight: float  # how far BM25 was trusted for this question
    dense_floor: float  # cosine of the depth-th dense chunk: what an unrelated chunk scores
    sentence_floor: float  # likewise for the best-sentence cosine
    sentences: dict[int, Scored]  # sentence row -> score, for every sentence of every hit
    hit_sentences: dict[int, range]  # chunk row of each hit -> the sentence rows it overlaps
    scorer: MeanScorer  # scores further sentences for this question
    # chunk row of a hit -> what its BM25 match added to its rerank score (none: nothing)
    lexical_bonus: dict[int, float] = field(default_factory=dict)


def dense_search(vectors: np.ndarray, index: Index, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """FAISS inner-product search: (cosines, chunk rows), each (n_questions, min(depth, n))."""
    depth = min(depth, len(index))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if depth == 0:
        return np.zeros((len(vectors), 0), np.float32), np.zeros((len(vectors), 0), np.int64)
    scores, rows = vector_search.search(
        index.faiss_index, vectors, depth, None, index.chunk_vectors
    )
    # exact search always fills the list; an IVF index may not (its probed lists ran short)
    assert vector_search.is_ivf(index.faiss_index) or (rows >= 0).all(), (
        "FAISS returned too few rows"
    )
    return scores, rows


def dense_search_within(
    vector: np.ndarray, index: Index, allowed: np.ndarray, depth: int
) -> list[int]:
    """The `depth` best chunk rows among `allowed` (a bool per chunk), searched by FAISS with an
    id selector: a narrow filter still gets its own best chunks, not the leftovers of a global
    top list."""
    _, rows = vector_search.search(
        index.faiss_index, vector.reshape(1, -1), depth, allowed, index.chunk_vectors
    )
    return [int(r) for r in rows[0] if r >= 0]


def top_rows(scores: np.ndarray, depth: int) -> list[int]:
    """Rows of the `depth` best scores above OUT, best first (ties by row)."""
    depth = min(depth, int((scores > OUT).sum()))
    if depth == 0:
        return []
    rows = np.argpartition(-scores, depth - 1)[:depth]
    return rows[np.lexsort((rows, -scores[rows]))].tolist()


def chunk_sentences(index: Index) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per chunk: the sentence rows [lo, hi) overlapping it (contiguous)."""
    return sentence_ranges(
        index.chunk_article, index.chunk_start, index.chunk_end,
        index.sent_article, index.sent_start, index.sent_end,
    )  # fmt: skip


def corpus_scripts(index: Index) -> frozenset[str]:
    """The scripts ("arabic", "latin", ...) at least SCRIPT_SHARE of the articles (a sample of
    them) are written in: BM25 can match questions written in these."""
    sample = index.articles[:: max(1, len(index.articles) // SCRIPT_SAMPLE)]
    counts: dict[str, int] = {}
    for a in sample:
        s = script_of(f"{a.title} {a.text[:300]}")
        counts[s] = counts.get(s, 0) + 1
    return frozenset(s for s, n in counts.items() if n >= SCRIPT_SHARE * len(sample))


def fuse(rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int) -> dict[int, float]:
    """Reciprocal-rank fusion: {row: sum of w / (k + rank)} over the rankings holding row."""
    scores: dict[int, float] = {}
    for rows, w in zip(rankings, weights, strict=True):
        if w > 0:
            for rank, row in enumerate(rows, start=1):
                scores[row] = scores.get(row, 0.0) + w / (k + rank)
    return scores


class Retriever:
    """Ranks an index's chunks for questions. No mutable state after construction: safe to
    share across threads (the encoder serialises its own calls; on 2 cores parallel embedding
    gains nothing)."""

    def __init__(
        self,
        index: Index,
        encoder: Encoder,
        settings: RetrievalSettings | None = None,
        shift: QueryShift | None | str = "shipped",
    ) -> None:
        """`shift` (qa.shift) moves questions written in another script towards the corpus's
        language: "shipped" loads the calibration folder's (qa.calibration: qa/query_shift.json
        unless $ISNAD_CALIBRATION names another); None searches with vectors as embedded."""
        dim = index.chunk_vectors.shape[1]
        assert encoder.dim == dim, f"encoder dimension {encoder.dim} != index dimension {dim}"
        self.index = index
        self.encoder = encoder
        self.settings = settings or RetrievalSettings()
        self.corpus_scripts = corpus_scripts(index)
        shift = load_query_shift() if shift == "shipped" else shift
        applies = shift is not None and shift.applies(encoder.model_id, self.corpus_scripts)
        self.shift = shift if applies else None
        lo, hi = chunk_sentences(index)
        self._has_sentence = hi > lo
        # Each chunk's sentence rows, one after another; reduceat over them gives per-chunk maxima.
        spans = [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]
        self._flat = np.concatenate(spans).astype(np.int64) if spans else np.zeros(0, np.int64)
        offsets = np.concatenate([[0], np.cumsum(hi - lo)[:-1]]).astype(np.int64)
        self._offsets = np.minimum(offsets, max(len(self._flat) - 1, 0))
        self._lo, self._hi = lo.tolist(), hi.tolist()
        self._chunk_days = index.catalog.days[index.chunk_article]  # -1: no readable date
        if index.sentence_index is not None:
            # sentence row -> the chunks holding it (CSR), for the approximate sentence search
            owner = np.repeat(np.arange(len(lo)), np.asarray(hi) - np.asarray(lo))
            order = np.argsort(self._flat, kind="stable")
            self._sent_chunks = owner[order]
            self._sent_ptr = np.searchsorted(
                self._flat[order], np.arange(len(index.sent_start) + 1)
            )
            first = np.minimum(self._sent_ptr[:-1], max(len(self._sent_chunks) - 1, 0))
            self._sent_first_chunk = self._sent_chunks[first] if len(first) else first

    def encode(self, questions: Sequence[str]) -> np.ndarray:
        vectors = self.encoder.encode_queries(list(questions))
        return self.shift.apply(vectors, questions) if self.shift is not None else vectors

    def lexical_weight(self, question_script: str) -> float:
        """BM25's weight for a question: none when it is written in another script."""
        return self.settings.w_lexical if question_script in self.corpus_scripts else 0.0

    def search(self, question: str, k: int = 10) -> list[Hit]:
        return self.search_batch([question], k)[0]

    def search_batch(self, questions: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """For each question, its k best chunks, best first."""
        return [list(r.hits) for r in self.rank_batch(questions, k)]

    def rank_batch(
        self,
        questions: Sequence[str],
        k: int = 10,
        *,
        vectors: np.ndarray | None = None,
        contexts: Sequence[str | None] | None = None,
        allowed: Sequence[np.ndarray | None] | None = None,
    ) -> list[Ranking]:
        """Like search_batch, with each question's vector and retrieval facts.

        `vectors` (the questions' query embeddings) are computed here when not given.
        `allowed[i]`, when given, is one bool per article row: question i ranks only those
        articles' chunks (qa.filters), inside each search.
        `contexts[i]`, when given, is question i together with earlier turns of a chat: its
        rankings are fused in with the question's own, and sentences are scored by the mean
        of both, so a follow-up ("وماذا عن قسد؟") finds its own topic in the chat's context.
        """
        assert k > 0, f"k must be positive, got {k}"
        contexts = list(contexts) if contexts is not None else [None] * len(questions)
        assert len(contexts) == len(questions), "one context (or None) per question"
        allowed = list(allowed) if allowed is not None else [None] * len(questions)
        assert len(allowed) == len(questions), "one article mask (or None) per question"
        chunk_allowed = [
            None if a is None else np.asarray(a, bool)[self.index.chunk_article] for a in allowed
        ]
        if vectors is None:
            vectors = self.encode(questions) if questions else np.zeros((0, self.encoder.dim))
        extra = [c for c in contexts if c]
        context_vectors = self.encode(extra) if extra else np.zeros((0, vectors.shape[1]))
        out: list[Ranking] = []
        for lo in range(0, len(questions), BATCH):
            batch = range(lo, min(lo + BATCH, len(questions)))
            texts = [questions[i] for i in batch]
            own = {i: [j] for j, i in enumerate(batch)}
            rows = [vectors[i] for i in batch]
            masks = [chunk_allowed[i] for i in batch]
            for i in batch:
                if contexts[i]:
                    own[i].append(len(texts))
                    texts.append(contexts[i])
                    rows.append(context_vectors[sum(1 for c in contexts[:i] if c)])
                    masks.append(chunk_allowed[i])
            lists = self._lists(texts, np.array(rows, dtype=np.float32), k, masks)
            out.extend(self._rank(questions[i], [lists[j] for j in own[i]], k) for i in batch)
        return out

    def sentence_maxima(self, vectors: np.ndarray) -> np.ndarray:
        """(n_questions, n_chunks): each chunk's best cosine over its sentences (-1 if none)."""
        n_chunks = len(self.index)
        if not len(self._flat):
            return np.full((len(vectors), n_chunks), -1.0, np.float32)
        cos = vectors @ self.index.sent_vectors.T
        maxima = np.maximum.reduceat(cos[:, self._flat], self._offsets, axis=1)
        maxima[:, ~self._has_sentence] = -1.0
        return maxima

    def _lists(
        self, texts: list[str], vectors: np.ndarray, k: int, masks: list[np.ndarray | None]
    ) -> list[_Lists]:
        """The rankings of each text, each within its chunk mask (None: every chunk). The
        floors are read off the unfiltered rankings: what an unrelated chunk scores does not
        depend on the filter."""
        index = self.index
        depth = min(max(k, self.settings.depth), len(index))
        if index.sentence_index is not None:
            return self._lists_approximate(texts, vectors, depth, masks)
        dense_cos, dense_rows = dense_search(vectors, index, depth)
        maxima = self.sentence_maxima(vectors)
        if depth:
            sent_rows = np.argpartition(-maxima, depth - 1, axis=1)[:, :depth]
            order = np.argsort(-np.take_along_axis(maxima, sent_rows, 1), axis=1, kind="stable")
            sent_rows = np.take_along_axis(sent_rows, order, 1)
        else:
            sent_rows = np.zeros((len(texts), 0), np.int64)
        scripts = [script_of(t) for t in texts]
        weights = [self.lexical_weight(sc) for sc in scripts]
        asked = [i for i, w in enumerate(weights) if w > 0]
        found = (
            index.lexical.search_batch(
                [texts[i] for i in asked], depth, allowed=[masks[i] for i in asked]
            )
            if asked
            else []
        )
        lexical: list[list[tuple[int, float]]] = [[] for _ in texts]
        for i, hits in zip(asked, found, strict=True):
            lexical[i] = hits
        out = []
        for i, text in enumerate(texts):
            mask = masks[i]
            dense, sentence = dense_rows[i].tolist(), sent_rows[i].tolist()
            scores = maxima[i] if mask is None else np.where(mask, maxima[i], OUT)
            if mask is not None:
                dense = dense_search_within(vectors[i], index, mask, depth)
                sentence = top_rows(scores, depth)
            out.append(
                self._with_time(
                    _Lists(
                        text=text,
                        vector=vectors[i],
                        script=scripts[i],
                        lexical_weight=weights[i],
                        dense=dense,
                        sentence=sentence,
                        lexical=lexical[i],
                        dense_floor=float(dense_cos[i, -1]) if depth else 0.0,
                        sentence_floor=float(maxima[i, sent_rows[i, -1]]) if depth else 0.0,
                    ),
                    None,
                    scores,
                    depth,
                )
            )
        return out

    def _lists_approximate(
        self, texts: list[str], vectors: np.ndarray, depth: int, masks: list[np.ndarray | None]
    ) -> list[_Lists]:
        """`_lists` for an index past the exact-search bound (index.vectors): chunks and
        sentences are searched by their IVF indexes, and a chunk's best sentence is taken over
        the SENTENCE_PROBE x depth sentences found, not over all of them."""
        index = self.index
        dense_cos, dense_rows = dense_search(vectors, index, depth)
        scripts = [script_of(t) for t in texts]
        weights = [self.lexical_weight(sc) for sc in scripts]
        out = []
        for i, text in enumerate(texts):
            mask = masks[i]
            cand, best = self._found_sentences(vectors[i], depth, None)
            floor = float(np.sort(best)[::-1][min(depth, len(best)) - 1]) if len(best) else 0.0
            valid = dense_rows[i] >= 0
            dense = dense_rows[i][valid].tolist()
            dense_floor = float(dense_cos[i][valid][-1]) if valid.any() else 0.0
            if mask is not None:
                dense = dense_search_within(vectors[i], index, mask, depth)
                cand, best = self._found_sentences(vectors[i], depth, mask)
            lexical = []
            if weights[i] > 0:
                lexical = index.lexical.search_batch([text], depth, allowed=[mask])[0]
            out.append(
                self._with_time(
                    _Lists(
                        text=text,
                        vector=vectors[i],
                        script=scripts[i],
                        lexical_weight=weights[i],
                        dense=dense,
                        sentence=cand[top_rows(best, depth)].tolist(),
                        lexical=lexical,
                        dense_floor=dense_floor,
                        sentence_floor=floor,
                    ),
                    cand,
                    best,
                    depth,
                )
            )
        return out

    def _with_time(
        self, lists: _Lists, cand: np.ndarray | None, scores: np.ndarray, depth: int
    ) -> _Lists:
        """`lists` with the time its text names (qa.timeq) and, for a period, the chunks from it
        and its own sentence ranking: the best `scores` (of chunks `cand`, or of every chunk
        when None) inside the period."""
        hint = time_in_question(lists.text)
        if not hint.period:
            return replace(lists, hint=hint)
        days = self._chunk_days
        in_period = (days >= hint.since.toordinal()) & (days <= hint.until.toordinal())
        inside = in_period if cand is None else in_period[cand]
        rows = top_rows(np.where(inside, scores, OUT), depth)
        period = rows if cand is None else cand[rows].tolist()
        return replace(lists, hint=hint, period=period, in_period=in_period)

    def _found_sentences(
        self, vector: np.ndarray, depth: int, chunk_mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(chunk rows, each one's best cosine) over the sentences an approximate search finds
        (within the chunks `chunk_mask` allows)."""
        allowed = None if chunk_mask is None else chunk_mask[self._sent_first_chunk]
        cos, rows = vector_search.search(
            self.index.sentence_index,
            vector.reshape(1, -1),
            SENTENCE_PROBE * depth,
            allowed,
            self.index.sent_vectors,
        )
        keep = rows[0] >= 0
        sents, cos = rows[0][keep], cos[0][keep]
        counts = self._sent_ptr[sents + 1] - self._sent_ptr[sents]
        chunks = (
            np.concatenate(
                [self._sent_chunks[self._sent_ptr[r] : self._sent_ptr[r + 1]] for r in sents]
            )
            if len(sents)
            else np.zeros(0, np.int64)
        )
        cos = np.repeat(cos, counts)
        if not len(chunks):
            return chunks, cos.astype(np.float32)
        order = np.lexsort((-cos, chunks))  # by chunk, best first
        chunks, cos = chunks[order], cos[order]
        first = np.concatenate([[True], chunks[1:] != chunks[:-1]])
        return chunks[first], cos[first].astype(np.float32)

    def _rank(self, question: str, parts: list[_Lists], k: int) -> Ranking:
        """Fuse the rankings of a question (and of its chat context), rerank the head."""
        s, index, me = self.settings, self.index, parts[0]
        rankings, weights = [], []
        for p in parts:
            rankings += [p.dense, p.sentence, [r for r, _ in p.lexical], p.period]
            weights += [s.w_dense, s.w_sentence, p.lexical_weight, s.w_period]
        fused = fuse(rankings, weights, s.rrf_k)
        head = sorted(fused, key=lambda r: (-fused[r], r))[: max(k, s.rerank)]
        lex = dict(me.lexical)
        if me.lexical_weight > 0:
            # BM25's first few join the head even when the other lists rank them low: the
            # question's own rare words in one chunk (ARCD hit@5 .924 -> .931, TyDi unchanged)
            in_head = set(head)
            head += [r for r, _ in me.lexical[: s.lexical_head] if r not in in_head]
        scorer = MeanScorer(
            [
                QuestionScorer(
                    index, p.text, p.vector, use_words=p.lexical_weight > 0, weights=s.weights
                )
                for p in parts
            ]
        )
        rows = sorted({r for c in head for r in range(self._lo[c], self._hi[c])})
        scored = dict(zip(rows, scorer.score(rows), strict=True))
        best = {c: self._best_sentence(scored, c) for c in head}
        order = {c: best[c].score for c in head}
        if me.lexical_weight == 0 and s.w_chunk_across and head:
            # across scripts a sentence's cosine alone is a noisy guide: the chunk's own
            # cosine steadies it (English hit@1 ARCD .475 -> .495, TyDi .735 -> .750)
            cosines = index.chunk_vectors[head] @ me.vector
            for c, cos in zip(head, cosines.tolist(), strict=True):
                order[c] += s.w_chunk_across * cos
        # the time the question names, else the one its chat context names
        timed = next((p for p in parts if p.hint.period), None)
        bonus: dict[int, float] = {}
        if me.lexical_weight > 0 and s.w_lexical_rerank and me.lexical and me.lexical[0][1] > 0:
            # how well BM25 matched the chunk, relative to its best match (module docstring);
            # where the question names a period, not chunks dated outside it (the words of a
            # story from another year outweighed the period: bench/dated.py in-period@5 -.04)
            top_lexical = me.lexical[0][1]
            steered = timed is not None and s.period_bonus > 0
            for c in head:
                if not steered or timed.in_period[c] or self._chunk_days[c] < 0:
                    bonus[c] = s.w_lexical_rerank * lex.get(c, 0.0) / top_lexical
                    order[c] += bonus[c]
        if timed is not None and s.period_bonus:
            for c in head:
                order[c] += s.period_bonus * bool(timed.in_period[c])
        head.sort(key=lambda c: (-order[c], -fused[c], c))
        if me.hint.latest and head:
            head = self._newest_first(head, order)
        top = self._one_copy(head)[:k]
        cosines = (index.chunk_vectors[top] @ me.vector).tolist() if top else []
        hits = tuple(
            Hit(c, best[c].score, float(cos), float(lex.get(c, 0.0)), float(fused[c]))
            for c, cos in zip(top, cosines, strict=True)
        )
        return Ranking(
            question=question,
            hits=hits,
            vector=me.vector,
            script=me.script,
            lexical_weight=me.lexical_weight,
            dense_floor=me.dense_floor,
            sentence_floor=me.sentence_floor,
            sentences={r: scored[r] for c in top for r in range(self._lo[c], self._hi[c])},
            hit_sentences={c: range(self._lo[c], self._hi[c]) for c in top},
            scorer=scorer,
            lexical_bonus={c: bonus[c] for c in top if c in bonus},
        )

    def _newest_first(self, head: list[int], order: dict[int, float]) -> list[int]:
        """Within `latest_band` of the best, dated chunks newest first; the places of undated
        ones (and everything past the band) are kept."""
        best = order[head[0]]
        band = [i for i, c in enumerate(head) if order[c] >= best - self.settings.latest_band]
        dated = [i for i in band if self._chunk_days[head[i]] >= 0]
        newest = sorted((head[i] for i in dated), key=lambda c: -self._chunk_days[c])
        out = list(head)
        for i, c in zip(dated, newest, strict=True):
            out[i] = c
        return out

    def _one_copy(self, head: list[int]) -> list[int]:
        """Drop the chunks of an article when a wire copy of it (index.copies) ranks higher:
        one story is one source."""
        cluster, art = self.index.catalog.cluster, self.index.chunk_article
        first: dict[int, int] = {}
        return [c for c in head if first.setdefault(int(cluster[art[c]]), int(art[c])) == art[c]]

    def _best_sentence(self, scored: dict[int, Scored], chunk_row: int) -> Scored:
        rows = range(self._lo[chunk_row], self._hi[chunk_row])
        if not rows:  # a chunk without sentences (a built index has none)
            return Scored(-1, -1.0, -1.0, 0.0, 0.0)
        return max((scored[r] for r in rows), key=lambda x: (x.score, -x.row))
