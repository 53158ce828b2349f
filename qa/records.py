"""What an answer is made of, and its JSON: citations, copies, passages, timeline entries.

`Answer.to_json` is the contract every consumer reads (the CLI's --json, the web API, stored
conversations, exports); `answer_from_json` reads it back. An answer's `mode` is "answer" (cited
sentences) or "timeline" (a story told as dated entries, qa.timeline): a timeline's citations
are also listed, in order, in `citations`, so a consumer that knows nothing of timelines still
gets every span.

What this module does NOT do: answer, cite or check spans (qa.answer, qa.timeline), or format
for people (qa.export).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Copy:
    """Another article of the same story (a wire copy, index.copies, or another article of a
    timeline's event), listed, not cited."""

    article_id: str
    title: str
    source: str | None
    published: str | None  # ISO 8601 (index.dates), None if absent or unreadable
    url: str | None

    def to_json(self) -> dict:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "source": self.source,
            "published": self.published,
            "url": self.url,
        }

    @classmethod
    def from_json(cls, x: dict) -> Copy:
        return cls(x["article_id"], x["title"], x.get("source"), x.get("published"), x.get("url"))


@dataclass(frozen=True)
class Citation:
    n: int
    article_id: str
    title: str
    start: int
    end: int
    text: str
    published: str | None  # ISO 8601 (index.dates), None if absent or unreadable
    source: str | None
    url: str | None
    copies: tuple[Copy, ...] = ()

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "article_id": self.article_id,
            "title": self.title,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "published": self.published,
            "source": self.source,
            "url": self.url,
            "copies": [x.to_json() for x in self.copies],
        }

    @classmethod
    def from_json(cls, c: dict) -> Citation:
        return cls(
            n=c["n"],
            article_id=c["article_id"],
            title=c["title"],
            start=c["start"],
            end=c["end"],
            text=c["text"],
            published=c.get("published"),
            source=c.get("source"),
            url=c.get("url"),
            copies=tuple(Copy.from_json(x) for x in c.get("copies", [])),
        )


@dataclass(frozen=True)
class Passage:
    article_id: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class ShortAnswer:
    """The words of the first citation that answer the question (qa.reader): a span inside
    that citation's, checked against the article like every span."""

    article_id: str
    start: int
    end: int
    text: str

    def to_json(self) -> dict:
        return {
            "article_id": self.article_id,
            "start": self.start,
            "end": self.end,
            "text": self.text,
        }


@dataclass(frozen=True)
class Entry:
    """One event of a timeline: its date, the cited sentences of its best article, and the
    event's other articles."""

    date: str  # YYYY-MM-DD
    citations: tuple[Citation, ...]
    also: tuple[Copy, ...] = ()

    def to_json(self) -> dict:
        return {
            "date": self.date,
            "citations": [c.to_json() for c in self.citations],
            "also": [x.to_json() for x in self.also],
        }


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    text: str
    citations: tuple[Citation, ...]
    passages: tuple[Passage, ...]
    mode: str = "answer"  # or "timeline"
    timeline: tuple[Entry, ...] = ()
    note: str | None = None  # e.g. why a story question got no timeline
    short_answer: ShortAnswer | None = None  # inside citations[0]; None when not confident

    def to_json(self, id: str | None = None) -> dict:
        out = {
            "id": id,
            "question": self.question,
            "abstained": self.abstained,
            "answer": self.text,
            "mode": self.mode,
            "short_answer": self.short_answer.to_json() if self.short_answer else None,
            "citations": [c.to_json() for c in self.citations],
            "passages": [
                {"article_id": p.article_id, "start": p.start, "end": p.end, "score": p.score}
                for p in self.passages
            ],
        }
        if self.mode == "timeline":
            out["timeline"] = [e.to_json() for e in self.timeline]
        if self.note:
            out["note"] = self.note
        return out


def answer_from_json(data: dict) -> Answer:
    """The Answer that `Answer.to_json` wrote (a stored conversation reads its answers back;
    answers stored before timelines existed read as mode "answer")."""
    citations = tuple(Citation.from_json(c) for c in data["citations"])
    by_n = {c.n: c for c in citations}
    timeline = tuple(
        Entry(
            e["date"],
            tuple(by_n.get(c["n"]) or Citation.from_json(c) for c in e["citations"]),
            tuple(Copy.from_json(x) for x in e.get("also", [])),
        )
        for e in data.get("timeline", [])
    )
    passages = tuple(
        Passage(p["article_id"], p["start"], p["end"], p["score"]) for p in data["passages"]
    )
    return Answer(
        data["question"],
        data["abstained"],
        data["answer"],
        citations,
        passages,
        data.get("mode", "answer"),
        timeline,
        data.get("note"),
        ShortAnswer(**data["short_answer"]) if data.get("short_answer") else None,
    )
