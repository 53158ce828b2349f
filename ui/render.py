"""HTML for the chat, the source viewer and the index status, from answers and articles.

Every piece of article text, title and question is HTML-escaped where it is rendered, and every
element that shows text has `dir="auto"` (app.py's CSS adds `unicode-bidi: plaintext`), so
Arabic reads right to left and English left to right, each on its own. A cited span is
highlighted as `article.text[start:end]` exactly, inside `<mark id="isnad-mark">`; nothing is
stripped, rewritten or searched for again.

What this module does NOT do: answer questions (ui/live.py, qa/), read uploads (ui/uploads.py),
or know about Gradio beyond returning the role/content dicts its Chatbot shows (app.py).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.articles import Article
from index.dates import parse_published
from index.lexical import script_of
from index.store import IndexError_, embedded_with_older_recipe, read_manifest, segment_entries
from qa.export import permalink
from qa.records import Answer, Copy

CLOSEST = 3  # passages shown with an abstention
EXCERPT_CHARS = 300  # ... each cut to this in the chat (the article view shows all of it)
ABSTAIN_LABEL = "لا تذكر المقالات إجابة · The articles do not say"
EMPTY_VIEW = "اختر مصدرًا لعرض المقالة · Choose a source to read its article"
ALSO_REPORTED = "ورد الخبر أيضًا في · Also reported by"


@dataclass(frozen=True)
class Turn:
    """One question and its answer, with the articles it cites as they were when answered."""

    answer: Answer
    articles: dict[str, Article]


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def esc_line(text: str) -> str:
    """Escaped, newlines as <br>: chat messages are Markdown, where a blank line ends raw HTML."""
    return esc(text).replace("\n", "<br>")


def with_refs(text: str) -> str:
    """Escaped answer text with its [n] markers set apart."""
    return re.sub(r"\[(\d+)\]", r'<span class="isnad-ref">[\1]</span>', esc_line(text))


def meta_line(published: str | None, source: str | None, url: str | None) -> str:
    parts = [esc(p) for p in ((published or "")[:10], source or "") if p]
    if url and url.startswith(("http://", "https://")):
        parts.append(
            f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">رابط · link</a>'
        )
    return f'<span class="isnad-meta" dir="auto">{" · ".join(parts)}</span>' if parts else ""


def render_question(question: str) -> str:
    return f'<div class="isnad-question" dir="auto">{esc_line(question)}</div>'


def render_answer(turn: Turn) -> str:
    """The answer bubble: text with [n] markers, then the numbered sources and quoted spans;
    an abstention gets its own label and lists the closest passages instead; a timeline is a
    vertical list of dated entries (render_timeline)."""
    a = turn.answer
    note = f'<p class="isnad-note" dir="auto">{esc(a.note)}</p>' if a.note else ""
    if a.mode == "timeline":
        return render_timeline(a)
    if a.abstained:
        items = []
        for i, p in enumerate(a.passages[:CLOSEST], start=1):
            art = turn.articles.get(p.article_id)
            if art is None:
                continue
            quote = art.text[p.start : p.end]
            quote = quote if len(quote) <= EXCERPT_CHARS else quote[:EXCERPT_CHARS] + "…"
            items.append(_source_item(f"≈{i}", art.title, _meta_of(art), quote))
        closest = (
            '<div class="isnad-sources-head" dir="auto">أقرب المقاطع · Closest passages</div>'
            f'<ol class="isnad-sources">{"".join(items)}</ol>'
            if items
            else ""
        )
        return (
            f'<div class="isnad-answer isnad-abstain" dir="auto">{note}'
            f'<div class="isnad-abstain-label" dir="auto">{esc(ABSTAIN_LABEL)}</div>'
            f'<p class="isnad-answer-text" dir="auto">{with_refs(a.text)}</p>{closest}</div>'
        )
    short = a.short_answer
    items = [
        _source_item(
            f"[{c.n}]",
            c.title,
            meta_line(c.published, c.source, c.url) + _permalink(c.article_id, c.start, c.end),
            c.text,
            c.copies,
            inner=(short.start - c.start, short.end - c.start) if short and c.n == 1 else None,
        )
        for c in a.citations
    ]
    # The quotes are the answer: the chat does not show them twice. A short answer leads.
    lead = (
        f'<p class="isnad-answer-text isnad-short" dir="auto"><b>{esc_line(short.text)}</b> '
        '<span class="isnad-ref">[1]</span></p>'
        if short
        else ""
    )
    # every child has its own dir, so dir="auto" would find no letter: the bubble reads in
    # the direction of what it quotes
    way = _direction(a.citations[0].text) if a.citations else "auto"
    return (
        f'<div class="isnad-answer" dir="{way}">{note}{lead}'
        f'<ol class="isnad-sources">{"".join(items)}</ol></div>'
    )


def render_timeline(a: Answer) -> str:
    """A story as a vertical timeline: the lead line, then per entry its date, its sentences
    with [n], and a chip per source (date, outlet, link, permalink) and its other articles."""
    items = []
    for e in a.timeline:
        said = " ".join(
            f'{esc_line(c.text)} <span class="isnad-ref">[{c.n}]</span>' for c in e.citations
        )
        chips = "".join(
            f'<span class="isnad-chip" dir="auto"><span class="isnad-ref">[{c.n}]</span> '
            f'<span class="isnad-title" dir="auto">{esc(_short(c.title, 60))}</span> '
            f"{meta_line(None, c.source, c.url)}{_permalink(c.article_id, c.start, c.end)}</span>"
            for c in e.citations
        )
        # a date and chips come first, so dir="auto" would find no letter: the entry's
        # direction is its sentence's
        way = _direction(e.citations[0].text)
        items.append(
            f'<li class="isnad-event" dir="{way}">'
            f'<time class="isnad-date" datetime="{esc(e.date)}">{esc(e.date)}</time>'
            f'<p class="isnad-event-text" dir="auto">{said}</p>'
            f'<div class="isnad-chips">{chips}</div>{_copies(e.also)}</li>'
        )
    lead = a.text.split("\n", 1)[0]
    way = _direction(a.timeline[0].citations[0].text) if a.timeline else "auto"
    return (
        '<div class="isnad-answer isnad-timeline-answer" dir="auto">'
        f'<p class="isnad-answer-text isnad-timeline-lead" dir="auto">{esc(lead)}</p>'
        f'<ol class="isnad-timeline" dir="{way}">{"".join(items)}</ol></div>'
    )


def _direction(text: str) -> str:
    return "rtl" if script_of(text) == "arabic" else "ltr"


def _permalink(article_id: str, start: int, end: int) -> str:
    href = permalink("", article_id, start, end)
    return f' · <a class="isnad-permalink" href="{esc(href)}">رابط ثابت · permalink</a>'


def _meta_of(article: Article) -> str:
    m = article.meta
    published = parse_published(m.get("published"))
    shown = published.iso if published else m.get("published")
    return meta_line(shown, m.get("source"), m.get("url"))


def _source_item(
    label: str,
    title: str,
    meta: str,
    quote: str,
    copies: Sequence[Copy] = (),
    inner: tuple[int, int] | None = None,
) -> str:
    """A numbered source with its quote; `inner` (offsets into the quote) is marked in it."""
    if inner:
        a, b = inner
        shown = (
            f'{esc_line(quote[:a])}<mark class="isnad-short-mark">{esc_line(quote[a:b])}</mark>'
            f"{esc_line(quote[b:])}"
        )
    else:
        shown = esc_line(quote)
    return (
        f'<li class="isnad-source" dir="auto"><span class="isnad-ref">{esc(label)}</span> '
        f'<span class="isnad-title" dir="auto">{esc(title)}</span> {meta}'
        f'<blockquote class="isnad-quote" dir="auto">{shown}</blockquote>'
        f"{_copies(copies)}</li>"
    )


def _copies(copies: Sequence[Copy]) -> str:
    """ "Also reported by": the wire copies of a cited story, each with its date, source, link."""
    if not copies:
        return ""
    items = "".join(
        f'<li dir="auto"><span class="isnad-title" dir="auto">{esc(x.title)}</span> '
        f"{meta_line(x.published, x.source, x.url)}</li>"
        for x in copies
    )
    return (
        '<div class="isnad-copies" dir="auto">'
        f'<span class="isnad-sources-head" dir="auto">{esc(ALSO_REPORTED)}</span>'
        f"<ul>{items}</ul></div>"
    )


def chat_messages(turns: Sequence[Turn]) -> list[dict]:
    """The conversation as Chatbot messages (role/content dicts of escaped HTML)."""
    out = []
    for t in turns:
        out.append({"role": "user", "content": render_question(t.answer.question)})
        out.append({"role": "assistant", "content": render_answer(t)})
    return out


def source_choices(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """(label, value) for every source of every answer, the latest answer's first: value
    "t<i>:c<n>" is citation n of turn i, "t<i>:p<k>" closest passage k of an abstention."""
    out = []
    for i in range(len(turns) - 1, -1, -1):
        turn, q = turns[i], f"س{i + 1} · Q{i + 1}"
        if not turn.answer.abstained:
            out += [
                (f"{q} [{c.n}] {_short(c.title)}", f"t{i}:c{c.n}") for c in turn.answer.citations
            ]
            continue
        out += [
            (f"{q} ≈{k} {_short(turn.articles[p.article_id].title)}", f"t{i}:p{k}")
            for k, p in enumerate(turn.answer.passages[:CLOSEST], start=1)
            if p.article_id in turn.articles
        ]
    return out


def _short(title: str, n: int = 80) -> str:
    return title if len(title) <= n else title[: n - 1] + "…"


def render_article(
    article: Article,
    start: int,
    end: int,
    note: str = "",
    inner: tuple[int, int] | None = None,
) -> str:
    """The article with text[start:end] in <mark id="isnad-mark">, exactly, nothing rewritten;
    `inner` (a short answer inside the span) in a stronger mark within it."""
    assert 0 <= start <= end <= len(article.text), f"span {start}:{end} outside the article"
    t = article.text
    note_html = f'<div class="isnad-note" dir="auto">{esc(note)}</div>' if note else ""
    if inner:
        a, b = inner
        assert start <= a < b <= end, f"short answer {a}:{b} outside the span {start}:{end}"
        marked = (
            f'{esc(t[start:a])}<mark class="isnad-short-mark">{esc(t[a:b])}</mark>{esc(t[b:end])}'
        )
    else:
        marked = esc(t[start:end])
    return (
        '<div class="isnad-article" dir="auto">'
        f'<h3 class="isnad-article-title" dir="auto">{esc(article.title)}</h3>'
        f"{_meta_of(article)}{note_html}"
        f'<div class="isnad-article-body" dir="auto">{esc(t[:start])}'
        f'<mark id="isnad-mark" class="isnad-mark">{marked}</mark>'
        f"{esc(t[end:])}</div></div>"
    )


def render_empty_view() -> str:
    return f'<div class="isnad-empty" dir="auto">{esc(EMPTY_VIEW)}</div>'


def open_source(turns: Sequence[Turn], choice: str | None) -> str:
    """The article behind source `choice` (see source_choices; a bare "c<n>"/"p<k>" means the
    last answer's), its cited span highlighted, as it was when the answer was given."""
    if not turns or not choice:
        return render_empty_view()
    where, _, what = choice.rpartition(":")
    turn = turns[int(where[1:])] if where else turns[-1]
    kind, n = what[0], int(what[1:])
    if kind == "c":
        c = next(c for c in turn.answer.citations if c.n == n)
        article, start, end = turn.articles[c.article_id], c.start, c.end
        assert article.text[start:end] == c.text, f"citation [{n}] does not match its article"
        short = turn.answer.short_answer
        inner = (short.start, short.end) if short and n == 1 else None
        return render_article(article, start, end, inner=inner)
    p = turn.answer.passages[n - 1]
    note = "مقطع قريب، ليس إجابة · A nearby passage, not an answer"
    return render_article(turn.articles[p.article_id], p.start, p.end, note)


def open_permalink(articles: dict[str, Article], query: dict[str, str]) -> str | None:
    """The article view a permalink (`?article=ID&start=S&end=E`, qa.export.permalink) asks for,
    from the index's current `articles`; a note instead when the link is bad or stale; None
    when the page was opened without one."""
    article_id = query.get("article")
    if article_id is None:
        return None
    article = articles.get(article_id)
    if article is None:
        return _link_note(f"«{article_id}» is not in the index (removed or renamed since)")
    try:
        start, end = int(query.get("start", "")), int(query.get("end", ""))
    except ValueError:
        return _link_note("its start and end are not numbers")
    if not 0 <= start < end <= len(article.text):
        return _link_note(f"the span {start}:{end} is outside «{article.title}» as it is now")
    return render_article(article, start, end, "فُتح من رابط · Opened from a link")


def _link_note(why: str) -> str:
    return (
        '<div class="isnad-empty isnad-note" dir="auto">'
        f"{esc('هذا الرابط لا يفتح مقطعا · This link opens nothing')}: {esc(why)}</div>"
    )


def _segments_line(m: dict) -> str:
    segments = segment_entries(m)
    masked = sum(len(s["deleted"]) for s in segments)
    line = f"{len(segments)} ({masked:,} replaced or removed articles masked until a merge)"
    if m["format"] == 1:
        line += "; built before segments: the next rebuild rewrites it once, re-embedding nothing"
    return line


def render_status(index_dir: Path, building: bool = False, note: str | None = None) -> str:
    """What the index holds: counts, model, last build, sources, skipped files and why; `note`
    (e.g. abstention weights fitted for another model) is shown above them."""
    try:
        m = read_manifest(index_dir)
    except IndexError_ as exc:
        return f'<div class="isnad-status" dir="auto">{esc(str(exc))}</div>'
    c = m["counts"]
    rows = [
        ("المقالات · Articles", f"{c['articles']:,}"),
        ("المقاطع · Chunks", f"{c['chunks']:,}"),
        *(
            [
                ("مؤرخة · Dated", f"{c['dated']:,}"),
                (
                    "نسخ مكررة · Wire copies",
                    f"{c['copy_clusters']:,} ({c['articles_in_copy_clusters']:,})",
                ),
            ]
            if "dated" in c  # indexes built before dates and copies were read lack these
            else []
        ),
        ("النموذج · Model", f"{m['model']['id']} ({m['model']['dim']})"),
        ("الأجزاء · Segments", _segments_line(m)),
        *(
            [
                (
                    "ملاحظة · Note",
                    "built before sentences-only embedding: the next rebuild "
                    "re-embeds every article once",
                )
            ]  # fmt: skip
            if embedded_with_older_recipe(m)
            else []
        ),
        ("آخر بناء · Last build", m["built_at"]),
        ("المصادر · Sources", ", ".join(m["sources"])),
        ("الفهرس · Index", str(index_dir)),
    ]
    table = "".join(f'<tr><th>{esc(k)}</th><td dir="auto">{esc(v)}</td></tr>' for k, v in rows)
    skipped = "".join(
        f'<li dir="auto"><code>{esc(s["source"])}</code>: {esc(s["reason"])}</li>'
        for s in m["skipped"]
    )
    skipped_html = (
        f"<h4>ملفات متروكة · Skipped ({len(m['skipped'])})</h4><ul>{skipped}</ul>"
        if skipped
        else "<h4>لا ملفات متروكة · Nothing skipped</h4>"
    )
    dates = "".join(
        f'<li dir="auto"><code>{esc(d["article_id"])}</code>: {esc(d["published"])}</li>'
        for d in m.get("unreadable_dates", [])
    )
    if dates:
        skipped_html += (
            f"<h4>تواريخ غير مقروءة · Unreadable dates ({len(m['unreadable_dates'])})</h4>"
            f"<ul>{dates}</ul>"
        )
    note_html = f'<p class="isnad-note" dir="auto">⚠ {esc(note)}</p>' if note else ""
    # Labels are Arabic first: the container resolves to RTL, values decide their own way.
    return (
        f'<div class="isnad-status" dir="auto">{note_html}<table>{table}</table>'
        f"{skipped_html}</div>"
    )
