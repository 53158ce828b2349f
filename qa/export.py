"""Answers -> Markdown and self-contained HTML that keep their sources.

`to_markdown(answers, title, base_url)` and `to_html(...)` write each question, its answer, and
every citation with its quoted span, article title, date, source, url and a permalink that opens
isnad at the article with the span highlighted (`permalink`). Copies of a story are listed
under the citation they belong to. An abstention keeps its message and links to the closest
passages. The HTML needs nothing else: styles inline, every block `dir="auto"` so Arabic reads
right to left, every piece of text escaped.

What this module does NOT do: store conversations (ui/conversations.py) or answer (qa.answer).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from urllib.parse import urlencode

from qa.records import Answer, Citation, Copy, ShortAnswer

DEFAULT_BASE_URL = "http://127.0.0.1:7860/"
ABSTAINED = "لا تذكر المقالات إجابة · The articles do not say"


def permalink(base_url: str, article_id: str, start: int, end: int) -> str:
    """The URL that opens the UI at `article_id` with [start, end) highlighted."""
    query = urlencode({"article": article_id, "start": start, "end": end})
    return f"{base_url.rstrip('/')}/?{query}"


def to_text(answer: Answer) -> str:
    """The answer for a terminal: its short answer (or its text), then each citation with its
    quote, the short answer marked **so** in it (or the closest passages); a timeline as its
    lead line, then a date column beside each entry's sentences."""
    lines = [f"({answer.note})"] if answer.note else []
    if answer.mode == "timeline":
        return "\n".join([*lines, *_timeline_text(answer)]).rstrip() + "\n"
    short = answer.short_answer
    lines += [f"{_md_line(short.text)} [1]" if short else answer.text, ""]
    for c in answer.citations:
        where = ", ".join(x for x in (c.source, c.published) if x)
        lines.append(f"[{c.n}] {c.title}" + (f" ({where})" if where else ""))
        lines.append(f"    {c.article_id} [{c.start}:{c.end}]")
        lines.append(f"    «{_md_line(_marked(c, short, '**', '**'))}»")
        for x in c.copies:
            where = ", ".join(w for w in (x.source, x.published) if w)
            lines.append(f"    also reported: {x.title}" + (f" ({where})" if where else ""))
    if answer.abstained and answer.passages:
        lines.append("Closest passages:")
        for p in answer.passages[:3]:
            lines.append(f"  - {p.article_id} [{p.start}:{p.end}] score {p.score:.3f}")
    return "\n".join(lines).rstrip() + "\n"


def _timeline_text(answer: Answer) -> list[str]:
    pad = " " * 12
    lines = [answer.text.split("\n", 1)[0], ""]
    for e in answer.timeline:
        for i, c in enumerate(e.citations):
            lines.append(f"{e.date if i == 0 else '':<12}{_md_line(c.text)} [{c.n}]")
            where = " · ".join(v for v in (c.source, c.title) if v)
            lines.append(f"{pad}— {where} · {c.article_id} [{c.start}:{c.end}]")
        for x in e.also:
            where = ", ".join(w for w in (x.source, (x.published or "")[:10]) if w)
            lines.append(f"{pad}also reported by: {x.title}" + (f" ({where})" if where else ""))
    return lines


def to_markdown(
    answers: Sequence[Answer], title: str = "isnad", base_url: str = DEFAULT_BASE_URL
) -> str:
    lines = [f"# {_md_line(title)}", ""]
    for a in answers:
        lines += [f"## {_md_line(a.question)}", ""]
        if a.note:
            lines += [f"*{_md_line(a.note)}*", ""]
        if a.mode == "timeline":
            lines += [_md_line(a.text.split("\n", 1)[0]), ""]
            for e in a.timeline:
                said = " ".join(f"{_md_line(c.text)} [{c.n}]" for c in e.citations)
                lines.append(f"- **{e.date}** — {said}")
                for c in e.citations:
                    lines.append(f"  - [{c.n}] **{_md_line(c.title)}** — {_md_meta(c, base_url)}")
                for x in e.also:
                    lines.append(f"  - also reported by: {_md_copy(x)}")
            lines.append("")
            continue
        if a.abstained:
            lines += [f"*{ABSTAINED}.* {_md_line(a.text)}", ""]
            for i, p in enumerate(a.passages[:3], start=1):
                link = permalink(base_url, p.article_id, p.start, p.end)
                lines.append(f"- ≈{i} closest passage: [{p.article_id} {p.start}–{p.end}]({link})")
            lines.append("")
            continue
        short = a.short_answer
        lines += [f"**{_md_line(short.text)}** [1]" if short else _md_line(a.text), ""]
        for c in a.citations:
            lines.append(f"[{c.n}] **{_md_line(c.title)}** — {_md_meta(c, base_url)}")
            quote = _marked(c, short, "**", "**")
            lines += [f"> {line}" if line.strip() else ">" for line in quote.split("\n")]
            for x in c.copies:
                lines.append(f"  - also reported by: {_md_copy(x)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def to_html(
    answers: Sequence[Answer], title: str = "isnad", base_url: str = DEFAULT_BASE_URL
) -> str:
    parts = []
    for a in answers:
        parts.append(f'<section dir="auto"><h2 dir="auto">{_e(a.question)}</h2>')
        if a.note:
            parts.append(f'<p class="note" dir="auto"><i>{_e(a.note)}</i></p>')
        if a.abstained:
            parts.append(f'<p class="abstain" dir="auto"><b>{_e(ABSTAINED)}.</b> {_e(a.text)}</p>')
            items = "".join(
                f'<li dir="auto"><a href="{_e(permalink(base_url, p.article_id, p.start, p.end))}">'
                f"{_e(p.article_id)} [{p.start}:{p.end}]</a></li>"
                for p in a.passages[:3]
            )
            parts.append(f'<ol dir="auto">{items}</ol></section>' if items else "</section>")
            continue
        if a.mode == "timeline":
            lead = a.text.split("\n", 1)[0]
            parts.append(f'<p dir="auto">{_e(lead)}</p><ol class="timeline" dir="auto">')
            for e in a.timeline:
                said = " ".join(f"{_e(c.text)} [{c.n}]" for c in e.citations)
                sources = "".join(_html_source(c, base_url) for c in e.citations)
                parts.append(
                    f'<li dir="auto"><time datetime="{e.date}">{e.date}</time> '
                    f'<span dir="auto">{said}</span><ol class="sources" dir="auto">{sources}'
                    f"</ol>{_html_copies(e.also)}</li>"
                )
            parts.append("</ol></section>")
            continue
        short = a.short_answer
        lead = f"<b>{_e(short.text)}</b> [1]" if short else _e(a.text)
        parts.append(f'<p dir="auto">{lead}</p><ol class="sources" dir="auto">')
        parts += [_html_source(c, base_url, quote=True, short=short) for c in a.citations]
        parts.append("</ol></section>")
    return (
        '<!doctype html>\n<html lang="ar"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f'<body dir="auto"><h1 dir="auto">{_e(title)}</h1>{"".join(parts)}</body></html>\n'
    )


def _html_source(
    c: Citation, base_url: str, quote: bool = False, short: ShortAnswer | None = None
) -> str:
    """One citation: [n], title, date, source, url and permalink; its quote when `quote` (a
    short answer inside it marked), and its wire copies."""
    link = permalink(base_url, c.article_id, c.start, c.end)
    url = f' · <a href="{_e(c.url)}">{_e(c.url)}</a>' if _web(c.url) else ""
    meta = " · ".join(_e(v) for v in ((c.published or "")[:10], c.source or "") if v)
    return (
        f'<li dir="auto"><b dir="auto">[{c.n}] {_e(c.title)}</b> '
        f'<span class="meta" dir="auto">{meta}{url} · '
        f'<a href="{_e(link)}">isnad: {_e(c.article_id)} [{c.start}:{c.end}]</a></span>'
        + (f'<blockquote dir="auto">{_html_marked(c, short)}</blockquote>' if quote else "")
        + f"{_html_copies(c.copies)}</li>"
    )


def _html_copies(copies: Sequence[Copy]) -> str:
    items = "".join(
        f'<li dir="auto">{_e(x.title)} '
        f"{_e(' · '.join(v for v in ((x.published or '')[:10], x.source or '') if v))}"
        + (f' · <a href="{_e(x.url)}">{_e(x.url)}</a>' if _web(x.url) else "")
        + "</li>"
        for x in copies
    )
    if not items:
        return ""
    return f'<div class="copies" dir="auto">also reported by:<ul>{items}</ul></div>'


CSS = (
    "body{font-family:'Noto Naskh Arabic','Noto Sans',Tahoma,Arial,sans-serif;line-height:1.7;"
    "max-width:48em;margin:2em auto;padding:0 1em;unicode-bidi:plaintext}"
    "*{text-align:start}blockquote{margin:.3em 0;padding:.2em .8em;background:#f4f4f5;"
    "border-inline-start:3px solid #2563eb;white-space:pre-wrap;unicode-bidi:plaintext}"
    ".meta{color:#555;font-size:.9em}.abstain{border:2px dashed #d97706;padding:.4em .7em}"
    ".copies{font-size:.9em;color:#444}.timeline time{font-weight:700;margin-inline-end:.5em}"
    ".timeline>li{margin:.6em 0}"
)


def _md_meta(c: Citation, base_url: str) -> str:
    bits = [v for v in ((c.published or "")[:10], c.source) if v]
    if _web(c.url):
        bits.append(f"<{c.url}>")
    link = permalink(base_url, c.article_id, c.start, c.end)
    bits.append(f"[isnad: {c.article_id} {c.start}–{c.end}]({link})")
    return " · ".join(bits)


def _short_in(c: Citation, short: ShortAnswer | None) -> tuple[int, int] | None:
    """Where the short answer lies in the citation's text, or None if it is not in it."""
    if not short or short.article_id != c.article_id or not c.start <= short.start < c.end:
        return None
    return short.start - c.start, short.end - c.start


def _marked(c: Citation, short: ShortAnswer | None, before: str, after: str) -> str:
    """The citation's text with the short answer, if it lies in it, between `before` and
    `after`."""
    where = _short_in(c, short)
    if where is None:
        return c.text
    a, b = where
    return c.text[:a] + before + c.text[a:b] + after + c.text[b:]


def _html_marked(c: Citation, short: ShortAnswer | None) -> str:
    where = _short_in(c, short)
    if where is None:
        return _e(c.text)
    a, b = where
    return f"{_e(c.text[:a])}<mark>{_e(c.text[a:b])}</mark>{_e(c.text[b:])}"


def _md_copy(x: Copy) -> str:
    where = " · ".join(v for v in ((x.published or "")[:10], x.source, x.url) if v)
    return _md_line(x.title) + (f" ({where})" if where else "")


def _md_line(text: str) -> str:
    return " ".join(text.split())


def _web(url: str | None) -> bool:
    return bool(url) and url.startswith(("http://", "https://"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
