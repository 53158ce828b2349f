"""Retrieval: exact dense search, the chunk-sentence map, and fusion that knows the script."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from index.build import build_index
from index.store import load_index
from qa.compose import ComposeSettings, candidates
from qa.retrieve import (
    RetrievalSettings,
    Retriever,
    chunk_sentences,
    corpus_scripts,
    dense_search,
    fuse,
)

ARTICLES = {
    "syria.txt": "تركيا وسوريا\n\nأعلنت وزارة الدفاع التركية أن الإدارة السورية طلبت دعماً رسمياً. "
    "وَقَالَ الْمُتَحَدِّثُ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً في أنقرة.\n",
    "sdf.txt": "قسد والحكومة\n\nوقّعت قسد في شهر آذار اتفاقاً مع الرئيس السوري أحمد الشرع "
    "لدمج المؤسسات المدنية والعسكرية.\n",
    "oil.txt": "أسعار النفط\n\nارتفعت أسعار النفط في الأسواق العالمية بعد قرار أوبك خفض الإنتاج. "
    "وقال محللون إن الأسعار قد ترتفع أكثر.\n",
    "football.txt": "الترجي يفوز\n\nفاز الترجي الرياضي على النادي الإفريقي بهدفين 🎉⚽ "
    "في المباراة النهائية.\n",
    "health.txt": "حملة تطعيم\n\nأعلنت وزارة الصحة عن حملة تطعيم جديدة ضد شلل الأطفال "
    "في المدارس عام ٢٠١٧.\n",
    "long.txt": "الاقتصاد التونسي\n\n"
    + " ".join(f"الجملة رقم {i} عن نمو الاقتصاد التونسي والصادرات." for i in range(60)),
    "english.txt": "Markets rally\n\nStocks rose 3.5 percent on Monday. Analysts were surprised.\n",
}


def make_index(root: Path, encoder, articles: dict[str, str] = ARTICLES):
    corpus = root / "corpus"
    for rel, text in articles.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    build_index([corpus], root / "ix", encoder)
    return load_index(root / "ix")


@pytest.fixture
def index(tmp_path, fake_encoder):
    return make_index(tmp_path, fake_encoder)


def test_dense_search_equals_brute_force(index, fake_encoder):
    questions = ["أسعار النفط", "الترجي الإفريقي", "Stocks on Monday", "نمو الاقتصاد"]
    vectors = fake_encoder.encode_queries(questions)
    scores, rows = dense_search(vectors, index, 10)
    exact = vectors @ index.chunk_vectors.T
    for i in range(len(questions)):
        expected = np.argsort(-exact[i], kind="stable")[:10]
        assert np.allclose(scores[i], exact[i, expected], atol=1e-5)
        assert np.allclose(exact[i, rows[i]], exact[i, expected], atol=1e-5)  # ties may swap
    # asking for more than the index holds returns every chunk once
    _, rows = dense_search(vectors, index, 10_000)
    assert sorted(rows[0].tolist()) == list(range(len(index)))


def test_chunk_sentence_map_is_exactly_the_overlapping_sentences(index):
    lo, hi = chunk_sentences(index)
    for c in range(len(index)):
        expected = [
            r
            for r in range(len(index.sent_start))
            if index.sent_article[r] == index.chunk_article[c]
            and index.sent_start[r] < index.chunk_end[c]
            and index.sent_end[r] > index.chunk_start[c]
        ]
        assert list(range(lo[c], hi[c])) == expected and expected, c


def test_sentence_maxima_equal_brute_force(index, fake_encoder):
    retriever = Retriever(index, fake_encoder)
    vectors = fake_encoder.encode_queries(["الاقتصاد التونسي", "Analysts"])
    got = retriever.sentence_maxima(vectors)
    lo, hi = chunk_sentences(index)
    cos = vectors @ index.sent_vectors.T
    for c in range(len(index)):
        assert np.allclose(got[:, c], cos[:, lo[c] : hi[c]].max(axis=1), atol=1e-6)


def test_hits_are_consistent_and_search_is_search_batch(index, fake_encoder):
    retriever = Retriever(index, fake_encoder)
    questions = ["متى ترتفع أسعار النفط؟", "من فاز في المباراة النهائية؟"]
    batch = retriever.search_batch(questions, k=4)
    assert [retriever.search(q, k=4) for q in questions] == batch
    for hits in batch:
        assert len(hits) == 4 and len({h.chunk_row for h in hits}) == 4
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        q = fake_encoder.encode_queries([questions[batch.index(hits)]])[0]
        for h in hits:
            assert h.dense == pytest.approx(float(index.chunk_vectors[h.chunk_row] @ q), abs=1e-5)
    assert index.chunk(batch[0][0].chunk_row).article_id == "oil.txt"
    assert index.chunk(batch[1][0].chunk_row).article_id == "football.txt"


def test_k_larger_than_the_index(index, fake_encoder):
    hits = Retriever(index, fake_encoder).search("النفط", k=500)
    assert sorted(h.chunk_row for h in hits) == list(range(len(index)))


def test_fuse_adds_reciprocal_ranks_and_ignores_a_zero_weight():
    scores = fuse([[7, 3], [3, 9], [9]], [1.0, 2.0, 0.0], k=10)
    assert scores == pytest.approx({7: 1 / 11, 3: 1 / 12 + 2 / 11, 9: 2 / 12})


def test_bm25_is_trusted_only_in_the_corpus_script(index, fake_encoder):
    retriever = Retriever(index, fake_encoder)
    assert corpus_scripts(index) == {"arabic"}  # one English article in seven is too few
    arabic, english = retriever.rank_batch(["أسعار النفط؟", "What about oil prices?"])
    assert arabic.lexical_weight == 1.0 and english.lexical_weight == 0.0
    assert any(h.lexical > 0 for h in arabic.hits)
    assert all(h.lexical == 0 for h in english.hits)


def test_cross_script_ranking_is_blind_to_bm25(index, fake_encoder):
    """An English question whose words BM25 would match (the English article) is ranked by
    the dense sides alone: the same as with BM25 switched off entirely."""
    with_bm25 = Retriever(index, fake_encoder).search("Stocks rose on Monday?", k=5)
    off = Retriever(index, fake_encoder, RetrievalSettings(w_lexical=0.0))
    assert off.search("Stocks rose on Monday?", k=5) == with_bm25


def test_an_english_corpus_trusts_bm25_for_english(tmp_path, fake_encoder):
    articles = {
        "a.txt": "Oil prices\n\nOil prices rose after OPEC cut output.\n",
        "b.txt": "Football\n\nThe home team won the final 2-0.\n",
        "c.txt": "Vaccines\n\nA new vaccination campaign starts in schools.\n",
    }
    index = make_index(tmp_path, fake_encoder, articles)
    retriever = Retriever(index, fake_encoder)
    (ranking,) = retriever.rank_batch(["Who won the final?"])
    assert retriever.corpus_scripts == {"latin"} and ranking.lexical_weight == 1.0
    assert index.chunk(ranking.hits[0].chunk_row).article_id == "b.txt"


def test_retriever_rejects_an_encoder_of_another_dimension(index):
    class Wide:
        dim = 128

    with pytest.raises(AssertionError, match="dimension"):
        Retriever(index, Wide())


def test_bm25s_best_chunks_are_reranked_wherever_fusion_put_them(tmp_path, fake_encoder):
    """Twelve articles share the question's common words; one holds its rare word. BM25 ranks
    that one first, the dense sides last: it still enters the reranked head, and what BM25
    adds to its rerank score also orders its sentences first among those to cite."""
    places = ["دمشق", "حلب", "حمص", "حماة", "اللاذقية", "طرطوس", "درعا", "إدلب", "الرقة", "جبلة"]
    articles = {
        f"f{i}.txt": f"متحف {p}\n\nافتتح متحف جديد للفنون في المدينة القديمة في {p} وسط حضور "
        "رسمي كبير.\n"
        for i, p in enumerate(places)
    }
    articles["zellige.txt"] = "حرف تقليدية\n\nصناعة الزليج الفاسي تستقطب الحرفيين منذ عام 1990.\n"
    index = make_index(tmp_path, fake_encoder, articles)
    question = "متى افتتح متحف الزليج في المدينة القديمة؟"
    strong = RetrievalSettings(rerank=3, w_lexical_rerank=1.0)  # BM25 decides the rerank here

    def ranked(settings):
        (ranking,) = Retriever(index, fake_encoder, settings).rank_batch([question], 3)
        return ranking, [index.chunk(h.chunk_row).article_id for h in ranking.hits]

    ranking, order = ranked(strong)
    assert ranking.hits[0].lexical > 0 and order[0] == "zellige.txt"
    assert ranked(replace(strong, lexical_head=0))[1][0] != "zellige.txt"  # never reranked
    best = candidates(ranking, ComposeSettings())[0]
    assert index.articles[int(index.sent_article[best.row])].id == "zellige.txt"
    # by default BM25 adds at most w_lexical_rerank, and only to chunks it matched
    ranking, _ = ranked(RetrievalSettings())
    assert ranking.lexical_bonus and all(
        0 < b <= RetrievalSettings().w_lexical_rerank for b in ranking.lexical_bonus.values()
    )
