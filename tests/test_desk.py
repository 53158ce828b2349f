"""The desk: conversations kept in SQLite with their citations, exports that keep their sources,
permalinks to a highlighted span."""

from __future__ import annotations

import html
import json
import threading
from urllib.parse import parse_qs, urlparse

import pytest

import cli
from index.build import build_index
from index.store import load_index
from qa.answer import Answerer
from qa.export import permalink, to_html, to_markdown
from tests.conftest import FakeEncoder
from tests.test_answer import coverage_model
from tests.test_app import Tree, assert_direction_auto
from tests.test_cli import run
from tests.test_filters import RECORDS, write
from ui.chat_tab import export_file
from ui.conversations import ConversationError, Conversations
from ui.live import LiveIndex, ask
from ui.render import open_permalink

Q1 = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي سنة 2014؟"
Q2 = "حريق كبير في غابة جبلية بولاية جندوبة"


@pytest.fixture
def live(tmp_path):
    corpus = write(tmp_path / "corpus", RECORDS)
    build_index([corpus], tmp_path / "ix", FakeEncoder())

    def answerer(index, encoder):
        return Answerer(index, encoder, abstain_model=coverage_model(0.3), strict=True)

    return LiveIndex(tmp_path / "ix", [corpus], FakeEncoder(), answerer)


def test_a_conversation_comes_back_whole_after_a_restart(live, tmp_path):
    store = Conversations(tmp_path / "c.sqlite3")
    cid = store.create(Q1)
    turns = ask(live, Q1, [])
    store.append(cid, turns[-1])
    turns = ask(live, Q2, turns)
    store.append(cid, turns[-1])
    other = store.create("   سؤال آخر\n عن شيء " + "x" * 100)

    again = Conversations(tmp_path / "c.sqlite3")  # a restarted server opens the same file
    assert [c.id for c in again.list()] == [other, cid]
    assert again.list()[1].title == Q1[:59] + "…" and again.list()[1].turns == 2
    assert again.list()[0].title.endswith("…") and len(again.list()[0].title) == 60
    back = again.turns(cid)
    assert [t.answer.to_json() for t in back] == [t.answer.to_json() for t in turns]
    for t in back:  # each message with its own citations, checkable against its own articles
        for c in t.answer.citations:
            assert t.articles[c.article_id].text[c.start : c.end] == c.text
    assert back[1].answer.citations[0].copies  # the wire copy listed with its citation


def test_rename_delete_and_a_vanished_conversation(live, tmp_path):
    store = Conversations(tmp_path / "c.sqlite3")
    cid = store.create(Q1)
    store.rename(cid, "  مهرجان قرطاج  ")
    assert store.title(cid) == "مهرجان قرطاج"
    store.append(cid, ask(live, Q1, [])[-1])
    store.delete(cid)
    assert store.list() == [] and not store.exists(cid) and store.turns(cid) == []
    with pytest.raises(ConversationError, match="no longer exists"):
        store.append(cid, ask(live, Q1, [])[-1])
    with pytest.raises(ConversationError):
        store.rename(cid, "x")


def test_turns_appended_from_many_threads_are_all_kept_in_order(live, tmp_path):
    store = Conversations(tmp_path / "c.sqlite3")
    cids = [store.create(f"c{i}") for i in range(4)]
    turn = ask(live, Q2, [])[-1]
    errors = []

    def work(cid):
        try:
            for _ in range(5):
                store.append(cid, turn)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in cids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and all(len(store.turns(c)) == 5 for c in cids)


# --- each login its own conversations ---------------------------------------------------------


def test_with_logins_each_user_sees_and_changes_only_their_own_conversations(live, tmp_path):
    store = Conversations(tmp_path / "c.sqlite3")
    turn = ask(live, Q1, [])[-1]
    mona = store.create("منى", user="mona")
    store.append(mona, turn, user="mona")
    sami = store.create("سامي", user="sami")
    assert [c.id for c in store.list("mona")] == [mona]
    assert [c.id for c in store.list("sami")] == [sami]
    assert {c.id for c in store.list()} == {mona, sami}  # no login: every conversation
    # to sami, mona's conversation is one that does not exist: opened, renamed, continued,
    # exported or deleted, nothing of it shows and nothing changes
    assert not store.exists(mona, "sami") and store.turns(mona, "sami") == []
    for change in (
        lambda: store.rename(mona, "mine now", "sami"),
        lambda: store.append(mona, turn, "sami"),
        lambda: store.title(mona, "sami"),
    ):
        with pytest.raises(ConversationError, match="no longer exists"):
            change()
    store.delete(mona, "sami")
    with pytest.raises(Exception, match="nothing to export"):
        export_file(store, mona, store.turns(mona, "sami"), "all", "markdown", "sami")
    assert store.title(mona, "mona") == "منى" and len(store.turns(mona, "mona")) == 1
    store.delete(mona, "mona")
    assert store.list("mona") == [] and store.exists(sami, "sami")


def test_conversations_from_before_logins_stay_readable_by_every_user(live, tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)  # the schema before logins: no owner column
    db.executescript(
        "create table conversations (id text primary key, title text not null, "
        "created real not null, updated real not null);"
        "create table messages (conversation text not null references conversations(id) "
        "on delete cascade, position integer not null, answer text not null, "
        "articles text not null, primary key (conversation, position));"
        "insert into conversations values ('old1', 'before logins', 1.0, 1.0);"
    )
    db.commit()
    db.close()
    store = Conversations(path)
    store.append("old1", ask(live, Q1, [])[-1])  # written as a server without logins would
    mona = store.create("mine", user="mona")
    assert [c.id for c in store.list("sami")] == ["old1"]
    assert {c.id for c in store.list("mona")} == {"old1", mona}
    assert len(store.turns("old1", "sami")) == len(store.turns("old1", "mona")) == 1
    text = open(export_file(store, "old1", store.turns("old1", "sami"), "all", "markdown",
                            "sami"), encoding="utf-8").read()  # fmt: skip
    assert text.startswith("# before logins") and Q1 in text


# --- exports ---------------------------------------------------------------------------------


def test_markdown_and_html_exports_keep_spans_titles_dates_sources_urls(live):
    turns = ask(live, Q1, [])
    turns = ask(live, Q2, turns)
    answers = [t.answer for t in turns]
    md = to_markdown(answers, "قرطاج <والحرائق>", "http://127.0.0.1:7860/")
    page = to_html(answers, "قرطاج <والحرائق>", "http://127.0.0.1:7860/")
    for a in answers:
        assert f"## {a.question}" in md
        for c in a.citations:
            for line in c.text.split("\n"):  # a short answer is marked **so** in its quote
                assert f"> {line}".rstrip() in md.replace("**", "")
            assert c.title in md and c.title in Tree(page).text_in("b")
            link = permalink("http://127.0.0.1:7860/", c.article_id, c.start, c.end)
            assert f"({link})" in md and f'href="{link.replace("&", "&amp;")}"' in page
            for value in (c.published[:10], c.source):
                assert value in md and value in page
            if c.url:
                assert f"<{c.url}>" in md and f'href="{c.url}"' in page
            assert c.text in Tree(page).text_in("blockquote")
        if a.short_answer:
            assert f"<mark>{html.escape(a.short_answer.text)}</mark>" in page
    first = answers[0].citations[0]
    assert (first.article_id, first.published) == ("d2014", "2014-03-31")
    assert "https://example.org/d2014" in md
    assert "also reported by" in md and "also reported by" in page  # the wire copy
    assert "<والحرائق>" not in page and "&lt;والحرائق&gt;" in page
    assert_direction_auto(page.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0])


def test_ask_prints_markdown_with_permalinks(live, monkeypatch):
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    monkeypatch.setattr("qa.answer.load_abstain_model", lambda: coverage_model(0.3))
    monkeypatch.setenv("ISNAD_URL", "https://desk.example/isnad/")
    out = run("ask", Q1, "--index", str(live.index_dir), "--format", "markdown")
    assert out.exit_code == 0, out.stderr
    assert out.stdout.startswith("# isnad\n\n## " + Q1)
    assert "https://desk.example/isnad/?article=d2014&start=" in out.stdout
    both = run("ask", Q1, "--index", str(live.index_dir), "--json", "--format", "markdown")
    assert both.exit_code == 1 and "give one" in both.stderr


def test_the_ui_exports_a_conversation_or_one_answer(live, tmp_path):
    store = Conversations(tmp_path / "c.sqlite3")
    cid = store.create("قرطاج")
    turns = ask(live, Q1, [])
    turns = ask(live, Q2, turns)
    path = export_file(store, cid, turns, "all", "markdown")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("# قرطاج") and Q1 in text and Q2 in text
    one = open(export_file(store, cid, turns, "1", "html"), encoding="utf-8").read()
    assert Q2 in one and Q1 not in one and one.startswith("<!doctype html>")
    with pytest.raises(Exception, match="nothing to export"):
        export_file(store, cid, [], "all", "markdown")


# --- permalinks ------------------------------------------------------------------------------


def test_a_permalink_opens_the_span_and_a_stale_one_says_so(live):
    index = load_index(live.index_dir)
    articles = {a.id: a for a in index.articles}
    c = ask(live, Q1, [])[-1].answer.citations[0]
    query = {
        k: v[0]
        for k, v in parse_qs(urlparse(permalink("", c.article_id, c.start, c.end)).query).items()
    }
    view = open_permalink(articles, query)
    assert Tree(view).text_in("mark") == c.text
    assert open_permalink(articles, {}) is None
    for query, why in [
        ({"article": "gone", "start": "0", "end": "5"}, "«gone» is not in the index"),
        ({"article": "d2014", "start": "x", "end": "5"}, "not numbers"),
        ({"article": "d2014", "start": "5", "end": "99999"}, "outside"),
        ({"article": "d2014", "start": "9", "end": "3"}, "outside"),
    ]:
        note = open_permalink(articles, query)
        assert "This link opens nothing" in note and why in note and "<mark" not in note


def test_every_citation_in_the_chat_carries_its_permalink(live):
    from ui.render import render_answer

    turn = ask(live, Q1, [])[-1]
    markup = render_answer(turn)
    for c in turn.answer.citations:
        href = permalink("", c.article_id, c.start, c.end).replace("&", "&amp;")
        assert f'href="{href}"' in markup
    assert json.loads(json.dumps(turn.answer.to_json()))  # still plain JSON
