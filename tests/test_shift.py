"""Questions in another script moved towards the corpus's language (qa.shift)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import cli
import qa.shift
from index.build import build_index
from qa.calibration import ABSTAIN_FILE, SHIPPED
from qa.retrieve import Retriever
from qa.shift import QueryShift, QueryShiftError, fit_query_shift, load_query_shift
from tests.conftest import FakeEncoder
from tests.test_retrieve import ARTICLES, make_index

ARABIC_ONLY = {k: v for k, v in ARTICLES.items() if k != "english.txt"}
ENGLISH = "Who won the football final?"
ARABIC = "من فاز في المباراة النهائية؟"


def offset_for(encoder) -> QueryShift:
    return fit_query_shift(
        encoder.encode_queries([ENGLISH, "oil prices rose"]),
        encoder.encode_queries([ARABIC, "ارتفعت أسعار النفط"]),
        encoder.model_id,
        "latin",
        "arabic",
    )


def test_english_questions_over_arabic_articles_are_moved_and_others_are_not(
    tmp_path, fake_encoder
):
    index = make_index(tmp_path, fake_encoder, ARABIC_ONLY)
    shift = offset_for(fake_encoder)
    plain = Retriever(index, fake_encoder, shift=None).encode([ENGLISH, ARABIC])
    moved = Retriever(index, fake_encoder, shift=shift).encode([ENGLISH, ARABIC])
    assert np.allclose(moved[1], plain[1])  # an Arabic question keeps its vector
    assert not np.allclose(moved[0], plain[0])
    assert np.isclose(np.linalg.norm(moved[0]), 1.0, atol=1e-5)
    arabic = fake_encoder.encode_queries([ARABIC])[0]
    assert moved[0] @ arabic > plain[0] @ arabic  # nearer its Arabic original


def test_no_shift_where_it_was_not_fitted(tmp_path, fake_encoder):
    shift = offset_for(fake_encoder)
    # the corpus has English articles: an English question searches them as it is
    mixed = make_index(tmp_path / "mixed", fake_encoder, {
        **ARABIC_ONLY, **{f"en{i}.txt": f"Markets {i}\n\nStocks rose {i} percent on Monday.\n"
                          for i in range(6)}})  # fmt: skip
    assert "latin" in Retriever(mixed, fake_encoder).corpus_scripts
    assert Retriever(mixed, fake_encoder, shift=shift).shift is None
    # fitted for another model
    arabic = make_index(tmp_path / "ar", fake_encoder, ARABIC_ONLY)
    other = QueryShift("another-model", "latin", "arabic", shift.offset, 2)
    assert Retriever(arabic, fake_encoder, shift=other).shift is None
    assert Retriever(arabic, fake_encoder, shift=shift).shift is shift


def test_saved_shift_reads_back_and_a_garbled_one_says_to_refit(tmp_path, fake_encoder):
    shift = offset_for(fake_encoder)
    path = tmp_path / "shift.json"
    qa.shift.save_query_shift(shift, path)
    back = load_query_shift(path)
    assert (back.model_id, back.source, back.target, back.pairs) == ("fake-trigram-64", "latin",
                                                                     "arabic", 2)  # fmt: skip
    assert np.allclose(back.offset, shift.offset, atol=1e-6)
    assert load_query_shift(tmp_path / "absent.json") is None
    for garbled in ('{"format": "isnad-query-shift 1", "model_id": "m"}', "[1, 2", "{}"):
        path.write_text(garbled, encoding="utf-8")
        with pytest.raises(QueryShiftError, match="refit"):
            load_query_shift(path)


def test_ask_with_a_garbled_shift_is_one_line(tmp_path, monkeypatch):
    folder = tmp_path / "calibration"
    folder.mkdir()
    shutil.copy(SHIPPED / ABSTAIN_FILE, folder)
    broken = folder / "query_shift.json"
    broken.write_text('{"format": "isnad-query-shift 1", "offset": "x"}', encoding="utf-8")
    monkeypatch.setenv("ISNAD_CALIBRATION", str(folder))
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(ARTICLES["oil.txt"], encoding="utf-8")
    build_index([corpus], tmp_path / "ix", FakeEncoder())
    out = CliRunner().invoke(cli.main, ["ask", "oil prices", "--index", str(tmp_path / "ix")])
    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines()[-1].startswith("isnad: error:")
    assert "refit" in out.stderr


@pytest.mark.slow
def test_shipped_shift_brings_english_questions_nearer_their_arabic(model_cache):
    """Pairs that are not in the fitting sets (bench/data): each English question moves nearer
    its Arabic wording; an Arabic question is left as it is."""
    from index.encoder import load_light_encoder

    encoder = load_light_encoder(cache_dir=model_cache)
    shift = load_query_shift()
    assert shift is not None and shift.model_id == encoder.model_id
    pairs = [
        ("What did Syria's administration ask Turkey for?", "ماذا طلبت الإدارة السورية من تركيا؟"),
        ("What is the name of the defence industry fair?", "ما اسم معرض الصناعات الدفاعية؟"),
        ("When did the vaccination campaign start?", "متى بدأت حملة التطعيم؟"),
        ("Who signed the agreement with the Syrian president?", "من وقع الاتفاق مع الرئيس السوري؟"),
    ]  # fmt: skip
    english = encoder.encode_queries([e for e, _ in pairs])
    arabic = encoder.encode_queries([a for _, a in pairs])
    moved = shift.apply(english, [e for e, _ in pairs])
    assert ((moved * arabic).sum(1) > (english * arabic).sum(1)).all()
    assert np.array_equal(shift.apply(arabic, [a for _, a in pairs]), arabic)
