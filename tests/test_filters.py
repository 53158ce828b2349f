"""Dates, sources and wire copies: dates that parse, filters inside retrieval, time named in a
question, the latest first, and one story cited once with its copies listed."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

import cli
from index import copies as copies_mod
from index.build import build_index
from index.dates import parse_published
from index.store import load_index
from qa.answer import Answerer
from qa.filters import FilterError, parse_filters
from qa.retrieve import RetrievalSettings
from qa.timeq import time_in_question
from tests.conftest import FakeEncoder
from tests.test_answer import coverage_model
from tests.test_cli import run

DIRECTOR = "عيّنت وزارة الشؤون الثقافية {} مديرة لمهرجان قرطاج الدولي في دورته الجديدة."
WIRE = (  # a dispatch of news length (copies differ by a word or two in ~80)
    "أعلنت الحماية المدنية اليوم عن إخماد حريق كبير اندلع في غابة جبلية بولاية جندوبة بعد "
    "تدخل عشرات الأعوان وثلاث طائرات، ولم يسجل الحريق أي خسائر بشرية حسب المصدر نفسه.\n\n"
    "وأوضح المتحدث باسم الإدارة الجهوية أن النيران أتت على نحو أربعين هكتارا من أشجار الصنوبر "
    "والفلين، وأن فرق الغابات ستواصل مراقبة المكان خشية تجدد الحريق بسبب الرياح القوية وارتفاع "
    "درجات الحرارة. ودعا المواطنين إلى الحذر وعدم إشعال النار قرب الغابات خلال فصل الصيف، مذكرا "
    "بالرقم الأخضر المخصص للإبلاغ عن الحرائق."
)
MORE = {  # each appointment is its own story: the rest of the article differs
    "d2014": "وكانت مبارك قد غنت في المهرجان مرات عدة قبل أن تتولى وزارة الثقافة لاحقا.",
    "d2016": "وقالت موسى إنها ستعمل على إعادة الجمهور العائلي إلى المسرح الروماني هذا الصيف.",
    "d2017": "ويأتي هذا التعيين بعد استقالة المديرة السابقة إثر خلاف حول ميزانية الدورة.",
    "undated": "ولم يحدد البلاغ تاريخ انطلاق الدورة ولا قائمة العروض المبرمجة فيها بعد.",
}
RECORDS = [
    {"id": "d2014", "text": DIRECTOR.format("سنية مبارك"), "published": "31/03/2014",
     "source": "Jawhara FM", "category": "culture", "url": "https://example.org/d2014"},
    {"id": "d2016", "text": DIRECTOR.format("آمال موسى"), "published": "2016-12-05T10:00:00+01:00",
     "source": "Jawhara FM", "category": "culture"},
    {"id": "d2017", "text": DIRECTOR.format("فاطمة الزهراء"), "published": "2017-03-17",
     "source": "Mosaique FM", "category": "culture"},
    {"id": "undated", "text": DIRECTOR.format("ليلى الرياحي"), "category": "culture"},
    {"id": "baddate", "text": "فاز الترجي الرياضي بالبطولة بعد مباراة مثيرة.",
     "published": "الأسبوع الماضي", "source": "Jawhara FM", "category": "sport"},
    {"id": "w1", "text": WIRE, "published": "2016-07-10", "source": "Jawhara FM",
     "category": "localNews", "url": "https://example.org/w1"},
    {"id": "w2", "text": WIRE.replace("اليوم", "مساء الأحد"), "published": "2016-07-11",
     "source": "وكالة تونس إفريقيا للأنباء", "category": "localNews"},
]  # fmt: skip
for _r in RECORDS:
    if _r["id"] in MORE:
        _r["text"] += "\n" + MORE[_r["id"]]


def write(folder, records):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    (folder / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def index(tmp_path, fake_encoder):
    build_index([write(tmp_path / "corpus", RECORDS)], tmp_path / "ix", fake_encoder)
    return load_index(tmp_path / "ix")


def answerer(index, **settings):
    retrieval = replace(RetrievalSettings(), **settings)
    return Answerer(
        index,
        FakeEncoder(),
        k=5,
        abstain_model=coverage_model(0.3),
        strict=True,
        retrieval=retrieval,
    )


def article_ids(answer):
    return [p.article_id for p in answer.passages]


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, iso, day",
    [
        ("2017-02-01T23:08:00+01:00", "2017-02-01T23:08:00+01:00", date(2017, 2, 1)),
        ("2017-02-01T23:30:00-05:00", "2017-02-01T23:30:00-05:00", date(2017, 2, 1)),
        ("2017-02-01T22:08:00Z", "2017-02-01T22:08:00+00:00", date(2017, 2, 1)),
        ("17/05/2015", "2015-05-17", date(2015, 5, 17)),
        ("3/4/2016", "2016-04-03", date(2016, 4, 3)),  # day first, as Arabic outlets write
        ("2016-03-01", "2016-03-01", date(2016, 3, 1)),
        ("2017-01-22T185600", "2017-01-22T18:56:00", date(2017, 1, 22)),
        ("٢٠١٥-٠٣-٠١", "2015-03-01", date(2015, 3, 1)),
    ],
)
def test_dates_in_the_forms_news_dumps_use_parse(text, iso, day):
    p = parse_published(text)
    assert (p.iso, p.day) == (iso, day)


@pytest.mark.parametrize("text", ["", "yesterday", "31/02/2016", "2016-13-01", "12/2016", "0999"])
def test_what_is_not_a_date_is_not_guessed(text):
    assert parse_published(text) is None


def test_citations_carry_the_normalised_date_source_and_url(index):
    a = answerer(index).ask("من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج سنية مبارك")
    c = a.citations[0]
    assert (c.article_id, c.published) == ("d2014", "2014-03-31")
    assert (c.source, c.url) == ("Jawhara FM", "https://example.org/d2014")
    rec = a.to_json()["citations"][0]
    assert rec["published"] == "2014-03-31" and rec["copies"] == []


def test_status_lists_the_dates_that_did_not_parse(index):
    out = run("index", "status", "--index", str(index.path))
    assert out.exit_code == 0
    assert "unreadable date 'الأسبوع الماضي' of article baddate" in out.stdout
    data = json.loads(run("index", "status", "--index", str(index.path), "--json").stdout)
    assert data["unreadable_dates"] == [{"article_id": "baddate", "published": "الأسبوع الماضي"}]
    assert data["dated"] == 5


# --- filters ---------------------------------------------------------------------------------


def test_a_date_range_filter_answers_from_that_range_only(index):
    q = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي؟"
    a = answerer(index).ask(q, filters=parse_filters("2016-01-01", "2016-12-31"))
    assert article_ids(a)[0] == "d2016" and set(article_ids(a)) <= {"d2016", "w1", "w2"}
    assert a.citations[0].article_id == "d2016"
    # an article without a readable date never passes a date bound
    a = answerer(index).ask(q, filters=parse_filters(since="2000-01-01"))
    assert "undated" not in article_ids(a) and "baddate" not in article_ids(a)


def test_a_narrow_filter_gets_its_own_best_passages_not_the_global_leftovers(tmp_path):
    # twelve 2015 articles outrank the 2017 one for this question; every ranking is cut at 3
    near = [
        {"id": f"n{i}", "text": DIRECTOR.format(f"المديرة رقم {i}") + f" ({i})",
         "published": f"{i + 1:02d}/01/2015"}
        for i in range(12)
    ]  # fmt: skip
    far = {"id": "far", "text": "أعلنت الوزارة اسم مديرة مهرجان قرطاج.", "published": "2017-05-01"}
    build_index([write(tmp_path / "c", [*near, far])], tmp_path / "ix", FakeEncoder())
    ix = load_index(tmp_path / "ix")
    q = DIRECTOR.format("المديرة")
    a = answerer(ix, depth=3, rerank=3)
    assert "far" not in article_ids(a.ask(q))
    only_2017 = a.ask(q, filters=parse_filters(since="2017-01-01"))
    assert article_ids(only_2017) == ["far"]


def test_sources_and_categories_filter_ignoring_case_and_repeat(index):
    q = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي؟"
    a = answerer(index).ask(q, filters=parse_filters(sources=["mosaique  fm"]))
    assert set(article_ids(a)) == {"d2017"}
    f = parse_filters(sources=["Mosaique FM", "Jawhara FM"], categories=["culture"])
    assert set(article_ids(answerer(index).ask(q, filters=f))) == {"d2014", "d2016", "d2017"}


def test_a_filter_that_matches_nothing_abstains_and_says_so(index):
    for f in (parse_filters(since="2030-01-01"), parse_filters(sources=["BBC"])):
        a = answerer(index).ask("من عيّنت مديرة لمهرجان قرطاج؟", filters=f)
        assert a.abstained and a.passages == () and a.citations == ()
        assert "لا توجد مقالات تطابق التصفية" in a.text and f.describe() in a.text
    a = answerer(index).ask("Who runs the festival?", filters=parse_filters(categories=["x"]))
    assert a.abstained and a.text == "No article matches the filters (category «x»)."


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"since": "2017-13-01"}, "--since '2017-13-01' is not a date; write YYYY-MM-DD"),
        ({"until": "01/03/2017"}, "--until '01/03/2017' is not a date"),
        ({"since": "2017-03-01", "until": "2016-01-01"}, "is after --until"),
        ({"sources": 7}, "--source must be a name"),
        ({"categories": ["ok", 3]}, "--category must be a name"),
    ],
)
def test_bad_filter_values_are_refused_with_what_to_write(kwargs, message):
    with pytest.raises(FilterError) as e:
        parse_filters(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_year_or_a_month_is_its_whole_period():
    f = parse_filters("2015", "2016-02")
    assert (f.since, f.until) == (date(2015, 1, 1), date(2016, 2, 29))


def test_cli_filters_and_their_errors(index, monkeypatch, tmp_path):
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    monkeypatch.setattr("qa.answer.load_abstain_model", lambda: coverage_model(0.3))
    ix = str(index.path)
    q = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي؟"
    out = run("ask", q, "--index", ix, "--json", "--since", "2017-01-01", "--source", "Mosaique FM")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert {p["article_id"] for p in data["passages"]} == {"d2017"}
    for args, message in [
        (["--since", "2017-02-30"], "--since '2017-02-30' is not a date"),
        (["--since", "2017-02-01", "--until", "2016-01-01"], "--since 2017-02-01 is after"),
    ]:
        out = run("ask", q, "--index", ix, *args)
        assert out.exit_code == 1 and out.stdout == ""
        assert out.stderr.splitlines()[-1].startswith("isnad: error: " + message)
    lines = tmp_path / "q.jsonl"
    lines.write_text(
        json.dumps({"id": "a", "question": q, "until": "2015-12-31"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "b", "question": q, "since": "nope"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"id": "c", "question": q}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    out = run("ask", "--questions", str(lines), "--index", ix, "--json", "--category", "culture")
    a, b, c = (json.loads(x) for x in out.stdout.splitlines())
    assert {p["article_id"] for p in a["passages"]} == {"d2014"}  # its own until, the category
    assert "is not a date" in b["error"]
    assert {p["article_id"] for p in c["passages"]} <= {"d2014", "d2016", "d2017", "undated"}


# --- time in the question -------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, since, until",
    [
        ("ماذا حدث في المهرجان سنة 2015؟", date(2015, 1, 1), date(2015, 12, 31)),
        ("من فاز عام ٢٠١٥؟", date(2015, 1, 1), date(2015, 12, 31)),
        ("ماذا قررت الحكومة في مارس 2017؟", date(2017, 3, 1), date(2017, 3, 31)),
        ("ماذا حدث في شهر جويلية 2016؟", date(2016, 7, 1), date(2016, 7, 31)),
        ("ماذا حدث في كانون الثاني 2016؟", date(2016, 1, 1), date(2016, 1, 31)),
        ("ماذا حدث يوم 14 جانفي 2016؟", date(2016, 1, 14), date(2016, 1, 14)),
        ("ماذا حدث في 14/01/2016؟", date(2016, 1, 14), date(2016, 1, 14)),
        ("What happened in May 2016?", date(2016, 5, 1), date(2016, 5, 31)),
        ("Who won the 2015-2016 season?", date(2015, 1, 1), date(2016, 12, 31)),
    ],
)
def test_the_period_a_question_names_is_read(question, since, until):
    hint = time_in_question(question)
    assert (hint.since, hint.until) == (since, until)


def test_latest_is_read_and_plain_questions_name_no_time():
    assert time_in_question("ما آخر أخبار الإضراب؟").latest
    assert time_in_question("ما أحدث قرار للبنك المركزي؟").latest
    assert time_in_question("Which coach did they sign most recently?").latest
    hint = time_in_question("كم عدد سكان تونس؟ وهل 12345 رقم؟")
    assert hint == type(hint)()


def test_a_year_in_the_question_ranks_that_years_article_first(index):
    q = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي {}؟"
    for when, expected in [("سنة 2014", "d2014"), ("عام ٢٠١٦", "d2016"), ("في مارس 2017", "d2017")]:
        assert article_ids(answerer(index).ask(q.format(when)))[0] == expected


def test_bm25_adds_nothing_to_passages_dated_outside_the_period_asked_about(index):
    """The story's other years match the question's words as well as the year asked about;
    BM25's share of the rerank goes to that year's passages and undated ones only."""
    q = "من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي {}؟"
    retriever = answerer(index).retriever

    def boosted(question):
        (ranking,) = retriever.rank_batch([question], 10)
        return {index.chunk(c).article_id for c in ranking.lexical_bonus}

    assert {"d2014", "d2016", "d2017"} <= boosted(q.format(""))
    assert boosted(q.format("سنة 2014")) & {"d2014", "d2016", "d2017"} == {"d2014"}


def test_latest_orders_passages_of_similar_relevance_newest_first(index):
    q = "من آخر من عيّنت وزارة الشؤون الثقافية مديرة لمهرجان قرطاج الدولي؟"
    plain = article_ids(answerer(index).ask(q.replace("آخر من", "من")))
    ids = article_ids(answerer(index).ask(q))
    assert [i for i in ids if i.startswith("d")] == ["d2017", "d2016", "d2014"]
    assert ids.index("undated") == plain.index("undated") == 3  # kept in its place
    assert plain[0] == "d2014"  # without "آخر", relevance alone


# --- wire copies ---------------------------------------------------------------------------


def test_wire_copies_are_one_source_with_the_others_listed(index):
    assert index.catalog.copies(index.article_row["w1"]) == [index.article_row["w2"]]
    assert index.manifest["counts"]["copy_clusters"] == 1
    a = answerer(index).ask("حريق كبير في غابة جبلية بولاية جندوبة")
    cited = [c.article_id for c in a.citations]
    assert len({"w1", "w2"} & set(cited)) == 1 and len({"w1", "w2"} & set(article_ids(a))) == 1
    c = next(c for c in a.citations if c.article_id in ("w1", "w2"))
    (copy,) = c.copies
    assert copy.article_id == ({"w1", "w2"} - {c.article_id}).pop()
    if copy.article_id == "w2":
        assert (copy.source, copy.published, copy.url) == (
            "وكالة تونس إفريقيا للأنباء",
            "2016-07-11",
            None,
        )


def test_an_update_hashes_only_new_articles_and_finds_their_copies(tmp_path, monkeypatch):
    corpus = write(tmp_path / "c", RECORDS)
    build_index([corpus], tmp_path / "ix", FakeEncoder())
    hashed = []
    real = copies_mod.signatures
    monkeypatch.setattr(copies_mod, "signatures", lambda arts: hashed.extend(arts) or real(arts))
    w3 = {"id": "w3", "text": WIRE.replace("اليوم", "صباح اليوم"), "published": "2016-07-12"}
    write(corpus, [*RECORDS, w3])
    build_index([corpus], tmp_path / "ix", FakeEncoder())
    assert [a.id for a in hashed] == ["w3"]
    ix = load_index(tmp_path / "ix")
    rows = sorted(ix.article_row[i] for i in ("w1", "w2", "w3"))
    assert sorted([rows[0], *ix.catalog.copies(rows[0])]) == rows
    # signatures made another way (another shingle size, say) are not reused
    monkeypatch.setattr(copies_mod, "SIGNATURE", {**copies_mod.SIGNATURE, "shingle": 4})
    hashed.clear()
    build_index([corpus], tmp_path / "ix", FakeEncoder())
    assert len(hashed) == len(RECORDS) + 1


def test_different_stories_on_one_topic_are_not_copies(index):
    rows = [index.article_row[i] for i in ("d2014", "d2016", "d2017", "undated")]
    assert all(index.catalog.copies(r) == [] for r in rows)


def test_the_same_text_months_apart_is_a_reused_template_not_a_copy():
    from index.articles import Article

    a = Article("a", "بلاغ مروري", WIRE)
    b = Article("b", "بلاغ مروري", WIRE.replace("اليوم", "أمس"))
    sigs = copies_mod.signatures([a, b])
    near = [date(2016, 10, 28).toordinal(), date(2016, 11, 2).toordinal()]
    far = [date(2016, 10, 28).toordinal(), date(2017, 2, 7).toordinal()]
    assert copies_mod.clusters([a, b], sigs, np.array(near)).tolist() == [0, 0]
    assert copies_mod.clusters([a, b], sigs, np.array(far)).tolist() == [0, 1]
    assert copies_mod.clusters([a, b], sigs, np.array([-1, far[1]])).tolist() == [0, 0]


def test_signatures_are_datasketch_minhash_values():
    """Stored signatures stay comparable with those written before copies.py made them itself:
    the same values as datasketch's MinHash over the same shingles, for long, short, empty,
    mixed-script and punctuation-heavy texts."""
    from datasketch import MinHash

    from index.articles import Article

    arts = [
        Article("a", "بلاغ مروري", WIRE),
        Article("b", "", ""),
        Article("c", "قصير", "نص"),
        Article("d", "Mixed نص", "IDEF 2025؛ (داعش).وأوضحت snake_case_word x2 ... ٣٤٥ — end"),
    ]
    for art, row in zip(arts, copies_mod.signatures(arts), strict=True):
        m = MinHash(num_perm=copies_mod.NUM_PERM, seed=copies_mod.SEED, scheme=copies_mod.SCHEME)
        m.update_batch(sorted(copies_mod.shingles(art)))
        assert row.tolist() == m.hashvalues.tolist(), art.id


def test_shingle_words_are_runs_of_alphanumerics():
    """Words for shingles split wherever str.isalnum() is false (the rule the stored signatures
    were made with), underscores and marks included."""
    from index.articles import Article

    text = "أ_ب، c-d e\u0651f ٣٤٥x IDEF(2025).وأوضحت ـ z"
    art = Article("a", "", text)
    from index.lexical import fold

    folded = fold(f"\n{text}")
    words = "".join(c if c.isalnum() else " " for c in folded).split()
    expected = {" ".join(words[i : i + 3]).encode() for i in range(len(words) - 2)}
    assert copies_mod.shingles(art) == expected


def test_candidate_pairs_are_those_of_datasketch_lsh():
    """The numpy banding finds exactly the pairs datasketch's MinHashLSH (the tuned threshold)
    finds, over texts from unrelated to near-identical."""
    from datasketch import LeanMinHash, MinHashLSH

    from index.articles import Article

    words = WIRE.split()
    rng = np.random.default_rng(7)
    arts = []
    for i in range(60):  # a base text with 0..40% of its words replaced, and unrelated texts
        w = list(words) if i % 3 else list(rng.permutation(words))
        for k in rng.choice(len(w), size=int(len(w) * (i % 5) * 0.1), replace=False):
            w[k] = f"كلمة{i}_{k}"
        arts.append(Article(str(i), "عنوان", " ".join(w)))
    sigs = copies_mod.signatures(arts)
    lsh = MinHashLSH(threshold=copies_mod.LSH_THRESHOLD, num_perm=copies_mod.NUM_PERM)
    assert (lsh.b, lsh.r) == (copies_mod.BANDS, copies_mod.ROWS)
    seed, scheme = copies_mod.SEED, copies_mod.SCHEME
    hashes = [LeanMinHash(seed=seed, hashvalues=r, scheme=scheme) for r in sigs]
    for i, h in enumerate(hashes):
        lsh.insert(i, h)
    expected = {(i, j) for i, h in enumerate(hashes) for j in lsh.query(h) if j > i}
    found = {tuple(p) for p in copies_mod.candidate_pairs(sigs).tolist()}
    assert found == expected and 30 < len(found) < 60 * 59 / 2
