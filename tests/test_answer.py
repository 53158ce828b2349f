"""Answers: verified spans, abstention, chat follow-ups, bad questions, the JSON shape."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from index.build import build_index
from index.lexical import coverage, tokenize
from index.store import load_index
from qa import answer as answer_mod
from qa.abstain import FEATURES, AbstainModel, GroupModel, load_abstain_model
from qa.answer import (
    MAX_QUESTION_CHARS,
    Answer,
    Answerer,
    Citation,
    CitationError,
    QuestionError,
    check_question,
    follow_up_context,
    is_follow_up,
    verify,
)
from qa.compose import Span
from qa.export import to_text

FILES = {
    "syria.txt": "تركيا وسوريا\n\nأعلنت وزارة الدفاع التركية أن الإدارة السورية طلبت دعماً "
    "رسمياً من أنقرة. وَقَالَ الْمُتَحَدِّثُ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً في أنقرة.\n",
    "sdf.txt": "قسد والحكومة السورية\n\nوقّعت قسد في شهر آذار اتفاقاً مع الرئيس السوري أحمد "
    "الشرع لدمج المؤسسات المدنية والعسكرية في شمال شرق سوريا.\n",
    "football.txt": "الترجي يفوز\n\nفاز الترجي الرياضي على النادي الإفريقي بهدفين 🎉⚽ في "
    "المباراة النهائية. واحتفل الجمهور حتى الصباح.\n",
    "english.txt": "Markets rally\n\nStocks rose 3.5 percent on Monday. Analysts were surprised.\n",
}
CRLF = "وزارة الصحة\r\n\r\nأعلنت وزارة الصحة عن حملة تطعيم 💉 جديدة ضد شلل الأطفال.\r\nوتبدأ الحملة في المدارس عام ٢٠١٧.\r\n"  # noqa: E501
NEWS = [  # a JSONL dump: meta fields, and a wire copy of one sentence under another id
    {
        "id": "n1",
        "title": "أسعار النفط ترتفع",
        "text": "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج.",
        "source": "وكالة",
        "published": "2017-03-02",
        "url": "https://example.org/n1",
    },
    {
        "id": "n2",
        "title": "النفط",
        "text": "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج.\n\nنقلاً عن وكالة.",  # noqa: E501
    },
]


def coverage_model(threshold: float = 0.4) -> AbstainModel:
    """Answers when the top chunk holds `threshold` of the question's words (cross-script:
    when the best sentence's cosine reaches 0.7). Calibrated weights fit the real model only."""
    n = len(FEATURES)

    def on(feature: str, weight: float, intercept: float) -> GroupModel:
        coef = tuple(weight if f == feature else 0.0 for f in FEATURES)
        return GroupModel((0.0,) * n, (1.0,) * n, coef, intercept, 0.5)

    return AbstainModel(
        {"same": on("chunk_coverage", 20, -20 * threshold), "cross": on("best_cosine", 20, -14)}
    )


def write_corpus(root: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir(parents=True)
    for rel, text in FILES.items():
        (corpus / rel).write_text(text, encoding="utf-8")
    (corpus / "health.txt").write_bytes(CRLF.encode("utf-8"))
    lines = [json.dumps(r, ensure_ascii=False) for r in NEWS]
    (corpus / "news.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corpus


@pytest.fixture
def index(tmp_path, fake_encoder):
    build_index([write_corpus(tmp_path)], tmp_path / "ix", fake_encoder)
    return load_index(tmp_path / "ix")


@pytest.fixture
def answerer(index, fake_encoder):
    return Answerer(index, fake_encoder, k=5, abstain_model=coverage_model(), strict=True)


def assert_verified(answer: Answer, index) -> None:
    for c in answer.citations:
        article = index.articles[index.article_row[c.article_id]]
        assert c.text == article.text[c.start : c.end] and c.text.strip()
        assert c.title == article.title
        assert f"[{c.n}]" in answer.text
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_an_answer_cites_exact_spans(answerer, index):
    a = answerer.ask("من فاز على النادي الإفريقي؟")
    assert not a.abstained and a.citations
    assert_verified(a, index)
    assert a.citations[0].article_id == "football.txt" and "🎉⚽" in a.citations[0].text


def test_a_span_with_diacritics_is_cited_verbatim(answerer, index):
    # (the fake encoder compares raw trigrams, so the question carries the diacritics too)
    a = answerer.ask("وَقَالَ الْمُتَحَدِّثُ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً؟")
    assert not a.abstained
    assert_verified(a, index)
    assert a.citations[0].article_id == "syria.txt" and "سَيُعْقَدُ" in a.citations[0].text


def test_spans_in_a_crlf_file_with_emoji_slice_the_loaded_text(answerer, index, tmp_path):
    a = answerer.ask("حملة تطعيم ضد شلل الأطفال في المدارس")
    assert not a.abstained
    assert_verified(a, index)
    c = a.citations[0]
    assert c.article_id == "health.txt" and "\r" not in c.text
    # the loader's text is the file with CRLF as "\n": the span is found there verbatim
    assert CRLF.replace("\r\n", "\n")[c.start : c.end] == c.text


def test_meta_and_to_json_shape(answerer):
    a = answerer.ask("ارتفاع أسعار النفط بعد قرار أوبك خفض الإنتاج")
    data = a.to_json(id="q1")
    assert list(data) == [
        "id", "question", "abstained", "answer", "mode", "short_answer", "citations", "passages"
    ]  # fmt: skip
    assert data["mode"] == "answer" and "timeline" not in data
    assert data["id"] == "q1" and data["abstained"] is False and data["answer"] == a.text
    base = ["n", "article_id", "title", "start", "end", "text"]
    meta = ["published", "source", "url", "copies"]
    for rec in data["citations"]:
        assert list(rec) == base + meta
    # n1 and n2 are one story (a wire copy): one of them is cited, the other listed with it
    cited = {rec["article_id"]: rec for rec in data["citations"]}
    assert len({"n1", "n2"} & set(cited)) == 1
    rec = cited.get("n1") or cited["n2"]
    other = "n2" if "n1" in cited else "n1"
    assert [x["article_id"] for x in rec["copies"]] == [other]
    n1 = rec if "n1" in cited else rec["copies"][0]
    assert n1["url"] == "https://example.org/n1" and n1["published"] == "2017-03-02"
    assert n1["source"] == "وكالة"
    assert {p["article_id"] for p in data["passages"]} & {"n1", "n2"} == {rec["article_id"]}
    for p in data["passages"]:
        assert list(p) == ["article_id", "start", "end", "score"]
    assert [p["score"] for p in data["passages"]] == sorted(
        (p["score"] for p in data["passages"]), reverse=True
    )
    json.dumps(data, ensure_ascii=False)  # serialisable as it is
    assert a.to_json()["id"] is None


def test_a_wire_copy_is_cited_once(answerer):
    a = answerer.ask("ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج")
    assert not a.abstained
    oil = [c for c in a.citations if "أسعار النفط" in c.text]
    assert len(oil) == 1


def test_no_support_abstains_in_the_question_language(answerer):
    a = answerer.ask("ما هو عدد سكان اليابان في القرن التاسع عشر؟")
    assert a.abstained and a.citations == ()
    assert a.text == "لا تذكر المقالات إجابة عن هذا السؤال."
    assert len(a.passages) == 5  # the closest passages are still shown
    e = answerer.ask("What is the population of Japan?")
    assert e.abstained and e.text == "The articles don't say."
    assert "Closest passages" in to_text(e)


@pytest.mark.parametrize("question", ["", "   \n\t", "؟؟؟ ...!", "🙂🙂", "x" * 10_000])
def test_bad_questions_raise_a_clear_error(answerer, question):
    with pytest.raises(QuestionError) as info:
        answerer.ask(question)
    message = str(info.value)
    assert "\n" not in message
    assert ("empty" in message) or (f"{MAX_QUESTION_CHARS:,}" in message and "10,000" in message)


def test_questions_in_other_scripts_get_an_answer_or_an_abstention(answerer, index):
    for q in ("石油价格为什么上涨？", "Почему выросли цены на нефть?", "3.5", "Q?"):
        a = answerer.ask(q)
        assert isinstance(a, Answer) and a.text
        assert_verified(a, index)


def test_check_question_strips_and_limits():
    assert check_question("  متى؟ \n") == "متى؟"
    assert check_question("ب" * MAX_QUESTION_CHARS) == "ب" * MAX_QUESTION_CHARS
    with pytest.raises(QuestionError):
        check_question("ب" * (MAX_QUESTION_CHARS + 1))


def test_follow_up_detection():
    assert is_follow_up("وماذا عن قسد؟") and is_follow_up("And what about 2017?")
    assert is_follow_up("قسد؟") and is_follow_up("what about the SDF?")
    assert not is_follow_up("متى وقعت قسد الاتفاق مع الحكومة السورية؟")
    history = [("ما موقف تركيا من سوريا؟", "…")]
    assert follow_up_context("وماذا عن قسد؟", history) == "ما موقف تركيا من سوريا؟ وماذا عن قسد؟"
    assert follow_up_context("وماذا عن قسد؟", []) is None
    assert follow_up_context("متى فاز الترجي في المباراة النهائية؟", history) is None
    chat = [*history, ("وماذا عن قسد؟", "…"), ("", "")]
    assert follow_up_context("ومتى؟", chat) == "ما موقف تركيا من سوريا؟ وماذا عن قسد؟ ومتى؟"


def test_a_follow_up_is_retrieved_alone_and_with_the_previous_question(answerer, fake_encoder):
    history = [("هل طلبت الإدارة السورية دعماً من تركيا؟", "…")]
    n = len(fake_encoder.calls)
    a = answerer.ask("وماذا عن قسد؟", history)
    assert fake_encoder.calls[n:] == [
        ("query", ["وماذا عن قسد؟"]),
        ("query", ["هل طلبت الإدارة السورية دعماً من تركيا؟ وماذا عن قسد؟"]),
    ]
    n = len(fake_encoder.calls)
    alone = answerer.ask("وماذا عن قسد؟")
    assert fake_encoder.calls[n:] == [("query", ["وماذا عن قسد؟"])]
    assert alone.question == a.question == "وماذا عن قسد؟"

    def rank(answer, article_id):
        return [p.article_id for p in answer.passages].index(article_id)

    assert rank(a, "syria.txt") < rank(alone, "syria.txt")  # the context counts
    # an unrelated earlier turn does not drag a self-contained question along
    standalone = answerer.ask("من فاز على النادي الإفريقي؟", history)
    assert standalone == answerer.ask("من فاز على النادي الإفريقي؟")


def test_ask_batch_equals_ask(answerer):
    questions = ["حملة تطعيم في المدارس", "من فاز على النادي الإفريقي؟", "Stocks Monday?"]
    assert answerer.ask_batch(questions) == [answerer.ask(q) for q in questions]
    with pytest.raises(QuestionError, match="question 2"):
        answerer.ask_batch(["النفط", "  "])


def test_eight_threads_get_the_sequential_answers(answerer):
    questions = ["متى يعقد الاجتماع؟", "من فاز؟", "أسعار النفط", "قسد آذار", "Stocks?"] * 4
    expected = [answerer.ask(q) for q in questions]
    got: list = [None] * len(questions)

    def work(i: int) -> None:
        for j in range(i, len(questions), 8):
            got[j] = answerer.ask(questions[j])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_a_span_that_fails_its_check_is_never_shown(index, fake_encoder, monkeypatch):
    bad = Span(index.article_row["syria.txt"], 5, 10_000, 1.0)  # past the article's end
    monkeypatch.setattr(answer_mod, "choose_spans", lambda *a, **k: [bad])
    question = "من فاز على النادي الإفريقي؟"
    strict = Answerer(index, fake_encoder, abstain_model=coverage_model(), strict=True)
    with pytest.raises(CitationError, match="outside"):
        strict.ask(question)
    lenient = Answerer(index, fake_encoder, abstain_model=coverage_model())
    a = lenient.ask(question)
    assert a.abstained and a.citations == ()  # nothing left to show


def test_verify_reports_each_kind_of_wrong_citation(index):
    article = index.articles[index.article_row["syria.txt"]]

    def cite(start, end, text=None, article_id="syria.txt"):
        text = article.text[start:end] if text is None else text
        return Citation(1, article_id, article.title, start, end, text, None, None, None)

    assert verify(cite(0, 12), index) == ""
    assert "differs" in verify(cite(0, 12, "تركيا وسورية"), index)
    assert "outside" in verify(cite(5, 5), index)
    assert "no article" in verify(cite(0, 12, article_id="gone.txt"), index)
    assert "blank" in verify(cite(12, 14), index)


def test_format_answer_lists_numbered_citations_with_quotes(answerer):
    a = answerer.ask("من فاز على النادي الإفريقي؟")
    assert a.citations
    shown = to_text(a)
    first = f"{' '.join(a.short_answer.text.split())} [1]" if a.short_answer else a.text
    assert shown.startswith(first + "\n")
    for c in a.citations:  # each quoted whole (the short answer marked **so** in the first)
        assert f"[{c.n}] {c.title}" in shown
        assert " ".join(c.text.split()) in shown.replace("**", "")


def test_the_shipped_abstention_model_loads():
    model = load_abstain_model()
    assert set(model.groups) == {"same", "cross"}
    assert model.model_id


@pytest.mark.slow
def test_real_model_answers_arabic_and_english_and_abstains_off_topic(tmp_path, real_encoder):
    build_index([write_corpus(tmp_path)], tmp_path / "ix", real_encoder)
    index = load_index(tmp_path / "ix")
    answerer = Answerer(index, real_encoder, k=5, strict=True)
    a = answerer.ask("من فاز في المباراة النهائية؟")
    assert not a.abstained and a.citations[0].article_id == "football.txt"
    assert_verified(a, index)
    e = answerer.ask("Which team won the final?")
    assert e.passages[0].article_id == "football.txt"
    assert_verified(e, index)
    off = answerer.ask("ما هي عاصمة أستراليا وكم عدد سكانها؟")
    assert off.abstained and off.text == "لا تذكر المقالات إجابة عن هذا السؤال."
    history = [("هل طلبت الإدارة السورية دعماً من تركيا؟", a.text)]
    follow = answerer.ask("وماذا عن قسد؟", history)
    assert [p.article_id for p in follow.passages[:2]] == ["sdf.txt", "syria.txt"]


def test_a_rare_question_word_missing_from_the_passage_is_evidence_to_abstain(index):
    from qa.abstain import word_features

    syria = index.article_row["syria.txt"]
    passage = index.chunk_text(int(list(index.chunk_article).index(syria)))
    # every word found: all the idf weight is covered, nothing is missing
    share, covered, missing = word_features("الإدارة السورية طلبت دعماً", passage, index)
    assert share == 1.0 and covered == pytest.approx(1.0) and missing == 0.0
    # a word no article holds ("زلزال") is the rarest there is: it is what is missing
    question = "الإدارة السورية طلبت دعماً بعد الزلزال"
    share, partly, missing = word_features(question, passage, index)
    assert share == coverage(question, passage) < 1.0
    assert partly < 1.0
    assert missing == max(index.lexical.idf(tokenize("الزلزال السورية")).values())
