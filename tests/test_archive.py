"""The archive desk's table (index.listing) and its changes through the live index: listed newest
first, searched the way retrieval reads Arabic, filtered, paged, opened whole, removed by id and
added by URL, with the chat answering from the new index at once."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from datetime import date

import pytest

import cli
import qa.retrieve as qa_retrieve
from index.build import BuildError, build_index
from index.listing import Listing, ListingError, NoSuchArticle
from index.store import StoredArticle, load_index, read_manifest
from qa.answer import Answerer
from tests.conftest import FakeEncoder, fixed_model
from tests.test_cli import run
from tests.test_web import RSS, site  # noqa: F401 (a fixture)
from ui.live import LiveIndex, ask

FIRE = (
    "أعلنت الحماية المدنية اليوم عن إخماد حريق كبير اندلع في غابة جبلية بولاية جندوبة بعد تدخل "
    "عشرات الأعوان وثلاث طائرات، ولم يسجل الحريق أي خسائر بشرية حسب المصدر نفسه.\n\n"
    "وأوضح المتحدث باسم الإدارة الجهوية أن النيران أتت على نحو أربعين هكتارا من أشجار الصنوبر "
    "والفلين، وأن فرق الغابات ستواصل مراقبة المكان خشية تجدد الحريق بسبب الرياح القوية وارتفاع "
    "درجات الحرارة. ودعا المواطنين إلى الحذر وعدم إشعال النار قرب الغابات خلال فصل الصيف."
)
RECORDS = [
    {"id": "farm", "title": "وزراءُ الزراعةِ العربُ يجتمعون في سوسة",
     "text": "عقد وزراء الزراعة العرب اجتماعهم السنوي في مدينة سوسة. وقال الوزير إن إنتاج "
             "الزيتون ارتفع بنسبة 12% هذا العام 🫒.",
     "published": "01/03/2016", "source": "Jawhara FM", "category": "economy",
     "url": "https://example.org/farm"},
    {"id": "port", "title": "Harbour reopens after storm 🌊",
     "text": "The port of Sfax reopened on Monday after a three-day storm closed it. Officials "
             "said forty cargo ships were waiting to enter the harbour.",
     "published": "2017-01-22T18:56:00+01:00", "source": "Mosaique FM", "category": "localNews"},
    {"id": "fire-1", "title": "إخماد حريق في غابة بجندوبة", "text": FIRE,
     "published": "2016-07-10T09:00:00+01:00", "source": "Jawhara FM", "category": "localNews"},
    {"id": "fire-2", "title": "حريق غابة جندوبة", "text": FIRE.replace("اليوم", "مساء الأحد"),
     "published": "2016-07-10T21:00:00+01:00", "source": "وكالة تونس إفريقيا للأنباء",
     "category": "localNews"},
    {"id": "fest", "title": "مهرجان قرطاج يفتتح دورته",
     "text": "افتتحت الدورة الجديدة بعرض فيلم عن الصيادين في جزيرة قرقنة.",
     "published": "2016-07-10", "source": "Jawhara FM", "category": "culture"},
    {"id": "derby", "title": "الترجي يفوز بالدربي",
     "text": "فاز الترجي الرياضي على الملعب التونسي بثلاثة أهداف في رادس.", "category": "sport"},
]  # fmt: skip
NEWEST_FIRST = ["port", "fire-2", "fire-1", "fest", "farm", "derby"]


def write_records(folder, records=RECORDS, name="news.jsonl"):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def built(tmp_path, fake_encoder):
    corpus = write_records(tmp_path / "corpus")
    build_index([corpus], tmp_path / "ix", fake_encoder)
    return tmp_path / "ix", corpus


@pytest.fixture
def listing(built):
    return Listing(load_index(built[0]))


def make_live(built, answerer=None) -> LiveIndex:
    ix, corpus = built
    answerer = answerer or functools.partial(Answerer, abstain_model=fixed_model(0.0), strict=True)
    return LiveIndex(ix, [corpus], FakeEncoder(), answerer)


def ids(page) -> list[str]:
    return [r.id for r in page.rows]


# --- the table ----------------------------------------------------------------------------


def test_the_table_lists_every_article_newest_first_with_its_counts(listing):
    page = listing.page()
    assert page.total == 6 and ids(page) == NEWEST_FIRST  # same day: by time; undated last
    index = listing.index
    for row in page.rows:
        r = index.article_row[row.id]
        assert row.chunks == int((index.chunk_article == r).sum()) >= 1
    rows = {r.id: r for r in page.rows}
    assert rows["fire-1"].copies == rows["fire-2"].copies == 1  # wire copies of each other
    assert rows["farm"].copies == 0
    assert rows["farm"].to_json() == {
        "id": "farm",
        "title": "وزراءُ الزراعةِ العربُ يجتمعون في سوسة",
        "published": "2016-03-01",
        "source": "Jawhara FM",
        "category": "economy",
        "url": "https://example.org/farm",
        "chunks": rows["farm"].chunks,
        "copies": 0,
    }
    assert rows["derby"].published is None and rows["derby"].source == ""


def test_pages_split_the_order_and_a_page_past_the_end_is_empty(listing):
    assert ids(listing.page(limit=2)) == NEWEST_FIRST[:2]
    assert ids(listing.page(limit=2, offset=2)) == NEWEST_FIRST[2:4]
    past = listing.page(limit=10, offset=50)
    assert past.total == 6 and past.rows == ()
    assert past.to_json() == {"total": 6, "articles": []}
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "5"}):
        with pytest.raises(ListingError, match="must be"):
            listing.page(**bad)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("الزيتون", ["farm"]),  # a word of the text only
        ("الزَّيْتُونِ", ["farm"]),  # diacritics as retrieval ignores them
        ("الإنتاج", ["farm"]),  # alef forms unified, «ال» stemmed off: the text says «إنتاج»
        ("اجتماع", ["farm"]),  # stemmed: the text says «اجتماعهم»
        ("وزراء", ["farm"]),
        ("مهرجان", ["fest"]),  # a word of the title only
        ("حريق جندوبة", ["fire-2", "fire-1"]),  # every word, title or text
        ("حريق قرطاج", []),  # no article holds both
        ("HARBOUR ships", ["port"]),  # English, any case, stemmed
        ("2016", []),  # a year is a word of the text, not a date filter
        ("12", ["farm"]),
        ("الأُولمبياد", []),  # a word no article has
    ],
)
def test_a_search_finds_the_articles_holding_every_word_as_retrieval_reads_them(
    listing, query, expected
):
    page = listing.page(query=query)
    assert ids(page) == expected and page.total == len(expected)


def test_a_search_of_only_common_words_says_so_in_one_line(listing):
    with pytest.raises(ListingError) as e:
        listing.page(query="في من على the")
    assert str(e.value) == (
        "the search 'في من على the' has only common words that every article holds; "
        "search for a name or a topic word"
    )
    with pytest.raises(ListingError, match="has no word in it"):
        listing.page(query=" ؟!… ")
    assert listing.page(query="   ").total == 6  # blank: no search at all


def test_filters_narrow_by_date_source_and_category_and_combine_with_a_search(listing):
    assert ids(listing.page(since=date(2016, 7, 10), until=date(2016, 12, 31))) == [
        "fire-2",
        "fire-1",
        "fest",
    ]
    assert ids(listing.page(until=date(2016, 6, 30))) == ["farm"]  # undated: never in a range
    assert ids(listing.page(sources=["  jawhara   FM "])) == ["fire-1", "fest", "farm"]
    assert ids(listing.page(sources=["Jawhara FM", "Mosaique FM"], categories=["localnews"])) == [
        "port",
        "fire-1",
    ]
    assert ids(listing.page(query="حريق", sources=["Jawhara FM"])) == ["fire-1"]
    assert listing.page(sources=["No Such Radio"]).total == 0
    assert ids(listing.page(categories=["sport"])) == ["derby"]


def test_an_article_opens_whole_with_its_wire_copies(listing):
    view = listing.article("fire-1")
    assert view.text == FIRE and view.row.title == "إخماد حريق في غابة بجندوبة"
    assert [c.id for c in view.wire_copies] == ["fire-2"]
    out = view.to_json()
    assert out["text"] == FIRE and out["copies"] == 1 and out["wire_copies"][0]["id"] == "fire-2"
    with pytest.raises(NoSuchArticle) as e:
        listing.article("nope")
    assert str(e.value) == (
        "no article 'nope' in the index (never added, or removed since); "
        "list them with `isnad articles list`"
    )


def test_listing_and_searching_read_no_article_text(built, monkeypatch):
    index = load_index(built[0])

    def no_text(self):
        raise AssertionError(f"the text of {self.id} was read")

    monkeypatch.setattr(StoredArticle, "text", property(no_text))
    listing = Listing(index)
    assert listing.page(query="حريق", sources=["Jawhara FM"], since=date(2016, 1, 1)).total == 1
    assert listing.page(limit=100).total == 6


# --- changes through the live index -------------------------------------------------------

Q_FIRE = "كم هكتارا أتت عليها النيران في غابة جندوبة؟"


def test_removing_an_article_changes_the_table_and_the_answers_at_once(built):
    live = make_live(built)
    before = ask(live, Q_FIRE, [])[-1].answer
    assert {"fire-1", "fire-2"} & {c.article_id for c in before.citations}
    report = live.remove(["fire-1", "fire-2"])
    assert sorted(report.removed) == ["fire-1", "fire-2"]
    assert live.listing().page().total == 4
    after = ask(live, Q_FIRE, [])[-1].answer
    assert not {"fire-1", "fire-2"} & {c.article_id for c in after.citations}
    assert not {"fire-1", "fire-2"} & {p.article_id for p in after.passages}
    assert "fire-1" not in load_index(built[0]).article_row  # on disk, as `isnad index remove`


def test_after_an_update_titles_are_searched_anew_and_only_new_segments_tokenised(
    built, tmp_path, monkeypatch
):
    import index.listing as listing_mod

    live = make_live(built)
    assert live.listing().page(query="مهرجان").total == 1  # a word of fest's title only
    seen: list[str] = []
    real = listing_mod.tokenize
    monkeypatch.setattr(listing_mod, "tokenize", lambda t: seen.append(t) or real(t))
    extra = tmp_path / "late.jsonl"
    record = {"id": "late", "title": "مهرجان الزيتون بجرجيس", "text": "نظمت بلدية جرجيس "
              "الدورة الأولى لتظاهرة احتفالية بموسم جني الثمار."}  # fmt: skip
    extra.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    live.add([extra])
    live.remove(["fest"])
    page = live.listing().page(query="مهرجان")
    assert [r.id for r in page.rows] == ["late"]  # the new title found, the removed one not
    titles = [t for t in seen if t != "مهرجان"]  # the query itself is tokenised too
    assert titles == [record["title"]]  # the first segment's titles were not tokenised again
    live.remove(["fire-1"])  # «حريق» in its title and text; fire-2 has it too
    assert [r.id for r in live.listing().page(query="حريق").rows] == ["fire-2"]


def test_removing_an_unknown_article_changes_nothing_and_says_so(built):
    live = make_live(built)
    with pytest.raises(NoSuchArticle) as e:
        live.remove(["farm", "nope"])
    assert str(e.value) == (
        "no article 'nope' in the index (removed already, or never added); nothing was removed"
    )
    assert live.listing().page().total == 6


def test_two_users_removing_the_same_article_at_once_one_succeeds(built):
    live = make_live(built)
    results: list[str] = []
    start = threading.Barrier(2)

    def remove():
        start.wait()
        try:
            live.remove(["fest"])
            results.append("removed")
        except NoSuchArticle as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=remove) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [
        "no article 'fest' in the index (removed already, or never added); nothing was removed",
        "removed",
    ]
    assert live.listing().page().total == 5


def test_a_question_running_while_its_article_is_removed_keeps_its_snapshot(
    built, tmp_path, monkeypatch
):
    """The removal empties the article's segment, whose folder the update deletes: the answer
    in flight still reads and cites the text from the index it started with."""
    # as on a large index, the answerer's look at the corpus' scripts reads only a sample of
    # the texts (here the first article's), so the new segment's texts are not open by chance
    monkeypatch.setattr(qa_retrieve, "SCRIPT_SAMPLE", 1)
    started, go = threading.Event(), threading.Event()

    class Held(Answerer):
        def ask(self, *args, **kwargs):
            started.set()
            assert go.wait(10)
            return super().ask(*args, **kwargs)

    live = make_live(built, functools.partial(Held, abstain_model=fixed_model(0.0), strict=True))
    extra = tmp_path / "late.jsonl"
    extra.write_text(
        json.dumps(
            {"id": "late", "title": "قافلة طبية", "text": "وصلت قافلة طبية إلى مدينة تطاوين "
             "لتقديم فحوص مجانية لسكان القرى الجبلية طيلة أسبوع كامل."},
            ensure_ascii=False,
        ) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    live.add([extra])
    segment = live.snapshot()[0].segments[-1].folder
    out: list = []
    worker = threading.Thread(
        target=lambda: out.append(ask(live, "إلى أي مدينة وصلت القافلة الطبية؟", [])[-1])
    )
    worker.start()
    assert started.wait(10)
    live.remove(["late"])
    assert not segment.exists()  # the emptied segment's folder is gone
    go.set()
    worker.join(10)
    (turn,) = out
    cited = [c for c in turn.answer.citations if c.article_id == "late"]
    assert cited and all(turn.articles["late"].text[c.start : c.end] == c.text for c in cited)
    assert "late" not in live.snapshot()[0].article_row


def test_a_feed_added_by_url_joins_the_table_and_the_sources(built, site):  # noqa: F811
    base, pages = site
    pages["/feed"] = ("application/rss+xml", RSS.encode())
    live = make_live(built)
    report = live.add_url(f"  {base}/feed ")
    assert sorted(report.added) == ["https://radio.example/news/1", "https://radio.example/news/2"]
    assert live.listing().page(query="النفط").rows[0].id == "https://radio.example/news/1"
    assert f"{base}/feed" in live.sources and f"{base}/feed" in read_manifest(built[0])["sources"]
    live.rebuild()  # the URL is fetched again: its articles stay
    assert live.listing().page().total == 8


def test_a_url_that_cannot_be_added_says_why_and_changes_nothing(built, site):  # noqa: F811
    base, pages = site
    pages["/empty"] = ("text/html", b"<html><body></body></html>")
    live = make_live(built)
    with pytest.raises(BuildError) as e:
        live.add_url(f"{base}/missing")
    assert str(e.value) == (
        f"{base}/missing: HTTP 404 Not Found; check the address; the index was not changed"
    )
    with pytest.raises(BuildError, match="is not a web address; give one starting with http"):
        live.add_url("ftp://example.org/feed")
    with pytest.raises(BuildError, match="the index was not changed"):
        live.add_url(f"{base}/empty")
    assert live.listing().page().total == 6 and f"{base}/missing" not in live.sources


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_index(built, monkeypatch):
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    return str(built[0])


def test_articles_list_prints_the_table_and_json(cli_index):
    out = run("articles", "list", "--index", cli_index)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("6 articles")
    assert [line.split()[1] for line in lines[2:]] == NEWEST_FIRST
    out = run("articles", "list", "--index", cli_index, "--json", "--query", "حريق",
              "--source", "Jawhara FM", "--since", "2016", "--limit", "5")  # fmt: skip
    assert out.exit_code == 0, out.output
    body = json.loads(out.output)
    assert body["total"] == 1 and [a["id"] for a in body["articles"]] == ["fire-1"]
    out = run("articles", "list", "--index", cli_index, "--json", "--offset", "99")
    assert json.loads(out.output) == {"total": 6, "articles": []}


def test_articles_show_prints_one_article_whole(cli_index):
    out = run("articles", "show", "fire-2", "--index", cli_index)
    assert out.exit_code == 0, out.output
    assert "حريق غابة جندوبة" in out.output and FIRE.replace("اليوم", "مساء الأحد") in out.output
    assert "fire-1" in out.output  # its wire copy
    body = json.loads(run("articles", "show", "farm", "--index", cli_index, "--json").output)
    assert body["id"] == "farm" and body["text"].startswith("عقد وزراء") and body["copies"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["show", "nope"], "no article 'nope' in the index"),
        (["list", "--query", "في من"], "has only common words"),
        (["list", "--since", "2017-13-01"], "--since '2017-13-01' is not a date"),
        (["list", "--limit", "0"], "limit must be 1 to 1000"),
    ],
)
def test_articles_bad_input_is_one_line_and_exit_1(cli_index, args, message):
    out = run("articles", *args, "--index", cli_index)
    assert out.exit_code == 1 and out.stdout == ""
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("isnad: error: ") and message in line


def test_articles_on_a_missing_index_say_what_to_run(tmp_path):
    out = run("articles", "list", "--index", str(tmp_path / "none"))
    assert out.exit_code == 1 and "isnad index build" in out.stderr


def test_the_copied_index_is_left_alone(built):
    """Listing opens the index read-only: nothing in its folder changes."""
    ix = built[0]
    before = {p.name: p.stat().st_mtime_ns for p in ix.rglob("*")}
    Listing(load_index(ix)).page(query="حريق")
    assert {p.name: p.stat().st_mtime_ns for p in ix.rglob("*")} == before
    shutil.rmtree(ix)
