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
from datetime import date

import numpy as np

from index.encoder import Encoder
from index.lexical import normalize, script_of, tokenize
from index.store import Index
from qa.abstain import AbstainModel, features, load_abstain_model
from qa.calibration import HOW
from qa.compose import ComposeSettings, Span, candidates, choose_spans
from qa.filters import Filters
from qa.records import Answer, Citation, Copy, Entry, Passage
from qa.retrieve import Ranking, RetrievalSettings, Retriever
from qa.shift import QueryShift
from qa.story import MODES, asks_for_story, story_topic
from qa.story_model import StoryModel, load_story_model
from qa.timeline import TimelineSettings, lead_line, no_timeline, tell
from qa.timeq import story_period

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
                answers[i] = self._story(q, m, timeline)
        # answers, where no timeline was asked for or could be told (it says why in a note)
        todo = [i for i in range(len(questions)) if not isinstance(answers.get(i, ""), Answer)]
        evidence = self.evidence_batch(
            [questions[i] for i in todo], [contexts[i] for i in todo], [masks[i] for i in todo]
        )
        for i, ev in zip(todo, evidence, strict=True):
            note = answers.get(i)
            answers[i] = replace(self._decide(questions[i], *ev), note=note)
        return [answers[i] for i in range(len(questions))]

    def _story(
        self, question: str, mask: np.ndarray | None, settings: TimelineSettings
    ) -> Answer | str:
        """The question told as a timeline (qa.timeline), or why not (for the ordinary answer's
        note): the articles do not hold its story (the abstention model, asked about the
        story's topic), or fewer than `min_articles` of its articles are dated."""
        lang = "arabic" if script_of(question) == "arabic" else "other"
        found = self.story_ranking(question, mask, settings)
        if found is None:
            return no_timeline(None, lang)
        topic, deep = found
        story = tell(self.index, deep, topic, self.story_model, settings)
        entries, citations, shown = [], [], []
        for event in story.events:
            cited = self._citations(list(event.spans), first=len(citations) + 1)
            if not cited:
                continue
            citations += cited
            shown += event.article_rows
            also = tuple(self._copy(r) for r in event.article_rows[1:])
            entries.append(Entry(date.fromordinal(event.day).isoformat(), cited, also))
        if len(entries) < 2:  # one event is no timeline
            return no_timeline(story, lang)
        lines = [lead_line(entries, self.index.catalog, shown, story, lang)]
        lines += [
            f"{e.date} — " + " ".join(f"{_one_line(c.text)} [{c.n}]" for c in e.citations)
            for e in entries
        ]
        passages = tuple(
            Passage(c.article_id, c.start, c.end, round(h.score, 4))
            for h in deep.hits[: self.k]
            for c in [self.index.chunk(h.chunk_row)]
        )
        text = "\n".join(lines)
        return Answer(question, False, text, tuple(citations), passages, "timeline", tuple(entries))

    def story_ranking(
        self, question: str, mask: np.ndarray | None, settings: TimelineSettings
    ) -> tuple[str, Ranking] | None:
        """(the story's topic, its deep ranking) for a story question, within `mask` and the
        period the question names; None when the articles do not hold the story (nothing in
        the period, or the abstention model, asked about the topic, abstains). The deep
        ranking searches the topic followed by the titles of its `expand` best articles (how
        the outlet names the story: an English question finds the Arabic words of it)."""
        topic = story_topic(question)
        period = story_period(question)
        if any(period):  # the period the question names bounds the story: a filter
            inside = self.index.catalog.article_mask(*period)
            mask = inside if mask is None else mask & inside
            if not mask.any():
                return None
        vector = self.retriever.encode([topic])
        ranking, spans, x = self.evidence_batch([topic], allowed=[mask], vectors=vector)[0]
        if not spans or not self.abstain_model.answers(ranking, x):
            return None
        deep = self.retriever.rank_batch([topic], settings.depth, vectors=vector, allowed=[mask])
        return topic, deep[0]

    def _decide(self, question: str, ranking: Ranking, spans: list[Span], x) -> Answer:
        """The answer from one question's evidence: cited spans, or an abstention."""
        passages = tuple(
            Passage(c.article_id, c.start, c.end, round(h.score, 4))
            for h in ranking.hits
            for c in [self.index.chunk(h.chunk_row)]
        )
        citations = self._citations(spans) if spans else ()
        if citations and self.abstain_model.answers(ranking, x):
            text = " ".join(f"{_one_line(c.text)} [{c.n}]" for c in citations)
            return Answer(question, False, text, citations, passages)
        message = NOT_FOUND["arabic" if script_of(question) == "arabic" else "other"]
        return Answer(question, True, message, (), passages)

    def _citations(self, spans: list[Span], first: int = 1) -> tuple[Citation, ...]:
        """Checked citations of `spans`, numbered from `first` (a failed check: see module)."""
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
                copies=tuple(self._copy(r) for r in catalog.copies(span.article_row)),
            )
            problem = verify(citation, self.index)
            if problem:
                if self.strict:
                    raise CitationError(problem)
                continue  # never shown; numbering stays consecutive
            out.append(citation)
        return tuple(out)

    def _copy(self, row: int) -> Copy:
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


def _one_line(text: str) -> str:
    return " ".join(text.split())
