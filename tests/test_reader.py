"""The short answer: the words that answer, inside the first citation, verified, shown once."""

from __future__ import annotations

import html
import json
from dataclasses import replace

import pytest

from qa.answer import Answerer, CitationError, verify_short
from qa.export import to_html, to_markdown, to_text
from qa.reader import Reader, ReaderModelError, load_reader_model, question_kind
from qa.records import ShortAnswer, answer_from_json
from tests.test_answer import assert_verified, coverage_model
from tests.test_answer import index as index  # noqa: F401  (the fixture)
from ui.render import Turn, chat_messages, open_source

SENTENCE = (
    "أكد محسن مرزوق الامين العام لحركة مشروع تونس أن موفى شهر مارس القادم سيكون موعدا "
    "للإعلان عن البديل السياسي الجديد."
)


@pytest.fixture
def reader() -> Reader:
    return Reader(load_reader_model())


@pytest.fixture
def answerer(index, fake_encoder):  # noqa: F811
    return Answerer(index, fake_encoder, k=5, abstain_model=coverage_model(), strict=True)


def test_what_a_question_asks_for():
    assert question_kind("متى سيعلن محسن مرزوق عن البديل السياسي؟") == "time"
    assert question_kind("كم عدد آيات سورة الكهف؟") == "number"
    assert question_kind("من هو مخترع المحرك البخاري؟") == "person"
    assert question_kind("أين يقع مسجد السلطان عبد المجيد؟") == "place"
    assert question_kind("Where is the mosque?") == "place"
    assert question_kind("لماذا استقال؟") == "reason"
    assert question_kind("ما عاصمة جورجيا؟") == "other"


def test_the_short_answer_is_whole_words_inside_the_span(reader):
    text = "مقدمة. " + SENTENCE + " خاتمة."
    start = text.index(SENTENCE)
    end = start + len(SENTENCE)
    s, e, p, _ = reader.best("متى سيعلن محسن مرزوق عن البديل السياسي؟", text, start, end)
    assert start <= s < e <= end and 0 < p <= 1
    assert text[s:e] == text[s:e].strip(" .،") and not text[s - 1].isalnum()
    assert "مارس" in text[s:e]  # a "when" question: the date, not the names around it
    # a span that would cross the citation's end cannot: the end bounds every candidate
    cut = text.index("مارس") + 2
    s, e, _, _ = reader.best("متى سيعلن محسن مرزوق عن البديل السياسي؟", text, start, cut)
    assert e <= cut


def test_a_how_many_question_gets_the_number_among_several(reader):
    text = "سجل فريق الترجي 3 أهداف في 2017 أمام 20 ألف متفرج في ملعب رادس."
    s, e, _, _ = reader.best("كم عدد المتفرجين في ملعب رادس؟", text, 0, len(text))
    assert "20" in text[s:e]


def test_a_question_without_a_type_word_still_reads_whole_words_inside_the_span(reader):
    text = "سجل فريق الترجي 3 أهداف في 2017 أمام 20 ألف متفرج في ملعب رادس."
    for question in ("ملعب رادس", "Radès stadium", "؟"):
        assert question_kind(question) == "other"
        s, e, _, _ = reader.best(question, text, 0, len(text))
        assert 0 <= s < e <= len(text) and text[s:e] == text[s:e].strip(" .")


def test_an_answer_carries_a_verified_short_answer_inside_its_first_citation(answerer, index):  # noqa: F811
    a = answerer.ask("من فاز على النادي الإفريقي؟")
    assert not a.abstained
    assert_verified(a, index)
    short, first = a.short_answer, a.citations[0]
    if short is not None:  # the reader may not be confident; when it speaks, it is checked
        assert verify_short(short, first, index) == ""
        assert first.start <= short.start < short.end <= first.end
    data = json.loads(json.dumps(a.to_json(), ensure_ascii=False))
    assert "short_answer" in data
    assert answer_from_json(data) == a


def test_an_abstention_has_no_short_answer(answerer):
    a = answerer.ask("ما هي عاصمة منغوليا؟")
    assert a.abstained and a.short_answer is None and a.to_json()["short_answer"] is None


def span_of(cited, index, start: int, end: int) -> ShortAnswer:
    """The words at [start:end] of the cited article, as a short answer of it."""
    text = index.articles[index.article_row[cited.article_id]].text
    return ShortAnswer(cited.article_id, start, end, text[start:end])


def test_a_short_answer_outside_its_citation_fails_its_check(answerer, index):  # noqa: F811
    a = answerer.ask("من فاز على النادي الإفريقي؟")
    first = a.citations[0]
    outside = span_of(first, index, first.end, first.end + 3)
    assert "outside" in verify_short(outside, first, index)
    wrong = ShortAnswer(first.article_id, first.start, first.start + 3, "xyz")
    assert "text differs" in verify_short(wrong, first, index)

    def reads_outside(question, text, start, end, script="arabic"):
        return end, end + 3

    answerer.reader.read = reads_outside
    with pytest.raises(CitationError, match="short answer"):
        answerer.ask("من فاز على النادي الإفريقي؟")


def test_the_chat_leads_with_the_short_answer_and_shows_the_sentence_once(index, answerer):  # noqa: F811
    a = answerer.ask("من فاز على النادي الإفريقي؟")
    first = a.citations[0]
    short = span_of(first, index, first.start, first.start + 10)
    a = replace(a, short_answer=short)
    turn = Turn(
        a, {c.article_id: index.articles[index.article_row[c.article_id]] for c in a.citations}
    )
    bubble = chat_messages([turn])[1]["content"]
    words = first.text.split()[-2]  # a word after the short answer, in the quote only once
    assert bubble.count(html.escape(words)) == 1
    assert f'<mark class="isnad-short-mark">{html.escape(short.text)}</mark>' in bubble
    assert bubble.index("isnad-short") < bubble.index("isnad-sources")
    view = open_source([turn], "t0:c1")
    assert '<mark id="isnad-mark" class="isnad-mark">' in view
    inner = f'<mark class="isnad-short-mark">{html.escape(short.text)}</mark>'
    assert view.index('id="isnad-mark"') < view.index(inner)
    lines = to_text(a).splitlines()
    assert lines[0] == f"{' '.join(short.text.split())} [1]"
    assert f"**{' '.join(short.text.split())}**" in to_text(a)
    assert f"**{' '.join(short.text.split())}** [1]" in to_markdown([a])
    assert f"<mark>{html.escape(short.text)}</mark>" in to_html([a])


def test_a_garbled_reader_model_is_one_line_that_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("ISNAD_CALIBRATION", str(tmp_path))
    assert "same" in load_reader_model().groups  # none there: the shipped one
    (tmp_path / "reader_model.json").write_text("{", encoding="utf-8")
    with pytest.raises(ReaderModelError, match="refit it with `python bench/reader.py"):
        load_reader_model()
