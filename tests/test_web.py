"""Saved web pages and RSS/Atom feeds as articles, from files and from (loopback) URLs."""

from __future__ import annotations

import http.server
import threading

import pytest

from index import fetch as fetch_mod
from index.articles import load_articles
from index.build import build_index
from index.store import load_index
from qa.answer import Answerer
from tests.conftest import FakeEncoder
from tests.test_answer import coverage_model

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>بلدية صفاقس تفتتح مكتبة | جريدة المدينة</title>
<meta property="article:published_time" content="2017-03-02T10:00:00+01:00">
<link rel="canonical" href="https://example.org/sfax/library">
<script>var tracking = "لا تظهر هذه الجملة";</script></head>
<body><nav><a href="/">الرئيسية</a> <a href="/sport">رياضة</a> <a href="/eco">اقتصاد</a></nav>
<article><h1>بلدية صفاقس تفتتح مكتبة</h1>
<p>أعلنت بلدية صفاقس عن افتتاح مكتبة عمومية جديدة في وسط المدينة يوم السبت القادم، وتضم
المكتبة عشرة آلاف كتاب باللغتين العربية والفرنسية.</p>
<p>وقال رئيس البلدية إن المكتبة ستفتح أبوابها كل يوم من التاسعة صباحا إلى السادسة مساء، وإن
الدخول إليها مجاني لجميع المواطنين.</p></article>
<footer>جميع الحقوق محفوظة © 2017 جريدة المدينة</footer></body></html>
"""
RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>إذاعة المثال</title><link>https://radio.example/</link>
<item><title>ارتفاع أسعار النفط</title><link>https://radio.example/news/1</link>
<pubDate>Thu, 02 Mar 2017 10:00:00 +0100</pubDate>
<description>&lt;p&gt;ارتفعت أسعار &lt;b&gt;النفط&lt;/b&gt; في الأسواق العالمية بعد قرار أوبك خفض
الإنتاج.&lt;/p&gt;&lt;p&gt;وقال محللون إن الأسعار ستواصل الارتفاع &amp;amp;
التذبذب.&lt;/p&gt;</description>
</item>
<item><title>فوز الترجي</title><link>https://radio.example/news/2</link>
<pubDate>Fri, 03 Mar 2017 21:30:00 +0100</pubDate>
<description>فاز الترجي الرياضي على النادي الإفريقي بهدفين في الدربي.</description></item>
</channel></rss>
"""
ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Example Wire</title>
<entry><title>Port reopens</title><link href="https://wire.example/a/7"/>
<id>urn:uuid:7</id><updated>2017-03-04T08:00:00Z</updated>
<content type="html">&lt;p&gt;The port of Sfax reopened on Saturday
after the storm.&lt;/p&gt;</content>
</entry></feed>
"""


def test_a_saved_page_gives_its_main_text_title_date_and_url(tmp_path):
    (tmp_path / "library.html").write_text(PAGE, encoding="utf-8")
    (a,), skipped = load_articles([tmp_path])
    assert skipped == []
    assert (a.id, a.title) == ("library.html", "بلدية صفاقس تفتتح مكتبة")
    assert a.meta == {
        "url": "https://example.org/sfax/library",
        "published": "2017-03-02",
        "source": "example.org",
    }
    assert "عشرة آلاف كتاب" in a.text and "الدخول إليها مجاني" in a.text
    for dropped in ("لا تظهر", "الرئيسية", "جميع الحقوق", "<p>", "var tracking"):
        assert dropped not in a.text
    assert "\n\n" in a.text  # paragraphs kept apart


def test_feed_items_are_articles_with_link_date_and_text_without_markup(tmp_path):
    (tmp_path / "radio.rss").write_text(RSS, encoding="utf-8")
    (tmp_path / "wire.atom").write_text(ATOM, encoding="utf-8")
    articles, skipped = load_articles([tmp_path])
    assert skipped == []
    by_id = {a.id: a for a in articles}
    assert sorted(by_id) == [
        "https://radio.example/news/1",
        "https://radio.example/news/2",
        "https://wire.example/a/7",
    ]
    oil = by_id["https://radio.example/news/1"]
    assert oil.title == "ارتفاع أسعار النفط"
    assert oil.meta == {
        "url": "https://radio.example/news/1",
        "published": "2017-03-02T10:00:00+01:00",
        "source": "إذاعة المثال",
    }
    assert oil.text == (
        "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار أوبك خفض الإنتاج.\n\n"
        "وقال محللون إن الأسعار ستواصل الارتفاع & التذبذب.\n"
    )
    port = by_id["https://wire.example/a/7"]
    assert (
        port.meta["published"] == "2017-03-04T08:00:00Z" and port.meta["source"] == "Example Wire"
    )


def test_what_is_not_a_page_or_feed_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "config.xml").write_text("<config><a>1</a></config>", encoding="utf-8")
    (tmp_path / "empty.html").write_text("<html><body><script>x = 1;</script></body></html>")
    articles, skipped = load_articles([tmp_path])
    assert articles == []
    reasons = {s.source.rsplit("/", 1)[-1]: s.reason for s in skipped}
    assert reasons["config.xml"].startswith("not an RSS or Atom feed")
    assert reasons["empty.html"].startswith("no main text found in the page")


def test_citations_of_a_page_slice_the_extracted_text(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "library.html").write_text(PAGE, encoding="utf-8")
    build_index([tmp_path / "c"], tmp_path / "ix", FakeEncoder())
    ix = load_index(tmp_path / "ix")
    a = Answerer(ix, FakeEncoder(), abstain_model=coverage_model(0.3), strict=True)
    answer = a.ask("متى تفتح مكتبة صفاقس العمومية الجديدة؟")
    c = answer.citations[0]
    text = ix.articles[ix.article_row["library.html"]].text
    assert text[c.start : c.end] == c.text and "مكتبة" in c.text
    assert (c.published, c.url) == ("2017-03-02", "https://example.org/sfax/library")


# --- URLs --------------------------------------------------------------------------------


@pytest.fixture
def site():
    """A loopback HTTP server: {path: (content type, body)}, editable by the test."""
    pages: dict[str, tuple[str, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path not in pages:
                self.send_error(404, "Not Found")
                return
            kind, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


def test_pages_and_feeds_are_fetched_and_not_embedded_again(site, tmp_path):
    base, pages = site
    pages["/sfax/library"] = ("text/html; charset=utf-8", PAGE.encode())
    pages["/feed"] = ("application/rss+xml", RSS.encode())
    urls = [f"{base}/sfax/library", f"{base}/feed"]
    enc = FakeEncoder()
    first = build_index(urls, tmp_path / "ix", enc)
    assert first.skipped == [] and first.articles == 3
    ix = load_index(tmp_path / "ix")
    assert (
        f"{base}/sfax/library" in ix.article_row
        and "https://radio.example/news/2" in ix.article_row
    )
    assert ix.manifest["sources"] == urls  # URLs are kept as given, fetched again on rebuild
    # the feed gains an item; the items already indexed are not embedded again
    pages["/feed"] = (
        "application/rss+xml",
        RSS.replace(
            "</channel>",
            "<item><title>طقس</title><link>https://radio.example/news/3</link>"
            "<description>أمطار غزيرة منتظرة في الشمال الغربي يوم الأحد.</description></item>"
            "</channel>",
        ).encode(),
    )
    enc.calls.clear()
    second = build_index(urls, tmp_path / "ix", enc)
    assert second.added == ["https://radio.example/news/3"] and second.unchanged == 3
    assert all("أمطار" in t or "طقس" in t for t in enc.embedded_documents)


def test_urls_that_cannot_be_read_are_skipped_with_the_reason(site, tmp_path, monkeypatch):
    base, pages = site
    pages["/big"] = ("text/html", b"<p>" + "كلمة ".encode() * 5000 + b"</p>")
    pages["/ok"] = ("text/html", PAGE.encode())
    monkeypatch.setattr(fetch_mod, "MAX_BYTES", 10 * 1024)
    urls = [f"{base}/missing", f"{base}/big", f"{base}/ok", "https://"]
    articles, skipped = load_articles(urls)
    assert [a.id for a in articles] == [f"{base}/ok"]
    reasons = {s.source: s.reason for s in skipped}
    assert reasons[f"{base}/missing"].endswith("HTTP 404 Not Found; check the address")
    assert "larger than 10 KB; save the page and index the file" in reasons[f"{base}/big"]
    assert "cannot fetch" in reasons["https://"]
