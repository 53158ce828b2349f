"""Questions -> answers made of verified cited spans, or an abstention with the closest passages.

`Answerer(index, encoder).ask(question, history)` retrieves (qa.retrieve), picks the spans to
cite (qa.compose), decides whether the evidence is strong enough (qa.abstain), and returns an
`Answer` whose text is the cited sentences with [n] markers. Every citation is checked against
its article right before it is returned: `text == article.text[start:end]`, inside the article,
not blank. A failed check is a bug: with `strict=True` (tests) it raises, otherwise the citation
is dropped and never shown.

A follow-up in a chat ("وماذا عن قسد؟", "and what about 2017?", or any question of at most
`FOLLOW_UP_WORDS` content words) is retrieved twice, alone and joined to the previous question,
and the two are fused (qa.retrieve): the follow-up's own topic leads, the chat's context helps.

What this module does NOT do: generate text. The answer is only ever article text, verbatim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from index.encoder import Encoder
from index.lexical import normalize, script_of, tokenize
from index.store import Index
from qa.abstain import AbstainModel, features, load_abstain_model
from qa.calibration import HOW
from qa.compose import ComposeSettings, Span, candidates, choose_spans
from qa.filters import Filters
from qa.reader import Reader, ReaderModel, load_reader_model
from qa.records import Answer, Citation, Copy, Passage, ShortAnswer
from qa.retrieve import Ranking, RetrievalSettings, Retriever
from qa.shift import QueryShift
from qa.story import MODES, asks_for_story, tell_story
from qa.story_model import StoryModel, load_story_model
from qa.timeline import TimelineSettings

MAX_QUESTION_CHARS = 2000
FOLLOW_UP_WORDS = 2
NOT_FOUND = {
    "arabic": "لا تذكر المقالات إجابة عن هذا السؤال.",
    "other": "The articles don't say.",
}
NO_MATCH = {  # a filter that leaves no article: said, not answered from everything (RAGFlow #11572)
    "arabic": "لا توجد مقالات تطابق التصفية ({}).",
    "other": "No article matches the filters ({}).",
}
# On the normalised question: a leading "and ..." / "what about ..." marks a follow-up.
_FOLLOW_UP = re.compile(
    r"^\s*(وماذا|وما|ومن|ومتي|وكم|واين|وكيف|وهل|ولماذا|وماذا عن|ماذا عن|وبالنسبه|"
    r"and|what about|how about|what of|and what)(\s|$)"
)


class QuestionError(Exception):
    """The question cannot be asked as it is; the message says what to change."""


class CitationError(AssertionError):
    """A citation failed its check against the article text (a bug, raised in strict mode)."""


def check_question(question: str) -> str:
    """The question, stripped; QuestionError if it is empty, only punctuation, or too long."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    q = question.strip()
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question has {len(q):,} characters; the limit is {MAX_QUESTION_CHARS:,}: "
            "shorten it to the question itself"
        )
    if not any(c.isalnum() for c in q):
        raise QuestionError(
            "the question is empty; ask something the articles may answer, "
            "e.g. «متى أُعلن وقف إطلاق النار؟» or «Who won the election?»"
        )
    return q


def is_follow_up(question: str) -> bool:
    """True for a question that leans on the previous one: it starts with "and ..."/"what
    about ..." (Arabic or English) or has at most FOLLOW_UP_WORDS content words."""
    starts_so = bool(_FOLLOW_UP.match(normalize(question)[0]))
    return starts_so or len(tokenize(question)) <= FOLLOW_UP_WORDS


def follow_up_context(question: str, history: Sequence[tuple[str, str]]) -> str | None:
    """For a follow-up, the earlier questions it leans on joined with it, else None: the last
    earlier question, and the ones before it while each is itself a follow-up (at most 3)."""
    earlier = [q.strip() for q, _ in history if isinstance(q, str) and q.strip()]
    if not earlier or not is_follow_up(question):
        return None
    chain = [earlier.pop()]
    while earlier and len(chain) < 3 and is_follow_up(chain[0]):
        chain.insert(0, earlier.pop())
    return " ".join(q[:MAX_QUESTION_CHARS] for q in [*chain, question])


class Answerer:
    """Answers questions over one index. Safe to share across threads: `ask` keeps no state
    between calls (the encoder is called under a lock)."""

    def __init__(
        self,
        index: Index,
        encoder: Encoder,
        *,
        k: int = 10,
        abstain_model: AbstainModel | None = None,
        retrieval: RetrievalSettings | None = None,
        compose: ComposeSettings | None = None,
        strict: bool = False,
        query_shift: QueryShift | None | str = "shipped",
        timeline: TimelineSettings | None = None,
        story_model: StoryModel | None = None,
        reader_model: ReaderModel | None = None,
    ) -> None:
        assert k > 0, f"k must be positive, got {k}"
        self.index = index
        self.k = k
        self.retriever = Retriever(
            index, encoder, retrieval or RetrievalSettings(), shift=query_shift
        )
        self.abstain_model = abstain_model or load_abstain_model()
        self.compose = compose or ComposeSettings()
        self.timeline = timeline or TimelineSettings()
        self.story_model = story_model or load_story_model()
        self.reader = Reader(reader_model or load_reader_model())
        self.strict = strict

    def calibration_warning(self) -> str | None:
        """A one-line note when the abstention weights were fitted for another embedding model."""
        fitted_for = self.abstain_model.model_id
        used = self.retriever.encoder.model_id
        if fitted_for and fitted_for != used:
            return (
                f"the abstention thresholds were calibrated for {fitted_for}, not {used}: "
                f"abstentions may be off; {HOW}"
            )
        return None

    def ask(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        filters: Filters | None = None,
        mode: str = "auto",
        max_entries: int | None = None,
    ) -> Answer:
        """Answer one question, in the light of earlier turns [(question, answer text), ...],
        from the articles `filters` (qa.filters) lets through. `mode`: "auto" tells a story
        question as a timeline (qa.story), "timeline" tries a timeline whatever the wording,
        "answer" never does; a timeline holds at most `max_entries` events (default 12)."""
        q = check_question(question)
        settings = self._timeline_settings(mode, max_entries)
        return self._answer([q], [follow_up_context(q, history)], [filters], [mode], settings)[0]

    def ask_batch(
        self,
        questions: Sequence[str],
        filters: Sequence[Filters | None] | None = None,
        modes: Sequence[str] | None = None,
        max_entries: int | None = None,
    ) -> list[Answer]:
        """Answer independent questions (no history), each with its own filters (or None) and
        mode (see ask; default "auto"); QuestionError names the bad question."""
        checked = []
        for i, q in enumerate(questions):
            try:
                checked.append(check_question(q))
            except QuestionError as exc:
                raise QuestionError(f"question {i + 1}: {exc}") from exc
        filters = list(filters) if filters is not None else [None] * len(checked)
        modes = list(modes) if modes is not None else ["auto"] * len(checked)
        for i, mode in enumerate(modes):
            if mode not in MODES:
                raise QuestionError(f"question {i + 1}: unknown mode {mode!r}; use {MODES}")
        settings = self._timeline_settings("auto", max_entries)
        return self._answer(checked, [None] * len(checked), filters, modes, settings)

    def _timeline_settings(self, mode: str, max_entries: int | None) -> TimelineSettings:
        """The timeline settings with `max_entries`; QuestionError for a bad mode or count."""
        if mode not in MODES:
            raise QuestionError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
        if max_entries is None:
            return self.timeline
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise QuestionError(
                f"a timeline shows at least one entry; got max entries {max_entries!r}, "
                "give 1 or more (default 12)"
            )
        return replace(self.timeline, max_entries=max_entries)

    def evidence_batch(
        self,
        questions: Sequence[str],
        contexts: Sequence[str | None] | None = None,
        allowed: Sequence[np.ndarray | None] | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[tuple[Ranking, list[Span], np.ndarray]]:
        """(ranking, spans, features) per question, before deciding to abstain (bench/ uses it
        to calibrate). `contexts`, `allowed`, `vectors`: see Retriever.rank_batch."""
        out = []
        rankings = self.retriever.rank_batch(
            list(questions), self.k, vectors=vectors, contexts=contexts, allowed=allowed
        )
        for ranking in rankings:
            scored = candidates(ranking, self.compose)
            spans = choose_spans(scored, ranking, self.index, self.compose)
            x = features(ranking, scored[0] if scored else None, self.index)
            out.append((ranking, spans, x))
        return out

    def _answer(
        self,
        questions: list[str],
        contexts: list[str | None],
        filters: list[Filters | None],
        modes: list[str],
        timeline: TimelineSettings,
    ) -> list[Answer]:
        assert len(filters) == len(questions) == len(modes), "one filter and mode per question"
        masks = [f.article_mask(self.index.catalog) if f else None for f in filters]
        answers: dict[int, Answer] = {}
        for i, (q, f, m) in enumerate(zip(questions, filters, masks, strict=True)):
            if m is not None and not m.any():
                lang = "arabic" if script_of(q) == "arabic" else "other"
                answers[i] = Answer(q, True, NO_MATCH[lang].format(f.describe()), (), ())
            elif modes[i] == "timeline" or (modes[i] == "auto" and asks_for_story(q)):
                answers[i] = tell_story(self, q, m, timeline)
        # answers, where no timeline was asked for or could be told (it says why in a note)
        todo = [i for i in range(len(questions)) if not isinstance(answers.get(i, ""), Answer)]
        evidence = self.evidence_batch(
            [questions[i] for i in todo], [contexts[i] for i in todo], [masks[i] for i in todo]
        )
        for i, ev in zip(todo, evidence, strict=True):
            note = answers.get(i)
            answers[i] = replace(self._decide(questions[i], *ev), note=note)
        return [answers[i] for i in range(len(questions))]

    def _decide(self, question: str, ranking: Ranking, spans: list[Span], x) -> Answer:
        """The answer from one question's evidence: cited spans, or an abstention."""
        passages = tuple(
            Passage(c.article_id, c.start, c.end, round(h.score, 4))
            for h in ranking.hits
            for c in [self.index.chunk(h.chunk_row)]
        )
        citations = self.cite(spans) if spans else ()
        if citations and self.abstain_model.answers(ranking, x):
            text = " ".join(f"{_one_line(c.text)} [{c.n}]" for c in citations)
            short = self._short_answer(question, citations[0])
            return Answer(question, False, text, citations, passages, short_answer=short)
        message = NOT_FOUND["arabic" if script_of(question) == "arabic" else "other"]
        return Answer(question, True, message, (), passages)

    def _short_answer(self, question: str, cited: Citation) -> ShortAnswer | None:
        """The reader's short answer inside the first citation, checked like a citation."""
        article = self.index.articles[self.index.article_row[cited.article_id]]
        script = "arabic" if "arabic" in self.retriever.corpus_scripts else "latin"
        found = self.reader.read(question, article.text, cited.start, cited.end, script)
        if found is None:
            return None
        short = ShortAnswer(cited.article_id, *found, article.text[found[0] : found[1]])
        problem = verify_short(short, cited, self.index)
        if problem:
            if self.strict:
                raise CitationError(problem)
            return None
        return short

    def cite(self, spans: list[Span], first: int = 1) -> tuple[Citation, ...]:
        """Checked citations of `spans`, numbered from `first`: a failed check raises in
        strict mode, else the span is dropped (module docstring)."""
        out: list[Citation] = []
        catalog = self.index.catalog
        for span in spans:
            article = self.index.articles[span.article_row]
            citation = Citation(
                n=first + len(out),
                article_id=article.id,
                title=article.title,
                start=span.start,
                end=span.end,
                text=article.text[span.start : span.end],
                published=catalog.published[span.article_row],
                source=article.meta.get("source"),
                url=article.meta.get("url"),
                copies=tuple(self.copy_of(r) for r in catalog.copies(span.article_row)),
            )
            problem = verify(citation, self.index)
            if problem:
                if self.strict:
                    raise CitationError(problem)
                continue  # never shown; numbering stays consecutive
            out.append(citation)
        return tuple(out)

    def copy_of(self, row: int) -> Copy:
        a = self.index.articles[row]
        published = self.index.catalog.published[row]
        return Copy(a.id, a.title, a.meta.get("source"), published, a.meta.get("url"))


def verify(citation: Citation, index: Index) -> str:
    """What is wrong with a citation, or "" when it is exactly a non-blank span of its article."""
    row = index.article_row.get(citation.article_id)
    if row is None:
        return f"citation [{citation.n}]: no article {citation.article_id!r} in the index"
    text = index.articles[row].text
    if not 0 <= citation.start < citation.end <= len(text):
        return f"citation [{citation.n}]: span {citation.start}:{citation.end} outside the article"
    if text[citation.start : citation.end] != citation.text:
        where = f"{citation.article_id}[{citation.start}:{citation.end}]"
        return f"citation [{citation.n}]: text differs from {where}"
    if not citation.text.strip():
        return f"citation [{citation.n}]: blank span"
    return ""


def verify_short(short: ShortAnswer, cited: Citation, index: Index) -> str:
    """What is wrong with a short answer, or "" when it is a non-blank span of its article
    inside the citation it answers from."""
    if short.article_id != cited.article_id:
        return "short answer: not from the first citation's article"
    if not cited.start <= short.start < short.end <= cited.end:
        return f"short answer: {short.start}:{short.end} outside [{cited.start}:{cited.end}]"
    text = index.articles[index.article_row[short.article_id]].text
    if text[short.start : short.end] != short.text or not short.text.strip():
        return f"short answer: text differs from {short.article_id}[{short.start}:{short.end}]"
    return ""


def _one_line(text: str) -> str:
    return " ".join(text.split())
