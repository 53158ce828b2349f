from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.articles import Article
from index.chunking import (
    ChunkerSettings,
    _align,
    _shadow,
    _splitter,
    chunk_article,
    split_sentences,
)

S1 = "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الْوِزَارَةِ إِنَّ الاقتصـــاد نما بنسبة 3.5% في عام 2024."
S2 = "هل انتهى الاجتماع؟ نعم، انتهى بعد ثلاث ساعات!"
S3 = "The U.S.A delegation arrived 👨‍👩‍👧 with 2.5 million dollars."


def article(text: str, id: str = "a") -> Article:
    return Article(id, "title", text)


def check_contract(a: Article, chunks, size: int | None = None) -> None:
    """Offsets slice back, chunks are in order, cover every index, none is only whitespace."""
    text = a.text
    covered = 0
    for c in chunks:
        assert c.article_id == a.id
        assert 0 <= c.start < c.end <= len(text)
        assert c.start <= covered, f"gap before {c}"
        assert text[c.start : c.end].strip(), f"whitespace-only chunk {c}"
        if size is not None:
            assert len(text[c.start : c.end].strip()) <= size
        covered = max(covered, c.end)
    assert covered == len(text)
    assert [c.start for c in chunks] == sorted({c.start for c in chunks})


def news_text(paragraphs: int = 6) -> str:
    paras = []
    for p in range(paragraphs):
        sentences = [f"{s} ({p}.{i})" for i, s in enumerate([S1, S2, S3, S1, S2])]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras) + "\n"


def test_chunks_cover_a_news_article_and_end_at_separators():
    text = news_text()
    a = article(text)
    chunks = chunk_article(a)
    assert len(chunks) > 2
    check_contract(a, chunks, size=600)
    for c in chunks:
        assert c.start == 0 or text[c.start - 1].isspace(), "chunk starts mid-word"
        assert c.end == len(text) or text[c.end - 1].isspace(), "chunk ends mid-word"


def test_sentence_ends_win_over_words_and_arabic_comma_is_not_one():
    first = "بدأ الاجتماع صباحاً، واستمر حتى الظهر، ثم انتهى ببيان مشترك. "
    text = first + "وقال المتحدث إن الجولة المقبلة ستعقد الشهر القادم في العاصمة."
    chunks = chunk_article(article(text), ChunkerSettings(size=len(first) + 10, overlap=0))
    assert text[chunks[0].start : chunks[0].end] == first


def test_arabic_question_mark_without_space_is_a_boundary():
    text = ("ماذا حدث؟" * 3) + "لماذا"
    chunks = chunk_article(article(text), ChunkerSettings(size=12, overlap=0))
    check_contract(article(text), chunks)
    assert [text[c.start : c.end] for c in chunks] == ["ماذا حدث؟"] * 3 + ["لماذا"]


def test_overlap_repeats_text_between_neighbours():
    words = " ".join(f"w{i}" for i in range(400))
    a = article(words)
    chunks = chunk_article(a, ChunkerSettings(size=100, overlap=30))
    check_contract(a, chunks, size=100)
    assert all(b.start < c.end for c, b in pairwise(chunks))


def test_repeated_passage_gets_its_own_offsets():
    para = " ".join([S1, S2, S3] * 3)
    text = f"{para}\n\nفاصل مختلف تماماً بين النسختين.\n\n{para}"
    a = article(text)
    chunks = chunk_article(a, ChunkerSettings(size=200, overlap=50))
    check_contract(a, chunks, size=200)
    second = text.rindex(para)
    assert any(c.start == second for c in chunks)


@pytest.mark.parametrize("text", ["a" * 2000, "ـ" * 1300, "👨‍👩‍👧" * 400, ("ab " * 700).strip()])
def test_repetitive_text_still_keeps_the_contract(text):
    a = article(text)
    check_contract(a, chunk_article(a, ChunkerSettings(size=100, overlap=20)))


def test_whitespace_between_chunks_is_covered():
    text = "\n\n  first paragraph here.  \n\n\n\n   \n\n second one there. \n\n\n"
    a = article(text)
    chunks = chunk_article(a, ChunkerSettings(size=20, overlap=0))
    check_contract(a, chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


@pytest.mark.parametrize("text", ["", "   \n\n\t "])
def test_empty_text_gives_no_chunks(text):
    assert chunk_article(article(text)) == []


def test_settings_are_recorded_and_checked():
    d = ChunkerSettings().as_dict()
    assert d["size"] == 600 and d["overlap"] == 100 and isinstance(d["version"], int)
    with pytest.raises(AssertionError):
        ChunkerSettings(size=100, overlap=100)


ALPHABET = st.sampled_from(
    list("ابتثجحخدذرسشصضطظعغفقكلمنهوية")
    + ["\u064e", "\u0650", "\u0651", "ـ", "ab", "Z", "3.5", "U.S.A", "👨‍👩‍👧", "🇸🇾"]
    + [" ", "  ", "\n", "\n\n", "\t", "\u00a0", "\u2029", ". ", "؟", "؟ ", "، ", "؛ ", "! ", "!!"]
    + ['." ', "»", ")"]
)
TEXTS = st.lists(ALPHABET, max_size=400).map("".join)


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.integers(10, 150), st.floats(0, 0.5))
def test_chunks_always_keep_the_contract(text, size, overlap_share):
    a = article(text)
    chunks = chunk_article(a, ChunkerSettings(size=size, overlap=int(size * overlap_share)))
    if not text.strip():
        assert chunks == []
    else:
        check_contract(a, chunks)


# --- sentences ---


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text, start, end)]


def test_sentences_do_not_split_at_decimals_abbreviations_or_arabic_comma():
    text = f"  {S1} {S2}\n{S3}  "
    assert sentences(text) == [
        S1,
        "هل انتهى الاجتماع؟",
        "نعم، انتهى بعد ثلاث ساعات!",
        S3,
    ]


def test_sentence_end_takes_closing_quotes_and_newlines_end_sentences():
    text = 'قال: «انتهى الاجتماع.» ثم غادر. He said "done." Then left\nعنوان بلا نقطة\n\n\nنص'
    assert sentences(text) == [
        "قال: «انتهى الاجتماع.»",
        "ثم غادر.",
        'He said "done."',
        "Then left",
        "عنوان بلا نقطة",
        "نص",
    ]


def test_arabic_sentence_typed_without_a_space_after_the_stop_is_split():
    # as in the bundled seed article: "(داعش).وأوضحت مصادر"
    text = "على رأسها “تنظيم الدولة” (داعش).وأوضحت مصادر أن أ.د محمد حضر.وأكدت ذلك"
    assert sentences(text) == [
        "على رأسها “تنظيم الدولة” (داعش).",
        "وأوضحت مصادر أن أ.د محمد حضر.",  # initials "أ.د" stay whole
        "وأكدت ذلك",
    ]
    assert sentences("نما 3.5% في U.S.A والعام.2020") == ["نما 3.5% في U.S.A والعام.2020"]


def test_sentences_of_a_window_use_offsets_into_the_whole_text():
    text = f"{S2} {S1} {S3}"
    start = text.index(S1)
    spans = split_sentences(text, start, start + len(S1))
    assert spans == [(start, start + len(S1))]
    # The end of the window counts as the end of the text.
    assert sentences(text, 0, text.index("؟") + 1) == ["هل انتهى الاجتماع؟"]
    assert sentences("x 3. 5", 0, 3) == ["x 3"]


def test_long_sentence_is_cut_at_a_comma_or_space():
    clause = "وأضاف المتحدث أن المفاوضات ستستمر خلال الأسابيع المقبلة"  # 55 characters
    long = "، ".join([clause] * 12) + "."
    parts = split_sentences(long)
    assert len(parts) > 1
    for s, e in parts:
        assert e - s <= 400
    assert all(long[e - 1] == "،" for s, e in parts[:-1])
    no_commas = " ".join(["كلمة"] * 200)
    cuts = sentences(no_commas)
    assert all(len(c) <= 400 and not c.startswith(" ") and not c.endswith(" ") for c in cuts)
    assert " ".join(cuts) == no_commas
    assert all(len(c) <= 400 for c in sentences("x" * 1000))


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_sentences_cover_every_non_space_character(text):
    spans = split_sentences(text)
    covered = set()
    last = 0
    for s, e in spans:
        assert last <= s < e <= len(text)
        assert not text[s].isspace() and not text[e - 1].isspace()
        assert e - s <= 400
        covered.update(range(s, e))
        last = e
    assert all(i in covered or ch.isspace() for i, ch in enumerate(text))


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.integers(10, 150))
def test_chunks_are_exactly_the_splitters_pieces(text, size):
    # The offsets come from splitting a stand-in text (see chunking._shadow); the pieces of the
    # real text, placed at those offsets, must be what langchain returns for the real text.
    settings_ = ChunkerSettings(size=size, overlap=size // 4)
    splitter = _splitter(settings_)
    pieces = splitter.split_text(text)
    spans = _align(_shadow(text), splitter.split_text(_shadow(text)), settings_.overlap)
    assert [text[s:e] for s, e in spans] == pieces
