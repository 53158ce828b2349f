"""The UI in a real browser: an Arabic question, its citation opened and highlighted, RTL layout.

Drives Debian's headless Chromium (`apt-get install chromium`) through Playwright for Python;
Playwright's own browser download is not used. The app runs in-process with the real model over
a small index of seed articles (plus one carrying HTML), built in a temp folder.

Environment knobs, for the README screenshot:
    ISNAD_BROWSER_INDEX=/tmp/ix-real   serve (a copy of) this index instead of the small one
    ISNAD_SCREENSHOT=docs/screenshot.png   where to save the screenshot (default: a temp file)
"""

from __future__ import annotations

import html
import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

import app
import ui.chat_tab as chat_tab
from index.build import build_index
from index.store import load_index, read_manifest
from qa.answer import Answerer
from qa.calibration import ABSTAIN_FILE, READER_FILE, SHIFT_FILE, SHIPPED, STORY_FILE

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
SEED_RECORDS = 8  # the first records of the seed sample; the first is the one asked about
QUESTION = "متى سيعلن محسن مرزوق عن البديل السياسي؟"
HTML_ARTICLE = {
    "id": "html-1",
    "title": "<script>alert('title')</script> بلدية صفاقس تفتتح مكتبة",
    "text": (
        "أعلنت بلدية صفاقس <img src=x onerror=alert(1)> عن افتتاح مكتبة عمومية جديدة في وسط "
        "المدينة يوم السبت القادم، وتضم المكتبة عشرة آلاف كتاب.\n"
    ),
    "published": "2025-07-01",
}
HTML_QUESTION = "متى ستفتتح بلدية صفاقس المكتبة العمومية الجديدة؟"
STORY_QUESTION = "كيف تطور إضراب عمال ميناء رادس؟"

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (pip) is not installed")


def story_lines() -> list[str]:
    """The port strike of tests/test_timeline.py: a story told over five dated articles."""
    from tests.test_timeline import RECORDS

    return [
        json.dumps(
            {"id": rid, "title": title, "text": text, "published": published or "",
             "source": "Jawhara FM"},
            ensure_ascii=False,
        )
        for rid, published, title, text in RECORDS
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory, real_encoder):
    """(url, index_dir, whether the index is the small built-in one) of a running app."""
    tmp = tmp_path_factory.mktemp("browser")
    given = os.environ.get("ISNAD_BROWSER_INDEX")
    if given:
        index_dir = tmp / "ix"
        shutil.copytree(given, index_dir)
        sources = [Path(s) for s in read_manifest(index_dir)["sources"]]
    else:
        corpus = tmp / "corpus"
        corpus.mkdir()
        seeds = (ROOT / "seeds" / "ant-news-sample.jsonl").read_text(encoding="utf-8")
        lines = seeds.splitlines()[:SEED_RECORDS] + [json.dumps(HTML_ARTICLE, ensure_ascii=False)]
        lines += story_lines()
        (corpus / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        index_dir = tmp / "ix"
        build_index([corpus], index_dir, real_encoder)
        sources = [corpus]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ISNAD_CALIBRATION", str(speaking_reader(tmp / "calibration")))
        demo = app.create_app(
            index_dir,
            sources,
            tmp / "uploads",
            encoder=real_encoder,
            conversations_db=tmp / "conversations.sqlite3",
        )
        port = free_port()
        app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/", index_dir, not given
        finally:
            demo.close()


def speaking_reader(folder: Path) -> Path:
    """A calibration folder with the shipped models, but a reader whose every short answer is
    shown (threshold 0): what the page does with a short answer is tested here whatever the
    shipped reader's confidence in one question (its quality is bench/reader.py's)."""
    folder.mkdir()
    for name in (ABSTAIN_FILE, SHIFT_FILE, STORY_FILE):
        shutil.copy(SHIPPED / name, folder / name)
    reader = json.loads((SHIPPED / READER_FILE).read_text(encoding="utf-8"))
    for group in reader["groups"].values():
        group["threshold"] = 0.0
    (folder / READER_FILE).write_text(json.dumps(reader), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def ask_in_page(page, url: str, question: str) -> None:
    page.goto(url)
    box = page.locator("#isnad-question textarea")
    box.fill(question)
    box.press("Enter")
    page.locator("#isnad-chat .isnad-answer").last.wait_for(timeout=30_000)


def open_first_source(page) -> str:
    """Click the first source of the last answer; the highlighted text in the article view."""
    page.locator("#isnad-sources label").first.click()
    mark = page.locator("#isnad-article #isnad-mark")
    mark.wait_for(timeout=15_000)
    page.wait_for_function(  # scrolled into view inside the article pane
        """() => { const m = document.querySelector('#isnad-mark');
                   const b = m.closest('.isnad-article-body').getBoundingClientRect();
                   const r = m.getBoundingClientRect();
                   return r.top >= b.top - 1 && r.top < b.bottom; }""",
        timeout=5_000,
    )
    return mark.evaluate("m => m.textContent")


def test_arabic_question_cites_a_span_that_opens_highlighted_and_reads_rtl(
    served, browser, real_encoder, tmp_path
):
    url, index_dir, _ = served
    expected = Answerer(load_index(index_dir), real_encoder).ask(QUESTION)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    ask_in_page(page, url, QUESTION)

    answer = page.locator("#isnad-chat .isnad-answer").last
    assert answer.evaluate("e => getComputedStyle(e).direction") == "rtl"
    # the answer leads with the words that answer, marked again inside the quoted sentence
    short = expected.short_answer
    assert short is not None and "مارس" in short.text
    lead = answer.locator(".isnad-short")
    assert lead.inner_text().startswith(" ".join(short.text.split()))
    assert answer.locator(".isnad-quote .isnad-short-mark").first.inner_text() == short.text
    assert answer.inner_text().count(expected.citations[0].text.split("\n")[0][-25:]) == 1
    question = page.locator("#isnad-chat .isnad-question").last
    assert question.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert not expected.abstained, expected.text
    assert page.locator("#isnad-chat .isnad-abstain").count() == 0

    highlighted = open_first_source(page)
    first = expected.citations[0]
    assert highlighted == first.text
    inner = page.locator("#isnad-article #isnad-mark .isnad-short-mark")
    assert inner.inner_text() == short.text
    article = load_index(index_dir).articles
    assert (
        next(a for a in article if a.id == first.article_id).text[first.start : first.end]
        == highlighted
    )
    body = page.locator("#isnad-article .isnad-article-body")
    assert body.evaluate("e => getComputedStyle(e).direction") == "rtl"

    shot = Path(os.environ.get("ISNAD_SCREENSHOT") or tmp_path / "screenshot.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    page.close()


def test_html_in_an_article_shows_as_text_and_never_runs(served, browser):
    url, _, small = served
    if not small:
        pytest.skip("the HTML article is only in the small built-in index")
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    ask_in_page(page, url, HTML_QUESTION)
    open_first_source(page)
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert "<script>alert('title')</script>" in page.locator("#isnad-chat").inner_text()
    article_text = page.locator("#isnad-article").inner_text()
    assert "<img src=x onerror=alert(1)>" in article_text
    page.close()


def test_a_question_asked_while_the_page_restores_keeps_its_answer(served, browser, monkeypatch):
    """The page's restore (the conversation this browser had open) must not wipe an answer
    that came back before it: the question box is enabled only once the restore is done."""
    url, _, _ = served
    original = chat_tab.open_permalink

    def slow_restore(*args, **kwargs):
        time.sleep(2.0)
        return original(*args, **kwargs)

    monkeypatch.setattr(chat_tab, "open_permalink", slow_restore)
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.goto(url)
    box = page.locator("#isnad-question textarea")
    box.fill(QUESTION)  # waits until the box is editable
    box.press("Enter")
    page.locator("#isnad-chat .isnad-answer").last.wait_for(timeout=30_000)
    page.wait_for_timeout(2_500)  # past the restore, had it still been running
    assert page.locator("#isnad-chat .isnad-answer").count() == 1
    assert page.locator("#isnad-sources label").count() > 0
    page.close()


def test_a_date_filter_from_the_page_narrows_the_answer_and_says_when_nothing_matches(
    served, browser
):
    url, index_dir, small = served
    if not small:
        pytest.skip("checked on the built-in index")
    page = browser.new_page()
    page.goto(url)
    page.locator("#isnad-filters").get_by_text("تصفية · Filters").click()
    until = page.locator("#isnad-until input, #isnad-until textarea").first
    until.wait_for(timeout=10_000)
    # the boxes show the index's own first and last dates (filled by a page-load event: wait)
    sync_api.expect(until).to_have_attribute("placeholder", "2025-07-01", timeout=10_000)
    until.fill("2010-01-01")
    box = page.locator("#isnad-question textarea")
    box.fill(QUESTION)
    box.press("Enter")
    answer = page.locator("#isnad-chat .isnad-answer").last
    answer.wait_for(timeout=30_000)
    assert "لا توجد مقالات تطابق التصفية (until 2010-01-01)" in answer.inner_text()
    assert "isnad-abstain" in answer.get_attribute("class")
    page.close()


def test_a_conversation_survives_reload_and_restart_and_exports_with_its_sources(
    served, browser, real_encoder, tmp_path
):
    _, index_dir, small = served
    if not small:
        pytest.skip("checked on the built-in index")
    sources = [Path(s) for s in read_manifest(index_dir)["sources"]]
    db, port = tmp_path / "conversations.sqlite3", free_port()
    url = f"http://127.0.0.1:{port}/"

    def start():
        demo = app.create_app(
            index_dir, sources, tmp_path / "up", encoder=real_encoder, conversations_db=db
        )
        app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
        return demo

    demo = start()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(url)
        for n, q in enumerate([QUESTION, HTML_QUESTION], start=1):
            box = page.locator("#isnad-question textarea")
            box.fill(q)
            box.press("Enter")
            page.wait_for_function(
                f"() => document.querySelectorAll('#isnad-chat .isnad-answer').length === {n}",
                timeout=30_000,
            )
        first = Answerer(load_index(index_dir), real_encoder).ask(QUESTION).citations[0]

        page.reload()  # the conversation comes back from the server
        page.wait_for_function(
            "() => document.querySelectorAll('#isnad-chat .isnad-answer').length === 2",
            timeout=20_000,
        )
        demo.close()  # a server restart, same address: the browser keeps its conversation
        demo = start()
        page.reload()
        page.wait_for_function(
            "() => document.querySelectorAll('#isnad-chat .isnad-answer').length === 2",
            timeout=20_000,
        )
        chat = page.locator("#isnad-chat").inner_text()
        assert QUESTION in chat and HTML_QUESTION in chat
        # the FIRST answer's source opens with its highlight (sources list the latest first)
        page.locator("#isnad-sources label").filter(has_text="Q1 [1]").first.click()
        mark = page.locator("#isnad-article #isnad-mark")
        mark.wait_for(timeout=15_000)
        assert mark.evaluate("m => m.textContent") == first.text

        # export the conversation as Markdown and read the file the page offers
        page.get_by_text("تعديل وتصدير · Rename, delete, export").click()
        page.locator("#isnad-export-md").click()
        link = page.locator("#isnad-export-file a").first
        link.wait_for(timeout=15_000)
        markdown = page.request.get(link.get_attribute("href")).text()
        assert f"## {QUESTION}" in markdown and f"## {HTML_QUESTION}" in markdown
        assert first.title in markdown
        assert first.text.split("\n")[0] in markdown.replace("**", "")  # short answer marked
        assert (first.published or "")[:10] in markdown and f"<{first.url}>" in markdown
        assert f"?article={first.article_id}" in markdown
        page.locator("#isnad-export-html").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('#isnad-export-file a')]"
            ".some(a => a.getAttribute('href').endsWith('.html'))",
            timeout=15_000,
        )
        href = next(
            h
            for h in page.locator("#isnad-export-file a").evaluate_all(
                "links => links.map(a => a.getAttribute('href'))"
            )
            if h.endswith(".html")
        )
        exported = page.request.get(href).text()
        assert exported.startswith("<!doctype html>") and 'dir="auto"' in exported
        unmarked = exported.replace("<mark>", "").replace("</mark>", "")  # the short answer
        assert html.escape(first.title) in exported and html.escape(first.text) in unmarked
        assert (first.published or "")[:10] in exported and f'href="{first.url}"' in exported

        # a permalink opens the article at its span; a stale one says so
        href = page.locator("#isnad-chat a.isnad-permalink").first.get_attribute("href")
        page.goto(url.rstrip("/") + href)
        mark = page.locator("#isnad-article #isnad-mark")
        mark.wait_for(timeout=15_000)
        assert mark.evaluate("m => m.textContent") == first.text
        page.goto(url + "?article=no-such-article&start=0&end=5")
        note = page.locator("#isnad-article .isnad-note")
        note.wait_for(timeout=15_000)
        assert "This link opens nothing" in note.inner_text()
    finally:
        page.close()
        demo.close()


def test_a_story_question_is_a_dated_timeline_whose_sources_open_at_their_spans(
    served, browser, real_encoder
):
    url, index_dir, small = served
    if not small:
        pytest.skip("the story's articles are only in the small built-in index")
    expected = Answerer(load_index(index_dir), real_encoder).ask(STORY_QUESTION)
    assert expected.mode == "timeline", expected.note
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    ask_in_page(page, url, STORY_QUESTION)
    timeline = page.locator("#isnad-chat .isnad-timeline").last
    timeline.wait_for(timeout=30_000)
    assert timeline.evaluate("e => getComputedStyle(e).direction") == "rtl"
    dates = timeline.locator("time.isnad-date").all_inner_texts()
    assert dates == [e.date for e in expected.timeline] and dates == sorted(dates)
    assert timeline.locator(".isnad-chip").count() == len(expected.citations)
    # every entry's source is in the Sources list and opens at its span
    labels = page.locator("#isnad-sources label")
    assert labels.count() == len(expected.citations)
    last = expected.citations[-1]
    labels.filter(has_text=f"[{last.n}]").first.click()
    mark = page.locator("#isnad-article #isnad-mark")
    sync_api.expect(mark).to_have_text(last.text, timeout=15_000)
    # the same question with the mode set to "answer" is answered as before
    page.locator("#isnad-mode").get_by_text("إجابة · Answer").click()
    box = page.locator("#isnad-question textarea")
    box.fill(STORY_QUESTION)
    box.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#isnad-chat .isnad-answer').length === 2",
        timeout=30_000,
    )
    assert page.locator("#isnad-chat .isnad-timeline").count() == 1
    page.close()
