import math

import numpy as np
import pytest

from index.lexical import (
    LexicalIndex,
    LexicalIndexError,
    Postings,
    coverage,
    normalize,
    script_of,
    tokenize,
    tokenize_with_spans,
)

MIXED = "قالَ المُتَحَدِّثُ ﻷنّ ﷲ ١٢ الحـــكومة 🇸🇾 said: Elections, running! ٢٠١٧م إِلى ﬁnal 😀"

DOCS = [
    "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الحُكُومَةِ إِنَّ الاِنْتِخَابَاتِ سَتُجْرَى فِي شَهْرِ أَيْلُول.",
    "افتتح أحمد المعرض الدولي للكتاب في مدينة الإسكندرية بحضور الناشرين.",
    "ارتفعت أسعار النفط في الأسواق العالمية بعد قرار منظمة أوبك خفض الإنتاج.",
    "فاز المنتخب الوطني لكرة القدم على منافسه بثلاثة أهداف في المباراة النهائية.",
    "أعلنت وزارة الصحة عن حملة تطعيم جديدة ضد شلل الأطفال في المدارس عام ٢٠١٧.",
    "",
]


def test_diacritics_are_stripped():
    assert normalize("وَقَالَ الْمُتَحَدِّثُ")[0] == normalize("وقال المتحدث")[0] == "وقال المتحدث"


def test_offset_map_shape():
    norm, offsets = normalize(MIXED)
    assert len(offsets) == len(norm) + 1
    assert offsets[-1] == len(MIXED)
    assert all(a <= b for a, b in zip(offsets[:-1], offsets[1:], strict=True))


def test_each_normalised_char_comes_from_an_original_char_with_that_letter():
    norm, offsets = normalize(MIXED)
    for i, c in enumerate(norm):
        assert c in normalize(MIXED[offsets[i]])[0], (i, c, MIXED[offsets[i]])


def test_mapped_spans_slice_original_to_the_same_normalised_text():
    norm, offsets = normalize(MIXED)
    # Span ends that do not cut through one original char's expansion (ﷲ -> الله, ﻷ -> لا).
    starts = [a for a in range(len(norm)) if a == 0 or offsets[a - 1] != offsets[a]]
    ends = [b for b in range(1, len(norm) + 1) if offsets[b] != offsets[b - 1]]
    assert len(starts) > len(MIXED) // 2
    for a in starts:
        for b in ends:
            if b > a:
                original = MIXED[offsets[a] : offsets[b - 1] + 1]
                assert normalize(original)[0] == norm[a:b]


def test_plain_text_maps_to_itself():
    text = "abc def"
    assert normalize(text) == (text, list(range(len(text) + 1)))
    assert normalize("") == ("", [0])


def test_alef_forms_tokenise_the_same():
    assert tokenize("أحمد") == tokenize("احمد") == tokenize("إحمد") == tokenize("آحمد") != []


def test_other_letter_foldings():
    assert normalize("مدرسة مصطفى مسؤول رئيس")[0] == "مدرسه مصطفي مسوول رييس"


def test_arabic_indic_digits_match_ascii():
    assert normalize("٢٠١٧ ۲۰۱۷")[0] == "2017 2017"
    assert tokenize("عام ٢٠١٧م") == tokenize("عام 2017")
    index = LexicalIndex.build(["مباراة 2016", "مباراة 2017", "مباراة 2018"])
    assert index.search("٢٠١٧", 3)[0][0] == 1


def test_tatweel_removed():
    assert normalize("الحـــكومة")[0] == normalize("الحكومة")[0]
    assert "\u0640" not in normalize(MIXED)[0]


def test_presentation_forms_unfold():
    assert normalize("ﻷن ﷲ")[0] == "لان الله"


def test_emoji_and_english_tokens_slice_back_to_words():
    spans = tokenize_with_spans(MIXED)
    words = [MIXED[a:b] for _, a, b in spans]
    assert "Elections" in words and "running" in words and "٢٠١٧" in words
    assert ("elect", "run") == tuple(s for s, *_ in spans if s in ("elect", "run"))
    assert not any("😀" in w or "🇸" in w for w in words)
    for stem, a, b in spans:
        assert tokenize(MIXED[a:b]) == [stem]
    assert [s for s, _, _ in spans] == tokenize(MIXED)


def test_stopwords_and_single_letters_dropped():
    assert tokenize("متى كم كيف من في على إلى وفي و ب the a of What is 5") == ["5"]


def test_coverage():
    question = "متى وُلِد جمال خاشقجي؟"
    assert coverage(question, "ولد جمال خاشقجي عام 1958") == 1.0
    assert coverage(question, "توفي جمال خاشقجي عام 2018") == pytest.approx(2 / 3)
    assert coverage("متى؟", "أي نص") == 0.0
    assert coverage(question, "") == 0.0


def test_script_of():
    assert script_of("متى وُلِد جمال خاشقجي؟") == "arabic"
    assert script_of("ما هو BBC؟") == "arabic"
    assert script_of("When was Jamal Khashoggi born?") == "latin"
    assert script_of("ﻷن") == "arabic"
    assert script_of("日本語") == "other"
    assert script_of("2017 ?!") == "none"


def test_search_finds_document_despite_other_diacritics_and_alef_forms():
    index = LexicalIndex.build(DOCS)
    assert len(index) == len(DOCS)
    assert index.search("ماذا قال المتحدث باسم الحكومة عن الانتخابات؟", 3)[0][0] == 0
    assert index.search("مَن اِفْتَتَحَ مَعْرِض الكِتَاب في الاسكندريه؟", 3)[0][0] == 1
    assert index.search("لماذا ارتفعت اسعار النفط؟", 3)[0][0] == 2
    assert index.search("متى بدأت حملة التطعيم؟ 2017", 3)[0][0] == 4


def test_results_are_positive_sorted_and_capped():
    index = LexicalIndex.build(DOCS)
    hits = index.search("في المباراة النهائية أعلنت الحكومة عن أسعار", 2)
    assert len(hits) == 2
    assert all(s > 0 for _, s in hits)
    assert hits[0][1] >= hits[1][1]
    queries = ["الحكومة", "النفط", "كرة القدم"]
    assert index.search_batch(queries, 3) == [index.search(q, 3) for q in queries]


def test_queries_without_known_tokens_return_nothing():
    index = LexicalIndex.build(DOCS)
    assert index.search("ما هو؟ من، في... !!", 5) == []
    assert index.search("what is the", 5) == []
    assert index.search("zebra كلمةغيرموجودة", 5) == []
    assert index.search("", 5) == []


def test_empty_corpus(tmp_path):
    for texts in ([], ["", "  ؟ "]):
        index = LexicalIndex.build(texts)
        assert len(index) == len(texts)
        assert index.search("الحكومة", 5) == []
        index.save(tmp_path)
        loaded = LexicalIndex.load(tmp_path)
        assert len(loaded) == len(texts) and loaded.search("الحكومة", 5) == []


def test_save_load_round_trip(tmp_path):
    index = LexicalIndex.build(DOCS)
    target = tmp_path / "lexical"
    target.mkdir()
    index.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["lexical"]
    loaded = LexicalIndex.load(target)
    queries = ["قال المتحدث", "أحمد الكتاب", "النفط أوبك", "المنتخب", "٢٠١٧", "zzz"]
    assert len(loaded) == len(index)
    assert loaded.search_batch(queries, 10) == index.search_batch(queries, 10)


def test_load_rejects_missing_or_stale_index(tmp_path):
    with pytest.raises(LexicalIndexError, match="rebuild"):
        LexicalIndex.load(tmp_path)
    LexicalIndex.build(DOCS).save(tmp_path)
    manifest = tmp_path / "lexical.json"
    stale = manifest.read_text().replace('"tokenizer_version": 1', '"tokenizer_version": 0')
    manifest.write_text(stale)
    with pytest.raises(LexicalIndexError, match="tokenizer version"):
        LexicalIndex.load(tmp_path)


def brute_force_bm25(docs: list[list[str]], query: list[str], k1=1.5, b=0.75) -> np.ndarray:
    """Lucene BM25, as bm25s computes it by default: every query token counts (repeats too)."""
    n = len(docs)
    avg_len = sum(len(d) for d in docs) / n
    scores = np.zeros(n)
    for term in query:
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            scores[i] += idf * tf / (tf + k1 * (1 - b + b * len(d) / avg_len))
    return scores


def test_scores_equal_brute_force_bm25():
    docs = [tokenize(t) for t in DOCS]
    index = LexicalIndex.build(DOCS)
    queries = [
        "الحكومة الانتخابات في الحكومة",
        "أحمد الكتاب الاسكندرية",
        "أسعار النفط الأسواق العالمية",
        "المنتخب المباراة أهداف حملة",
        "عام ٢٠١٧ المدارس الصحة",
        "في المباراة النهائية أعلنت الحكومة عن أسعار",
    ]
    for query in queries:
        expected = brute_force_bm25(docs, tokenize(query))
        positive = [i for i in range(len(docs)) if expected[i] > 0]
        ranked = sorted(positive, key=lambda i: -expected[i])
        hits = index.search(query, len(docs))
        assert [i for i, _ in hits] == ranked, query
        assert [s for _, s in hits] == pytest.approx([expected[i] for i in ranked], rel=1e-5)


def test_idf_ranks_rare_words_above_common_ones_and_unseen_highest():
    ix = LexicalIndex.build(["القط في البيت", "القط نائم", "سيارة حمراء", "القط والسيارة"])
    idf = ix.idf(tokenize("القط حمراء طائرة"))
    cat, red, plane = (idf[t] for t in tokenize("القط حمراء طائرة"))
    assert cat < red < plane
    assert LexicalIndex.build([""]).idf(["x"])["x"] > 0  # no BM25 at all: every word unseen


def test_segments_with_deletions_score_like_one_index_of_the_live_documents():
    """Postings written at different times score together with collection statistics over the
    live documents only: what a fresh index of those documents would score."""
    docs = [tokenize(t) for t in DOCS]
    first, second = Postings.from_tokens(docs[:4]), Postings.from_tokens(docs[4:] + docs[:2])
    alive = np.array([False, True, True, False])  # docs 0 and 3 replaced, say
    index = LexicalIndex([first, second], [alive, None])
    live = [docs[1], docs[2], *docs[4:], docs[0], docs[1]]
    fresh = LexicalIndex.from_tokens(live)
    assert len(index) == len(fresh) == len(live)
    for query in ("الحكومة الانتخابات", "أسعار النفط", "المنتخب المباراة", "معرض الكتاب zzz"):
        got, want = index.search(query, len(live)), fresh.search(query, len(live))
        assert [r for r, _ in got] == [r for r, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-9)
        tokens = tokenize(query)
        assert index.idf(tokens) == pytest.approx(fresh.idf(tokens))
    mask = np.zeros(len(live), bool)
    mask[[0, 5]] = True
    assert {r for r, _ in index.search_batch(["الحكومة المعرض"], 9, [mask])[0]} <= {0, 5}
