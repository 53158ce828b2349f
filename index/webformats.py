"""Saved web pages and RSS/Atom feeds -> article records: the main text, title, date and link.

`read_html(data)` runs trafilatura over a page (scripts, navigation, footers and ads dropped)
and returns one `WebRecord`; `read_feed(data)` parses an RSS or Atom feed with feedparser and
returns one record per item (link -> url, title, published, the item's content or summary as
text with its markup removed). Paragraphs are separated by a blank line. The text a record
carries is what the index stores, what offsets refer to and what the UI shows.

Both raise `WebFormatError` with a one-line reason when there is nothing to index (no main
text, not a feed, a feed with no items).

What this module does NOT do: fetch URLs (index.fetch), or decide ids and skip duplicates
(index.articles).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

_BLOCK = re.compile(
    r"</?(p|div|br|li|ul|ol|h[1-6]|blockquote|tr|table|section|article|figure|figcaption)\b[^>]*>",
    re.IGNORECASE,
)


class WebFormatError(ValueError):
    """A page or feed with nothing to index; the message says why."""


@dataclass(frozen=True)
class WebRecord:
    title: str
    text: str
    meta: dict[str, str] = field(default_factory=dict)  # url, published (as found), source
    key: str = ""  # a feed item's link or guid: its id when the feed is indexed


def read_html(data: bytes) -> WebRecord:
    """The main text of a saved page, with its title, date and canonical url if it has them."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        data, with_metadata=True, favor_recall=True, include_comments=False
    )
    text = _paragraphs((doc.text or "") if doc is not None else "")
    if not text:
        raise WebFormatError("no main text found in the page; save the article page itself")
    meta = {"url": doc.url, "published": doc.date, "source": doc.sitename}
    return WebRecord(doc.title or "", text + "\n", _clean(meta))


def read_feed(data: bytes) -> list[WebRecord]:
    """One record per feed item that has text (content, else summary, else its title)."""
    import feedparser

    feed = feedparser.parse(data)
    if not feed.get("version") and not feed.entries:
        raise WebFormatError("not an RSS or Atom feed; isnad reads .xml/.rss/.atom feeds")
    source = feed.feed.get("title", "")
    records = []
    for i, entry in enumerate(feed.entries):
        body = entry.get("content", [{}])[0].get("value") or entry.get("summary", "")
        text = html_to_text(body)
        title = html_to_text(entry.get("title", "")).replace("\n", " ")
        if not text:
            continue
        published = entry.get("published") or entry.get("updated") or ""
        meta = {"url": entry.get("link"), "published": rfc822_to_iso(published), "source": source}
        key = entry.get("link") or entry.get("id") or f"item-{i + 1}"
        records.append(WebRecord(title, text + "\n", _clean(meta), key))
    if not records:
        raise WebFormatError("the feed has no items with text")
    return records


def html_to_text(markup: str) -> str:
    """Markup -> text: block elements end paragraphs (blank lines between), tags are dropped,
    entities decoded, spaces inside a paragraph collapsed."""
    import html

    if "<" not in markup and "&" not in markup:
        return _paragraphs(markup)
    marked = _BLOCK.sub("\n\n", " ".join(markup.split()))  # a raw newline is only a space
    marked = re.sub(r"<(script|style)\b.*?</\1\s*>", " ", marked, flags=re.IGNORECASE | re.DOTALL)
    return _paragraphs(html.unescape(re.sub(r"<[^>]*>", " ", marked)))


def rfc822_to_iso(text: str) -> str:
    """ "Thu, 02 Mar 2017 10:00:00 +0100" (RSS) -> "2017-03-02T10:00:00+01:00"; other text as
    it is (Atom dates are ISO 8601 already; index.dates reads them)."""
    try:
        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        return text


def _paragraphs(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.replace("\r", "\n").split("\n"))
    return "\n\n".join(line for line in lines if line)


def _clean(meta: dict) -> dict[str, str]:
    return {k: str(v).strip() for k, v in meta.items() if v and str(v).strip()}
