"""The archive desk in a real browser: the Archive tab's table listed, searched, opened and
deleted from after a confirmation (the chat then answers from the new index); a feed added by
URL; two users logged in, each with their own conversations; a locked login that says so.

Drives Debian's headless Chromium through Playwright, as tests/test_browser.py does, against
the app served in-process over a small index built with the fake encoder (the archive does not
need the real model; answers cite whenever there is something to cite).
"""

from __future__ import annotations

import re

import pytest

from index.store import load_index
from tests.test_api import launched
from tests.test_archive import NEWEST_FIRST, RECORDS
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, sync_api
from tests.test_web import RSS, site  # noqa: F401 (a fixture)
from ui.auth import add_login, logins
from ui.conversations import Conversations

pytestmark = [pytest.mark.browser]
TITLES = {r["id"]: r["title"] for r in RECORDS}
Q_FIRE = "كم هكتارا أتت عليها النيران في غابة جندوبة؟"
Q_PORT = "How many cargo ships were waiting to enter the harbour?"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_archive(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("tab", name="الأرشيف · Archive").click()
    page.locator("[data-testid=cell-0-1]").wait_for(timeout=15_000)


def count_line(page) -> str:
    return page.locator("#isnad-archive-summary .isnad-archive-count").inner_text()


def table_titles(page) -> list[str]:
    cells = page.locator("#isnad-archive-table [role=gridcell][data-col='1']")
    return [c.strip() for c in cells.all_inner_texts()]


def wait_count(page, text: str) -> None:
    sync_api.expect(page.locator("#isnad-archive-summary .isnad-archive-count")).to_have_text(
        re.compile("^" + re.escape(text)), timeout=15_000
    )


def test_the_archive_lists_searches_opens_and_deletes_after_a_confirmation(tmp_path, browser):
    with launched(tmp_path) as (url, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_archive(page, url + "/")
        assert count_line(page).startswith("6 articles match; 1-6 shown, newest first")
        assert table_titles(page) == [TITLES[i] for i in NEWEST_FIRST]

        # search: Arabic-aware (diacritics as retrieval ignores them), and a filter by source
        page.locator("#isnad-archive-query textarea, #isnad-archive-query input").first.fill("حَرِيق")
        page.locator("#isnad-archive-search").click()
        wait_count(page, "2 articles match")
        assert table_titles(page) == [TITLES["fire-2"], TITLES["fire-1"]]

        # a row opens the article whole: its text, metadata, permalink and wire copy
        page.locator("[data-testid=cell-1-1]").click()
        view = page.locator("#isnad-archive-article")
        sync_api.expect(view.locator(".isnad-article-title")).to_have_text(TITLES["fire-1"])
        body = view.locator(".isnad-article-body").inner_text()
        assert "أربعين هكتارا" in body
        assert "Also reported by" in view.inner_text() and TITLES["fire-2"] in view.inner_text()
        href = view.locator("a.isnad-permalink").get_attribute("href")
        assert href.startswith("/?article=fire-1&start=0&end=")

        # delete it: the confirmation names it; cancel keeps it, yes removes it
        page.locator("#isnad-archive-delete-one").click()
        question = page.locator("#isnad-archive-question")
        sync_api.expect(question).to_contain_text("Delete 1 article from the index?")
        assert TITLES["fire-1"] in question.inner_text()
        page.locator("#isnad-archive-no").click()
        sync_api.expect(page.locator("#isnad-archive-yes")).to_be_hidden()
        assert len(load_index(tmp_path / "ix").articles) == 6
        page.locator("#isnad-archive-delete-one").click()
        page.locator("#isnad-archive-yes").click()
        wait_count(page, "1 article match")
        message = page.locator("#isnad-archive-message textarea").input_value()
        assert message.endswith("Deleted 1: fire-1; the index holds 5 articles")
        assert "ورد الخبر" not in view.inner_text()  # the deleted article's view is gone
        assert "fire-1" not in load_index(tmp_path / "ix").article_row

        # several at once, chosen among the page's articles
        page.locator("#isnad-archive-query textarea, #isnad-archive-query input").first.fill("")
        page.locator("#isnad-archive-search").click()
        wait_count(page, "5 articles match")
        for article_id in ("fest", "derby"):
            page.locator("#isnad-archive-chosen input").click()
            page.locator("ul[role=listbox] li").filter(has_text=f"· {article_id}").click()
        page.keyboard.press("Escape")
        page.locator("#isnad-archive-delete").click()
        sync_api.expect(question).to_contain_text("Delete 2 articles from the index?")
        page.locator("#isnad-archive-yes").click()
        wait_count(page, "3 articles match")
        assert table_titles(page) == [TITLES[i] for i in ("port", "fire-2", "farm")]

        # the chat answers from the new index at once
        page.get_by_role("tab", name="المحادثة · Chat").click()
        box = page.locator("#isnad-question textarea")
        box.fill(Q_FIRE)
        box.press("Enter")
        page.locator("#isnad-chat .isnad-answer").last.wait_for(timeout=30_000)
        cited = page.locator("#isnad-chat .isnad-answer").last.inner_text()
        assert TITLES["fire-2"] in cited and TITLES["fire-1"] not in cited
        page.close()


def test_a_feed_added_by_url_in_the_index_tab_shows_in_the_archive(tmp_path, browser, site):  # noqa: F811
    base, pages = site
    pages["/feed"] = ("application/rss+xml", RSS.encode())
    with launched(tmp_path) as (url, _):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url + "/")
        page.get_by_role("tab", name="الفهرس · Index").click()
        page.locator("#isnad-url textarea, #isnad-url input").first.fill(f"{base}/missing")
        page.locator("#isnad-add-url").click()
        sync_api.expect(page.locator(".toast-body").first).to_contain_text(
            "HTTP 404 Not Found; check the address; the index was not changed", timeout=15_000
        )
        page.locator("#isnad-url textarea, #isnad-url input").first.fill(f"{base}/feed")
        page.locator("#isnad-add-url").click()
        message = page.locator("#isnad-message textarea")
        sync_api.expect(message).to_have_value(re.compile("^" + re.escape(f"{base}/feed: 8 art")))
        page.get_by_role("tab", name="الأرشيف · Archive").click()
        wait_count(page, "8 articles match")
        assert "ارتفاع أسعار النفط" in table_titles(page)
        page.close()


def log_in(browser, url: str, user: str, password: str):
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(url + "/")
    page.locator("input").first.fill(user)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
    page.locator("#isnad-question textarea").wait_for(timeout=20_000)
    return page


def conversation_names(page) -> list[str]:
    return [t.strip() for t in page.locator("#isnad-conversations label").all_inner_texts()]


def ask(page, question: str, n: int) -> None:
    box = page.locator("#isnad-question textarea")
    sync_api.expect(box).to_be_editable(timeout=20_000)
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll('#isnad-chat .isnad-answer').length === {n}",
        timeout=30_000,
    )


def test_two_users_each_see_only_their_own_conversations_and_the_shared_old_ones(tmp_path, browser):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    auth = tmp_path / "auth"
    add_login(auth, "mona", "m-pass")
    add_login(auth, "sami", "s-pass")
    old = Conversations(tmp_path / "c.sqlite3").create("قبل الدخول · before logins")
    with launched(tmp_path, auth=logins(None, auth)) as (url, _):
        mona = log_in(browser, url, "mona", "m-pass")
        sami = log_in(browser, url, "sami", "s-pass")
        ask(mona, Q_FIRE, 1)
        ask(sami, Q_PORT, 1)
        mona.reload()
        sami.reload()
        mona.locator("#isnad-conversations label").first.wait_for(timeout=20_000)
        sami.locator("#isnad-conversations label").first.wait_for(timeout=20_000)
        mine, his = conversation_names(mona), conversation_names(sami)
        assert any(Q_FIRE[:20] in c for c in mine) and not any(Q_PORT[:20] in c for c in mine)
        assert any(Q_PORT[:20] in c for c in his) and not any(Q_FIRE[:20] in c for c in his)
        assert any("before logins" in c for c in mine) and any("before logins" in c for c in his)
        # each page restored its own conversation after the reload
        assert Q_FIRE in mona.locator("#isnad-chat").inner_text()
        assert Q_PORT in sami.locator("#isnad-chat").inner_text()

        # through the API: sami opening, renaming or deleting mona's conversation by its id
        store = Conversations(tmp_path / "c.sqlite3")
        (mona_cid,) = [c.id for c in store.list("mona") if c.id != old]
        client = Client(url + "/", auth=("sami", "s-pass"), verbose=False)
        with pytest.raises(AppError) as e:  # not among sami's conversations
            client.predict(mona_cid, api_name="/open_conversation")
        assert Q_FIRE not in str(e.value)
        with pytest.raises(AppError, match="choose a conversation to rename"):
            client.predict(mona_cid, "mine now", api_name="/rename")
        client.predict(mona_cid, api_name="/delete_conversation")  # does nothing to hers
        assert store.title(mona_cid, "mona") == Q_FIRE  # not renamed
        assert len(store.turns(mona_cid, "mona")) == 1
        mona.close()
        sami.close()


def test_a_locked_login_says_so_on_the_page(tmp_path, browser):
    auth = tmp_path / "auth"
    add_login(auth, "mona", "m-pass")
    with launched(tmp_path, auth=logins(None, auth)) as (url, _):
        page = browser.new_context().new_page()
        page.goto(url + "/")
        for n in range(6):
            page.locator("input").first.fill("mona")
            page.locator("input[type=password]").fill(f"guess-{n}")
            page.get_by_role("button", name="Login").click()
            page.wait_for_timeout(900)
        note = page.locator("#isnad-login-note")
        sync_api.expect(note).to_have_text("too many failed logins; try again in 5 minutes")
        page.locator("input[type=password]").fill("m-pass")  # right, but locked
        page.get_by_role("button", name="Login").click()
        page.wait_for_timeout(1000)
        assert page.locator("#isnad-question textarea").count() == 0
        page.close()
