"""Does a question ask how a story developed over time? And what is the story, without the asking?

`asks_for_story(question)` is True for questions such as «كيف تطورت أزمة حركة نداء تونس في
2016؟», «ما هي مراحل قضية ...», «ماذا حدث في ملف ... منذ ...», "How did the ... unfold?",
"Give me a timeline of ...", "What happened with ... since ...?": they get a dated timeline
(qa.timeline) instead of one or two sentences. A factoid question must not: «متى تطور ...؟» asks
for a date, «ما نسبة تطور السل؟» for a number. The patterns therefore want the asking frame
(how/what happened/the stages/the story of/timeline), not a bare word such as «منذ» or "since",
which factoid questions use as often («منذ متى ...», "since when ..."). Measured with
bench/stories.py: detection on the story questions of bench/data/stories.jsonl and false
triggers on ARCD's and TyDi's factoid questions (Arabic and English).

`story_topic(question)` is the question with its asking words taken out («كيف تطورت أزمة نداء
تونس» -> «أزمة نداء تونس»): what retrieval should look for. Words such as «تطورات» or
"developments" otherwise match every article that uses them.

`tell_story(answerer, question, mask, settings)` answers such a question as a timeline
(qa.timeline) with the answerer's parts (retriever, abstention model, story model, citations),
or says why it cannot be told (the ordinary answer then carries that note).

What this module does NOT do: choose the articles, group the events or cite them
(qa.timeline, qa.story_model); make or check citations (qa.answer).
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from index.lexical import fold, script_of
from qa.records import Answer, Entry, Passage
from qa.retrieve import Ranking
from qa.timeline import TimelineSettings, lead_line, no_timeline, tell
from qa.timeq import is_date_word, story_period

if TYPE_CHECKING:  # qa.answer imports this module
    from qa.answer import Answerer

MODES = ("auto", "timeline", "answer")  # how a question may ask to be answered (qa.answer)

# Matched against fold(question): harakat gone, alef forms unified, ة -> ه, ى -> ي, lowercased.
_ARABIC = [
    # how did it develop / escalate / go / end up
    r"كيف (?:كانت |جاءت )?(?:تطور|تطورت|يتطور|تتطور|تصاعد|تصاعدت|تفاقم|تفاقمت|تدرج"
    r"|تدرجت|جرت|جري|سارت|تسارعت|تتابعت|تواصلت|تحولت)\b",
    # the developments / latest of it
    r"(?:^|\s)(?:ما|ماهي|ماهو|ما هي|ما هو|اذكر|لخص|استعرض|اعرض|رصد|ارصد)\s+(?:لي\s+)?"
    r"(?:اخر\s+|ابرز\s+|اهم\s+)?(?:ال)?(?:تطورات|مستجدات|مراحل|محطات|تداعيات)",
    r"(?:ال)?(?:تطورات|مستجدات) (?:قضيه|ملف|ازمه|الازمه|القضيه|الملف|الوضع|الاحداث)",
    # the sequence / chronology / timeline of events
    r"تسلسل (?:ال)?(?:احداث|زمني|وقائع)|(?:ال)?تسلسل الزمني|(?:ال)?خط (?:ال)?زمني"
    r"|كرونولوجيا|(?:ال)?سلسله (?:ال)?احداث|(?:ال)?تاريخ الزمني",
    # what happened in / with ... (the issue's own list: «ماذا حدث في/مع ...»)
    r"(?:^|\s)(?:ماذا|ما الذي|ما اللذي)\s+(?:حدث|جري)\s+(?:في|مع)\s",
    r"(?:ماذا|ما الذي|ما اللذي|ما)\s+(?:حدث|جري|يحدث|يجري|وقع|استجد)\s+(?:في|مع|ل|بخصوص|بشان)"
    r"\s*(?:قضيه|ملف|ازمه|الازمه|القضيه|الملف|حادثه|واقعه)",
    r"(?:ماذا|ما الذي|ما اللذي)\s+(?:حدث|جري|يحدث|يجري|وقع)\b.*(?:منذ|على مدي|علي مدي|طوال|خلال"
    r" (?:ال)?(?:اشهر|اسابيع|سنوات|ايام|اعوام|سنه|عام)|بين \S+ و)",
    r"(?:تابعت|اتابع|متابعه)\s.*(?:ماذا|ما الذي)\s+(?:حدث|جري)",
    # the story of / how it came about
    r"(?:^|\s)(?:ما|ماهي|ما هي|احك|احكي|احكي لي|اروي|اخبرني عن)\s+(?:لي\s+)?(?:ال)?قصه\b",
    r"(?:^|\s)(?:ما|ماهي|ما هي)\s+(?:ابرز\s+|اهم\s+)?(?:ال)?تداعيات",
    r"على مدي|علي مدي|طوال (?:ال)?(?:اشهر|اسابيع|سنوات|ايام|اعوام)",
]
_ENGLISH = [
    r"\bhow (?:did|has|have|had|do|does|is|was|were)\b.{0,120}?\b(?:unfold|unfolded|unfolding"
    r"|develop|developed|developing|evolve|evolved|evolving|progress|progressed|escalate"
    r"|escalated|play(?:ed)? out|turn(?:ed)? out|unravel(?:l?ed)?|come about|came about)\b",
    r"\btime ?line\b|\bchronolog|\bsequence of events\b|\bseries of events\b|\bstep by step\b",
    r"\bwhat (?:has |have )?happened (?:with|to|in|at|over|during|around|since)\b.{0,120}?"
    r"\b(?:since|over|during|between|throughout|so far|until|after)\b",
    r"\bwhat (?:has |have )?happened with\b",
    r"\b(?:what is|what's|whats|tell me|give me) the (?:whole |full |back ?)?story\b",
    r"\b(?:the |latest |main |key )?developments (?:in|of|on|around|regarding)\b",
    r"\b(?:stages|phases|milestones) of\b",
    r"\b(?:aftermath|fallout|repercussions) of\b",
    r"\bover (?:the (?:past|last|following) )?(?:weeks|months|years)\b",
]
_PATTERNS = [re.compile(p) for p in _ARABIC + _ENGLISH]

# The asking words a story question wraps its topic in (fold()ed), left out of the search.
_ASKING = re.compile(
    r"\b(?:كيف|كيفيه|ما|ماذا|ماهي|ماهو|هي|هو|الذي|اللذي|لي|اذكر|لخص|استعرض|اعرض|ارصد|رصد"
    r"|تطور|تطورت|يتطور|تتطور|تطورات|التطورات|مستجدات|المستجدات|تصاعد|تصاعدت|تفاقم|تفاقمت"
    r"|جرت|جري|سارت|حدث|يحدث|يجري|وقع|استجد|تابعت|اتابع|تسلسل|التسلسل|احداث|الاحداث|الزمني"
    r"|زمني|خط|الخط|مراحل|المراحل|محطات|قصه|القصه|تداعيات|التداعيات|ابرز|اهم|اخر|احك|احكي"
    r"|how|did|has|have|had|does|do|what|whats|what's|happened|unfold|unfolded|develop|developed"
    r"|evolve|evolved|progress|progressed|escalate|escalated|played|turned"
    r"|timeline|chronology|chronological|sequence|series|events|of|the|give|me|tell"
    r"|story|whole|full|developments|latest|main|key|stages|phases|milestones|aftermath"
    r"|fallout|repercussions|with|to|in|a|an)\b"
)


_INTO_PERIOD = frozenset(
    fold(w)
    for w in "في منذ بين خلال من إلى الى حتى و شهر شهري سنة عام سنتي عامي بداية مطلع أواخر"
    " in since between during from to until and of the early late".split()
)


def asks_for_story(question: str) -> bool:
    """True when the question asks how something developed over time (module docstring)."""
    q = fold(" ".join(question.split()))
    return any(p.search(q) for p in _PATTERNS)


def story_topic(question: str) -> str:
    """The question without its asking words and the period it names (module docstring; the
    period becomes a filter, qa.timeq.story_period); the question itself when nothing would
    be left."""
    words = [w for w in question.split() if not _ASKING.fullmatch(fold(w).strip("؟?!.,،:"))]
    words = _without_period(words)
    topic = " ".join(words).strip(" ؟?!.,،:")
    return topic if any(c.isalnum() for c in topic) else question


def _without_period(words: list[str]) -> list[str]:
    """Words less the dates they name ("2016", «جوان», "14/01/2016") and the words that lead
    into them («في», «منذ», «بين», «خلال شهري», "since", "between", "and" ...)."""
    out: list[str] = []
    for w in words:
        if is_date_word(w.strip("؟?!.,،:()")):
            while out and fold(out[-1]).strip("،,") in _INTO_PERIOD:
                out.pop()
            continue
        out.append(w)
    return out


def tell_story(
    answerer: Answerer, question: str, mask: np.ndarray | None, settings: TimelineSettings
) -> Answer | str:
    """The question told as a timeline (qa.timeline), or why not (for the ordinary answer's
    note): the articles do not hold its story (the abstention model, asked about the
    story's topic), or fewer than `min_articles` of its articles are dated."""
    lang = "arabic" if script_of(question) == "arabic" else "other"
    found = story_ranking(answerer, question, mask, settings)
    if found is None:
        return no_timeline(None, lang)
    topic, deep = found
    index = answerer.index
    story = tell(index, deep, topic, answerer.story_model, settings)
    entries, citations, shown = [], [], []
    for event in story.events:
        cited = answerer.cite(list(event.spans), first=len(citations) + 1)
        if not cited:
            continue
        citations += cited
        shown += event.article_rows
        also = tuple(answerer.copy_of(r) for r in event.article_rows[1:])
        entries.append(Entry(date.fromordinal(event.day).isoformat(), cited, also))
    if len(entries) < 2:  # one event is no timeline
        return no_timeline(story, lang)
    lines = [lead_line(entries, index.catalog, shown, story, lang)]
    lines += [
        f"{e.date} — " + " ".join(f"{' '.join(c.text.split())} [{c.n}]" for c in e.citations)
        for e in entries
    ]
    passages = tuple(
        Passage(c.article_id, c.start, c.end, round(h.score, 4))
        for h in deep.hits[: answerer.k]
        for c in [index.chunk(h.chunk_row)]
    )
    text = "\n".join(lines)
    return Answer(question, False, text, tuple(citations), passages, "timeline", tuple(entries))


def story_ranking(
    answerer: Answerer, question: str, mask: np.ndarray | None, settings: TimelineSettings
) -> tuple[str, Ranking] | None:
    """(the story's topic, its deep ranking) for a story question, within `mask` and the
    period the question names; None when the articles do not hold the story (nothing in
    the period, or the abstention model, asked about the topic, abstains). The deep
    ranking searches the topic followed by the titles of its `expand` best articles (how
    the outlet names the story: an English question finds the Arabic words of it)."""
    topic = story_topic(question)
    period = story_period(question)
    if any(period):  # the period the question names bounds the story: a filter
        inside = answerer.index.catalog.article_mask(*period)
        mask = inside if mask is None else mask & inside
        if not mask.any():
            return None
    vector = answerer.retriever.encode([topic])
    ranking, spans, x = answerer.evidence_batch([topic], allowed=[mask], vectors=vector)[0]
    if not spans or not answerer.abstain_model.answers(ranking, x):
        return None
    deep = answerer.retriever.rank_batch([topic], settings.depth, vectors=vector, allowed=[mask])
    return topic, deep[0]
