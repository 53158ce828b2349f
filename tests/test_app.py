"""The web UI (ui/ and app.py): rendering, highlighting, escaping, uploads, the index swap, threads.

Everything runs against the real qa.Answerer over tiny indexes built with the fake encoder;
one test drives the launched app through gradio_client.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import socket
import threading
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

import app
import ui.live as ui_live
import ui.uploads as ui_uploads
from index.articles import Article
from index.build import build_index
from index.store import load_index, read_manifest
from qa.answer import Answer, Answerer, Citation, Copy, Passage, QuestionError
from tests.conftest import fixed_model
from ui.chat_tab import filter_options
from ui.live import LiveIndex, ask
from ui.render import (
    ABSTAIN_LABEL,
    ALSO_REPORTED,
    Turn,
    chat_messages,
    open_source,
    render_answer,
    render_article,
    render_empty_view,
    render_question,
    render_status,
    source_choices,
)
from ui.uploads import MAX_UPLOAD_BYTES, UploadError, add_files, safe_filename, save_upload

ARTICLES = {
    "ar.txt": (
        "اجتماعُ وزراءِ الزراعةِ العرب\n\n"
        "عَقَدَ وزراءُ الزراعةِ العربُ اجتماعَهم السنويَّ في مدينة سوسة يومَ الخميس. "
        "ناقش المجتمعون أزمةَ المياه 💧 وتأثيرَها على محاصيل القمح.\n"
        "وقال الوزير إن إنتاج الزيتون ارتفع بنسبة 12% هذا العام 🫒.\n"
    ),
    "en.txt": (
        "Harbour reopens after storm\n\n"
        "The port of Sfax reopened on Monday after a three-day storm closed it. "
        "Officials said forty cargo ships were waiting to enter the harbour.\n"
    ),
    "xss.txt": (
        "<script>alert(1)</script> council news\n\n"
        "The town council met on Friday <img src=x onerror=alert(1)> & voted on the budget "
        "for the new library.\n"
    ),
}
NEW_ARTICLE = (
    "مهرجان قرطاج للسينما\n\n"
    "افتتحت الدورة الجديدة لمهرجان قرطاج السينمائي بعرض فيلم عن الصيادين في جزيرة قرقنة.\n"
)
NEW_QUESTION = "افتتحت الدورة الجديدة لمهرجان قرطاج السينمائي بعرض أي فيلم؟"
QUESTIONS = [
    "ناقش المجتمعون أزمة المياه وتأثيرها على محاصيل القمح",
    "بكم ارتفع إنتاج الزيتون هذا العام؟",
    "When did the port of Sfax reopen after the storm?",
    "How many cargo ships were waiting to enter the harbour?",
    "What did the town council vote on?",
    "أين عقد وزراء الزراعة العرب اجتماعهم السنوي؟",
    "Officials said forty cargo ships were waiting",
    "The town council met on Friday",
]


def write_corpus(root: Path, articles: dict[str, str] = ARTICLES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in articles.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def make_live(tmp_path, encoder, threshold: float = 0.0) -> LiveIndex:
    corpus = write_corpus(tmp_path / "corpus")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    build_index([corpus, uploads], tmp_path / "ix", encoder)
    answerer = functools.partial(Answerer, abstain_model=fixed_model(threshold), strict=True)
    return LiveIndex(tmp_path / "ix", [corpus, uploads], encoder, answerer)


@pytest.fixture
def live(tmp_path, fake_encoder) -> LiveIndex:
    """Over the three ARTICLES, answering whenever there is something to cite."""
    return make_live(tmp_path, fake_encoder)


# --- reading rendered HTML -----------------------------------------------------------------


class Tree(HTMLParser):
    """Each text node with the elements open around it, and every tag seen."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.texts: list[tuple[str, list[tuple[str, dict]]]] = []
        self.tags: list[tuple[str, dict]] = []
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag != "br":
            self.stack.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        self.texts.append((data, list(self.stack)))

    def text_in(self, tag: str) -> str:
        return "".join(t for t, stack in self.texts if any(s[0] == tag for s in stack))


def assert_direction_auto(markup: str) -> None:
    """Every text takes its direction from its nearest dir="auto" element; a fixed direction
    is only a container's (a bubble laid out the way what it quotes reads)."""
    tree = Tree(markup)
    for text, stack in tree.texts:
        if text.strip():
            nearest = next((a["dir"] for _, a in reversed(stack) if "dir" in a), None)
            assert nearest == "auto", f"no dir=auto around {text!r}"
    fixed = [tag for tag, a in tree.tags if a.get("dir", "auto") != "auto"]
    assert set(fixed) <= {"div", "ol"}, fixed
    blocks = [a for tag, a in tree.tags if tag in {"p", "li", "blockquote", "h3", "td"}]
    assert all(a.get("dir") == "auto" for a in blocks)


def an_answer(index, article_id: str, spans: list[tuple[int, int]], abstained=False) -> Answer:
    article = index.articles[index.article_row[article_id]]
    cits = tuple(
        Citation(n, article.id, article.title, s, e, article.text[s:e], "2025-07-01", "وكالة", None)
        for n, (s, e) in enumerate(spans, start=1)
    )
    passages = tuple(Passage(article.id, s, e, 0.5) for s, e in spans)
    text = "لا تذكر المقالات ذلك." if abstained else " ".join(f"جملة [{c.n}]" for c in cits)
    return Answer("سؤال؟", abstained, text, () if abstained else cits, passages)


# --- rendering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "وَقَالَ الْمُتَحَدِّثُ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً 🎉⚽ عائلة 👨‍👩‍👧 <b>&amp;</b>\n\nسطر",
        "Plain English, with <tags> & \"quotes\" and 'apostrophes'.\nSecond line.",
    ],
)
def test_mark_holds_exactly_the_cited_span_and_the_text_is_unchanged(text):
    article = Article("a.txt", "عنوان", text, {"published": "2025-07-01T10:00:00+01:00"})
    for start, end in [(0, 5), (3, len(text) - 2), (len(text) - 1, len(text)), (7, 7)]:
        tree = Tree(render_article(article, start, end))
        assert tree.text_in("mark") == text[start:end]
        body = "".join(
            t
            for t, s in tree.texts
            if any("isnad-article-body" in a.get("class", "") for _, a in s)
        )
        assert body == text


def test_article_view_highlights_the_citation_of_a_real_answer(live):
    index, answerer = live.snapshot()
    turns = ask(live, QUESTIONS[0], [])
    cit = turns[-1].answer.citations[0]
    assert cit.article_id == "ar.txt"
    article = index.articles[index.article_row["ar.txt"]]
    tree = Tree(open_source(turns, f"c{cit.n}"))
    assert tree.text_in("mark") == cit.text == article.text[cit.start : cit.end]


def test_titles_texts_and_questions_are_escaped(live):
    index, _ = live.snapshot()
    xss = index.articles[index.article_row["xss.txt"]]
    start = xss.text.index("<img")
    answer = an_answer(index, "xss.txt", [(0, 30), (start, start + 30)])
    turn = Turn(answer, {"xss.txt": xss})
    pages = [
        render_article(xss, start, start + 30),
        render_answer(turn),
        render_answer(Turn(an_answer(index, "xss.txt", [(0, 40)], True), {"xss.txt": xss})),
        render_question("<script>alert('q')</script> ما هذا؟"),
    ]
    for page in pages:
        tags = {tag for tag, _ in Tree(page).tags}
        assert not tags & {"script", "img"}, page
        assert "onerror=" not in page.replace("onerror=alert", "")  # only as escaped text
        assert "&lt;script&gt;" in page or "&lt;img" in page
    assert "<img src=x onerror=alert(1)>" in Tree(pages[0]).text_in("mark")


def test_every_text_element_has_dir_auto(live):
    index, _ = live.snapshot()
    ar = index.articles[index.article_row["ar.txt"]]
    turn = Turn(an_answer(index, "ar.txt", [(0, 20), (30, 60)]), {"ar.txt": ar})
    abstained = Turn(an_answer(index, "ar.txt", [(30, 60)], True), {"ar.txt": ar})
    for markup in [
        render_answer(turn),
        render_answer(abstained),
        render_question("What is هذا؟"),
        render_article(ar, 30, 60, note="note"),
        render_status(live.index_dir),
        render_empty_view(),
    ]:
        assert_direction_auto(markup)
    assert "\n" not in render_answer(turn)  # a blank line would end the HTML in Markdown
    assert '<div class="isnad-answer" dir="rtl">' in render_answer(turn)  # it quotes Arabic


def test_wire_copies_show_as_also_reported_by_with_date_source_and_link(live):
    index, _ = live.snapshot()
    ar = index.articles[index.article_row["ar.txt"]]
    answer = an_answer(index, "ar.txt", [(0, 20)])
    copy = Copy("b<1>", "نسخة <b>ثانية</b>", "وكالة", "2016-07-11", "https://example.org/b")
    answer = Answer(
        answer.question,
        False,
        answer.text,
        (replace(answer.citations[0], copies=(copy,)),),
        answer.passages,
    )
    markup = render_answer(Turn(answer, {"ar.txt": ar}))
    assert_direction_auto(markup)
    tree = Tree(markup)
    assert ALSO_REPORTED in tree.text_in("div")
    assert "نسخة <b>ثانية</b>" in tree.text_in("li")  # escaped, shown as text
    assert "2016-07-11 · وكالة" in tree.text_in("li")
    assert 'href="https://example.org/b"' in markup


def test_filter_controls_are_filled_from_the_index(tmp_path, fake_encoder):
    from tests.test_filters import RECORDS, write

    corpus = write(tmp_path / "c", RECORDS)
    build_index([corpus], tmp_path / "ix", fake_encoder)
    live = LiveIndex(tmp_path / "ix", [corpus], fake_encoder)
    sources, categories, first, last = filter_options(live)
    assert sources == ["Jawhara FM", "Mosaique FM", "وكالة تونس إفريقيا للأنباء"]
    assert categories == ["culture", "localNews", "sport"]
    assert (first, last) == ("2014-03-31", "2017-03-17")
    empty = LiveIndex(tmp_path / "none", [corpus], fake_encoder)
    assert filter_options(empty) == ([], [], "", "")


def test_answer_lists_numbered_sources_and_abstention_looks_different(live):
    index, _ = live.snapshot()
    ar = index.articles[index.article_row["ar.txt"]]
    answer = an_answer(index, "ar.txt", [(0, 20), (31, 60)])
    page = Tree(render_answer(Turn(answer, {"ar.txt": ar})))
    quotes = [t for t, s in page.texts if any(tag == "blockquote" for tag, _ in s)]
    assert quotes == [ar.text[0:20], ar.text[31:60]]
    labels = page.text_in("li")
    assert "[1]" in labels and "[2]" in labels
    # the quotes are the answer: each cited sentence is shown once, not again above them
    markup = render_answer(Turn(answer, {"ar.txt": ar}))
    assert markup.count(html.escape(ar.text[31:60])) == 1
    assert ABSTAIN_LABEL not in markup
    assert source_choices([Turn(answer, {})]) == [
        (f"س1 · Q1 [1] {ar.title}", "t0:c1"),
        (f"س1 · Q1 [2] {ar.title}", "t0:c2"),
    ]

    refused = Turn(an_answer(index, "ar.txt", [(31, 60)], abstained=True), {"ar.txt": ar})
    markup = render_answer(refused)
    assert "isnad-abstain" in markup and ABSTAIN_LABEL in markup
    assert ar.text[31:60] in Tree(markup).text_in("blockquote")
    # every answer's sources, the latest first
    assert source_choices([Turn(answer, {}), refused]) == [
        (f"س2 · Q2 ≈1 {ar.title}", "t1:p1"),
        (f"س1 · Q1 [1] {ar.title}", "t0:c1"),
        (f"س1 · Q1 [2] {ar.title}", "t0:c2"),
    ]
    assert Tree(open_source([refused], "t0:p1")).text_in("mark") == ar.text[31:60]
    both = [Turn(answer, {"ar.txt": ar}), refused]
    assert Tree(open_source(both, "t0:c2")).text_in("mark") == ar.text[31:60]
    assert Tree(open_source(both, "t0:c1")).text_in("mark") == ar.text[0:20]


def test_a_real_abstention_shows_its_label_and_the_closest_passages(tmp_path, fake_encoder):
    live = make_live(tmp_path, fake_encoder, threshold=1.1)
    turns = ask(live, "ما هي عاصمة منغوليا وكم عدد سكانها؟", [])
    answer = turns[-1].answer
    assert answer.abstained and not answer.citations and answer.passages
    markup = render_answer(turns[-1])
    assert "isnad-abstain" in markup and ABSTAIN_LABEL in markup
    assert_direction_auto(markup)
    choices = source_choices(turns)
    assert [v for _, v in choices] == ["t0:p1", "t0:p2", "t0:p3"][: len(answer.passages)]
    assert markup.count('class="isnad-source"') == len(choices)
    p = answer.passages[0]
    article = turns[-1].articles[p.article_id]
    assert Tree(open_source(turns, "p1")).text_in("mark") == article.text[p.start : p.end]


def test_follow_up_questions_pass_earlier_turns_as_history(live, monkeypatch):
    from qa.answer import Answerer

    seen = []
    real_ask = Answerer.ask
    monkeypatch.setattr(
        Answerer,
        "ask",
        lambda self, q, h=(), f=None, **kw: seen.append(list(h)) or real_ask(self, q, h, f, **kw),
    )
    turns = ask(live, QUESTIONS[2], [])
    turns = ask(live, "And how many ships were waiting?", turns)
    assert seen == [[], [(QUESTIONS[2], turns[0].answer.text)]]
    messages = chat_messages(turns)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    with pytest.raises(QuestionError):
        ask(live, "   ", turns)


# --- uploads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, safe",
    [
        ("../../x.txt", "x.txt"),
        ("..\\..\\evil.md", "evil.md"),
        ("/etc/passwd.txt", "passwd.txt"),
        (".hidden.txt", "hidden.txt"),
        ("a/b/../news.JSONL", "news.jsonl"),
        ("تقرير يوم\u202e الخميس.txt", "تقرير يوم الخميس.txt"),
        ("nul\x00byte;rm -rf.txt", "nulbyte_rm -rf.txt"),
        ("....txt", "upload.txt"),
    ],
)
def test_upload_names_cannot_leave_the_upload_folder(name, safe, tmp_path):
    assert safe_filename(name) == safe
    src = tmp_path / "src.txt"
    src.write_text("عنوان\n\nنص", encoding="utf-8")
    dest, new = save_upload(src, name, tmp_path / "up")
    assert new and dest.parent == tmp_path / "up" and dest.name == safe


@pytest.mark.parametrize("name", ["x.exe", "x.pdf", "..", "", "noext", "x.txt.sh"])
def test_other_file_types_are_refused(name):
    with pytest.raises(UploadError, match="upload .txt, .md, .jsonl, .html"):
        safe_filename(name)


def test_existing_names_are_never_overwritten(tmp_path):
    up = tmp_path / "up"
    first, second = tmp_path / "1.txt", tmp_path / "2.txt"
    first.write_text("أ\n\nنص أول", encoding="utf-8")
    second.write_text("ب\n\nنص ثان", encoding="utf-8")
    assert save_upload(first, "x.txt", up) == (up / "x.txt", True)
    assert save_upload(first, "x.txt", up) == (up / "x.txt", False)  # same bytes: reused
    assert save_upload(second, "x.txt", up) == (up / "x-2.txt", True)
    assert save_upload(second, "y.txt", up, taken={"y.txt"}) == (up / "y-2.txt", True)
    assert (up / "x.txt").read_text(encoding="utf-8") == "أ\n\nنص أول"
    assert sorted(p.name for p in up.iterdir()) == ["x-2.txt", "x.txt", "y-2.txt"]


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    d = tmp_path / "incoming"
    d.mkdir()
    (d / "bad.jsonl").write_text(
        '{"id": "1", "title": "جيد", "text": "نص جيد"}\n{"id": "2", "text": "مكسور\n',
        encoding="utf-8",
    )
    (d / "latin1.txt").write_bytes("Café crème\n\nDéjà vu".encode("latin-1"))
    (d / "big.txt").write_bytes(b"")
    with open(d / "big.txt", "r+b") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no 20 MB written
    (d / "empty.md").write_text("  \n", encoding="utf-8")
    (d / "dup.txt").write_text(ARTICLES["en.txt"], encoding="utf-8")
    (d / "clash.jsonl").write_text('{"id": "ar.txt", "text": "نص آخر مختلف"}\n', encoding="utf-8")
    (d / "evil.exe").write_bytes(b"MZ")
    return {
        "bad.jsonl": "bad.jsonl:2: not valid JSON",
        "latin1.txt": "not valid UTF-8",
        "big.txt": "over the 20 MB limit",
        "empty.md": "empty",
        "dup.txt": "already in the index as 'en.txt'",
        "clash.jsonl": "id 'ar.txt' is already used",
        "evil.exe": "not accepted",
    }


def test_bad_uploads_get_a_clear_message_and_change_nothing(live, tmp_path):
    expected = bad_files(tmp_path)
    good = tmp_path / "incoming" / "good.txt"
    good.write_text(NEW_ARTICLE, encoding="utf-8")
    upload_dir = live.sources[-1]
    manifest = read_manifest(live.index_dir)
    for name, message in expected.items():
        files = [(good, "good.txt"), (tmp_path / "incoming" / name, name)]
        with pytest.raises(UploadError, match=re.escape(message)):
            add_files(live, upload_dir, files)
        assert list(upload_dir.iterdir()) == []
        assert read_manifest(live.index_dir) == manifest
    with pytest.raises(UploadError, match="choose"):
        add_files(live, upload_dir, [])


def test_upload_is_indexed_with_progress(live, tmp_path):
    src = tmp_path / "carthage.txt"
    src.write_text(NEW_ARTICLE, encoding="utf-8")
    calls = []
    message = add_files(
        live, live.sources[-1], [(src, "../carthage.txt")], lambda d, t: calls.append((d, t))
    )
    assert "carthage.txt: 1 article;" in message or "carthage.txt: 1 article." in message
    assert "Index: 4 articles" in message
    assert calls and calls[-1][0] == calls[-1][1] > 0
    assert (live.sources[-1] / "carthage.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    assert "carthage.txt" in live.snapshot()[0].article_row
    again = add_files(live, live.sources[-1], [(src, "carthage.txt")])
    assert again.startswith("carthage.txt: already uploaded. Index: 4 articles, 4 chunks (0 texts")
    status = render_status(live.index_dir)
    assert '<td dir="auto">4</td>' in status
    assert '<td dir="auto">2 (0 replaced or removed' in status  # the upload: a segment of its own

    other = tmp_path / "other.txt"  # named like an article of the corpus folder: renamed
    other.write_text("Another harbour\n\nThe port of Gabes stayed closed.\n", encoding="utf-8")
    message = add_files(live, live.sources[-1], [(other, "en.txt")])
    assert "en-2.txt: 1 article (another en.txt exists)" in message
    assert "en-2.txt" in live.snapshot()[0].article_row


def test_an_upload_reads_only_its_own_file_and_indexes_as_a_rebuild_would(
    live, tmp_path, monkeypatch, fake_encoder
):
    """An upload adds its articles by id (index.update): no source is read again and nothing
    rebuilt, which on a 10k-article index took seconds; a later rebuild finds nothing to do."""
    src = tmp_path / "carthage.txt"
    src.write_text(NEW_ARTICLE, encoding="utf-8")

    def no_rebuild(*args, **kwargs):
        raise AssertionError("an upload rebuilt the index")

    read, load = [], ui_uploads.load_articles

    def spy(paths, *args, **kwargs):
        read.extend(Path(p) for p in paths)
        return load(paths, *args, **kwargs)

    monkeypatch.setattr(ui_live, "build_index", no_rebuild)
    monkeypatch.setattr(ui_uploads, "load_articles", spy)
    add_files(live, live.sources[-1], [(src, "carthage.txt")])
    assert read == [src]  # duplicates were checked against the index, not the sources
    assert "carthage.txt" in live.snapshot()[0].article_row
    monkeypatch.undo()
    fresh = build_index(live.sources, tmp_path / "fresh", fake_encoder)
    counts = [read_manifest(d)["counts"] for d in (live.index_dir, tmp_path / "fresh")]
    assert [{k: v for k, v in c.items() if k != "segments"} for c in counts] == [
        {k: v for k, v in counts[1].items() if k != "segments"}
    ] * 2
    assert counts[0]["segments"] == 2  # the upload's own segment, beside the first
    again = live.rebuild()
    assert (again.added, again.changed, again.removed, again.texts_embedded) == ([], [], [], 0)
    assert again.articles == fresh.articles
    # the uploads folder is a source already: the manifest does not list the file again, so a
    # server restarted on the manifest's sources rebuilds without "duplicate id" complaints
    sources = read_manifest(live.index_dir)["sources"]
    assert sources == [str(s.resolve()) for s in live.sources]
    restarted = LiveIndex(live.index_dir, [Path(s) for s in sources], fake_encoder)
    assert restarted.rebuild().skipped == []


def test_uploading_again_indexes_a_file_whose_indexing_failed(live, tmp_path):
    src = tmp_path / "carthage.txt"
    src.write_text(NEW_ARTICLE, encoding="utf-8")
    shutil.copy(src, live.sources[-1] / "carthage.txt")  # saved, then the indexing failed
    assert "carthage.txt" not in live.snapshot()[0].article_row
    message = add_files(live, live.sources[-1], [(src, "carthage.txt")])
    assert message.startswith("carthage.txt: already uploaded. Index: 4 articles")
    assert "carthage.txt" in live.snapshot()[0].article_row


def test_the_first_upload_builds_the_index(tmp_path, fake_encoder):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    live = LiveIndex(tmp_path / "ix", [uploads], fake_encoder)
    src = tmp_path / "carthage.txt"
    src.write_text(NEW_ARTICLE, encoding="utf-8")
    assert "Index: 1 article" in add_files(live, uploads, [(src, "carthage.txt")])
    assert list(live.snapshot()[0].article_row) == ["carthage.txt"]
    # uploaded before, and the index removed since: the same upload builds it again
    shutil.rmtree(tmp_path / "ix")
    live = LiveIndex(tmp_path / "ix", [uploads], fake_encoder)
    again = add_files(live, uploads, [(src, "carthage.txt")])
    assert again.startswith("carthage.txt: already uploaded. Index: 1 article, 1 chunk (")
    assert list(live.snapshot()[0].article_row) == ["carthage.txt"]


def test_two_uploads_that_repeat_each_other_are_refused_together(live, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "n1", "text": "خبر أول عن الطقس"}\n', encoding="utf-8")
    b.write_text('{"id": "n1", "text": "خبر ثان عن المطر"}\n', encoding="utf-8")
    with pytest.raises(UploadError, match="b.jsonl: id 'n1' is already used"):
        add_files(live, live.sources[-1], [(a, "a.jsonl"), (b, "b.jsonl")])
    assert list(live.sources[-1].iterdir()) == []


def test_main_builds_a_missing_index_then_serves_on_localhost(tmp_path, fake_encoder, monkeypatch):
    import index.encoder

    served = []
    monkeypatch.setattr(index.encoder, "configure_threads", lambda: 1)
    monkeypatch.setattr(index.encoder, "load_light_encoder", lambda model=None: fake_encoder)
    monkeypatch.setattr(app, "launch", lambda demo, **kw: served.append((demo, kw)))
    monkeypatch.setenv("ISNAD_UPLOADS", str(tmp_path / "up"))
    corpus = write_corpus(tmp_path / "corpus")
    app.main(index_dir=tmp_path / "ix", sources=[corpus])
    assert read_manifest(tmp_path / "ix")["counts"]["articles"] == len(ARTICLES)
    assert served[0][1] == {"host": "127.0.0.1", "port": 7860, "auth": None}
    assert (tmp_path / "up").is_dir()
    app.main(index_dir=tmp_path / "ix")  # sources default to those the index was built from
    assert read_manifest(tmp_path / "ix")["sources"] == [
        str(corpus.resolve()),
        str((tmp_path / "up").resolve()),
    ]


# --- the index swap and threads ------------------------------------------------------------


def test_questions_use_the_old_index_during_a_rebuild_and_the_new_one_after(live, tmp_path):
    (live.sources[-1] / "carthage.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    during = []

    def progress(done, total):  # called by the build after embedding, before it commits
        during.append(ask(live, NEW_QUESTION, [])[-1].answer)

    live.rebuild(progress)
    after = ask(live, NEW_QUESTION, [])[-1].answer
    assert during and all("carthage.txt" not in cited_or_near(a) for a in during)
    assert after.citations[0].article_id == "carthage.txt"


def cited_or_near(answer: Answer) -> set[str]:
    return {c.article_id for c in answer.citations} | {p.article_id for p in answer.passages}


def verify(live: LiveIndex, answer: Answer) -> None:
    articles = {a.id: a for a in load_index(live.index_dir).articles}
    for c in answer.citations:
        assert articles[c.article_id].text[c.start : c.end] == c.text


def test_eight_simultaneous_questions_get_their_own_answers(live):
    serial = {q: ask(live, q, [])[-1].answer for q in QUESTIONS}
    results: dict[str, Answer] = {}
    barrier = threading.Barrier(len(QUESTIONS))

    def worker(q):
        barrier.wait()
        results[q] = ask(live, q, [])[-1].answer

    threads = [threading.Thread(target=worker, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == serial
    for a in results.values():
        assert a.citations
        verify(live, a)


def test_an_upload_during_questions_loses_none_of_them(live, tmp_path):
    src = tmp_path / "carthage.txt"
    src.write_text(NEW_ARTICLE, encoding="utf-8")
    before = {q: ask(live, q, [])[-1].answer for q in QUESTIONS}
    building, done = threading.Event(), threading.Event()
    answers, errors = [], []

    def asker(q):
        while not done.is_set():
            try:
                answers.append((q, ask(live, q, [])[-1].answer, building.is_set()))
            except Exception as exc:  # any failure is a lost question
                errors.append(exc)
                return

    threads = [threading.Thread(target=asker, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    building.set()
    add_files(live, live.sources[-1], [(src, "carthage.txt")])
    building.clear()
    after = {q: ask(live, q, [])[-1].answer for q in QUESTIONS}
    done.set()
    for t in threads:
        t.join(30)
    assert not errors
    assert sum(during for _, _, during in answers) >= len(QUESTIONS)  # asked while it built
    for q, a, _ in answers:
        assert a in (before[q], after[q])
        verify(live, a)
    assert ask(live, NEW_QUESTION, [])[-1].answer.citations[0].article_id == "carthage.txt"


# --- the launched app ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_launched_app_answers_through_its_api(tmp_path, fake_encoder):
    from gradio_client import Client

    corpus = write_corpus(tmp_path / "corpus")
    build_index([corpus], tmp_path / "ix", fake_encoder)
    demo = app.create_app(
        tmp_path / "ix",
        [corpus],
        tmp_path / "up",
        encoder=fake_encoder,
        conversations_db=tmp_path / "conversations.sqlite3",
    )
    port = free_port()
    app.launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(QUESTIONS[2], api_name="/answer")
        result = json.loads(result) if isinstance(result, str) else result
        assert result["question"] == QUESTIONS[2]
        articles = {a.id: a for a in load_index(tmp_path / "ix").articles}
        assert result["citations"] or result["abstained"]
        for c in result["citations"]:
            assert articles[c["article_id"]].text[c["start"] : c["end"]] == c["text"]

        out = client.predict(question=QUESTIONS[2], cid=None, api_name="/ask")
        chat, cleared, sources, view, listed = out[:5]
        texts = [
            m["content"]
            if isinstance(m["content"], str)
            else "".join(p["text"] for p in m["content"])
            for m in chat
        ]  # Gradio 6 sends message content as a list of {"type": "text", "text": ...} parts
        assert html.escape(QUESTIONS[2]) in texts[0] and cleared == ""
        assert "isnad-answer" in texts[1] and "isnad-empty" in view
        # the question started a conversation, kept server-side under its question
        from ui.conversations import Conversations

        (saved,) = Conversations(tmp_path / "conversations.sqlite3").list()
        assert saved.title == QUESTIONS[2] and saved.turns == 1
        status = client.predict(api_name="/status")
        assert "fake-trigram-64" in status
        # conversations through the API: a second one, renamed, reopened, deleted
        cid = saved.id
        client.predict(question=QUESTIONS[0], cid=None, api_name="/ask")
        names = {c.title: c.id for c in Conversations(tmp_path / "conversations.sqlite3").list()}
        assert set(names) == {QUESTIONS[2], QUESTIONS[0]}
        client.predict(cid=names[QUESTIONS[0]], title="  الزراعة  ", api_name="/rename")
        store = Conversations(tmp_path / "conversations.sqlite3")
        assert store.title(names[QUESTIONS[0]]) == "الزراعة"
        opened = client.predict(cid, api_name="/open_conversation")
        assert QUESTIONS[2] in json.dumps(opened[0], ensure_ascii=False)
        client.predict(cid=names[QUESTIONS[0]], api_name="/delete_conversation")
        assert [c.id for c in store.list()] == [cid]
        # filters through the API: a range with no article says so instead of answering
        result = client.predict(QUESTIONS[2], "2030-01-01", "", "", "", api_name="/answer")
        result = json.loads(result) if isinstance(result, str) else result
        assert result["abstained"] and result["passages"] == []
        assert result["answer"] == "No article matches the filters (since 2030-01-01)."
        with pytest.raises(Exception, match="is not a date"):
            client.predict(QUESTIONS[2], "01/02/2030", "", "", "", api_name="/answer")
    finally:
        demo.close()


def test_status_warns_when_abstention_was_fitted_for_another_model(live, tmp_path, fake_encoder):
    # `fixed_model` says it was fitted for "fixed", not for the fake encoder in use
    note = live.note()
    assert note and "fixed" in note and fake_encoder.model_id in note
    html = render_status(live.index_dir, note=note)
    assert "isnad-note" in html and "fitted with" not in html and "calibrated for fixed" in html
    own = fixed_model(0.0, fake_encoder.model_id)
    matched = LiveIndex(
        live.index_dir, live.sources, fake_encoder, functools.partial(Answerer, abstain_model=own)
    )
    assert matched.note() is None
    assert "isnad-note" not in render_status(matched.index_dir, note=matched.note())


def test_status_says_an_index_from_before_sentences_only_embedding_is_re_embedded(live):
    assert "re-embeds every article" not in render_status(live.index_dir)
    manifest_file = live.index_dir / "manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    del manifest["embedded_texts"]
    manifest_file.write_text(json.dumps(manifest), encoding="utf-8")
    assert "the next rebuild re-embeds every article once" in render_status(live.index_dir)
