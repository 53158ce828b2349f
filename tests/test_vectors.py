"""Vector search past the exact-search bound: IVF-SQ8 with a calibrated nprobe, the approximate
sentence search, filters inside it, and the same answers as exact search on a small corpus."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest

from index import vectors as vector_search
from index.build import build_index
from index.store import load_index
from qa.answer import Answerer
from qa.filters import parse_filters
from tests.conftest import FakeEncoder
from tests.test_answer import coverage_model

TOPICS = ["النفط", "الترجي", "الانتخابات", "الطقس", "الميناء", "الزيتون", "المدارس", "الصحة"]


def clustered(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d))
    x = centres[rng.integers(0, 40, n)] + rng.normal(0, 0.5, (n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_reaches_the_recall_it_was_calibrated_for_and_respects_a_mask():
    x = clustered(6000)
    queries = clustered(200, seed=1)
    index = vector_search.build_vector_index(x, flat_max=1000, queries=queries)
    assert vector_search.is_ivf(index) and index.nprobe >= 1
    exact = vector_search._exact_top(x, queries, 10)
    _, found = vector_search.search(index, queries, 10, vectors=x)
    assert vector_search.recall(found, exact) >= vector_search.RECALL
    allowed = np.zeros(len(x), bool)
    allowed[::7] = True
    _, rows = vector_search.search(index, queries[:20], 10, allowed)
    assert (rows[rows >= 0] % 7 == 0).all()
    small = vector_search.build_vector_index(x[:500], flat_max=1000)
    assert isinstance(small, faiss.IndexFlatIP) and small.ntotal == 500


def test_a_deep_search_reads_a_bounded_number_of_rows_and_keeps_the_exact_head():
    """A retrieval asks the sentence index for 1,000 rows: only the EXACT_ROWS best by their
    codes are read back and re-scored, yet its first ten are the exact search's."""
    x = clustered(20000)
    queries = clustered(50, seed=1)
    index = vector_search.build_vector_index(x, flat_max=1000, queries=queries)

    class Counting(np.ndarray):
        read = 0

        def __getitem__(self, rows):
            Counting.read += int(np.size(rows)) if not isinstance(rows, slice) else 0
            return np.asarray(x)[rows]

    counted = x.view(Counting)
    k = 1000
    _, rows = vector_search.search(index, queries, k, vectors=counted)
    assert Counting.read <= len(queries) * vector_search.EXACT_ROWS
    assert (rows >= 0).all() and all(len(set(r.tolist())) == k for r in rows)
    exact = vector_search._exact_top(x, queries, 10)
    assert vector_search.recall(rows[:, :10], exact) >= vector_search.RECALL


def write_corpus(folder, n=240):
    rng = np.random.default_rng(3)
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        words = " ".join(rng.choice(["قال", "أعلن", "الوزير", "اليوم", "المدينة", "السنة"], 6))
        text = (
            f"خبر عن {topic} رقم {i}. {words} بشأن {topic} في الولاية {i % 17}.\n\n"
            f"وأضاف المصدر أن ملف {topic} سيعرض على المجلس يوم {i % 28 + 1}."
        )
        lines.append({"id": f"a{i}", "text": text, "published": f"2016-{i % 12 + 1:02d}-01"})
    (folder / "n.jsonl").write_text(
        "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8"
    )
    return folder


def test_an_index_past_the_bound_answers_like_exact_search(tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "c")
    build_index([corpus], tmp_path / "exact", FakeEncoder())
    monkeypatch.setattr(vector_search, "FLAT_MAX", 100)
    build_index([corpus], tmp_path / "ivf", FakeEncoder())
    exact, ivf = load_index(tmp_path / "exact"), load_index(tmp_path / "ivf")
    assert exact.sentence_index is None and not vector_search.is_ivf(exact.faiss_index)
    assert ivf.sentence_index is not None and vector_search.is_ivf(ivf.faiss_index)
    assert (ivf.path / ivf.manifest["segments"][0]["name"] / "sentences.faiss").is_file()

    def answerer(ix):
        return Answerer(ix, FakeEncoder(), abstain_model=coverage_model(0.3), strict=True)

    a, b = answerer(exact), answerer(ivf)
    same = 0
    questions = [f"ملف {t} سيعرض على المجلس يوم {d}" for t in TOPICS for d in (3, 11)]
    for q in questions:
        x, y = a.ask(q), b.ask(q)
        assert y.citations, q  # verified spans (strict)
        same += x.passages[0].article_id == y.passages[0].article_id
    assert same >= 0.9 * len(questions)
    # a filter inside the approximate searches: only that month's articles come back
    f = parse_filters("2016-03-01", "2016-03-31")
    got = b.ask("خبر عن الطقس", filters=f)
    months = {ivf.catalog.published[ivf.article_row[p.article_id]][:7] for p in got.passages}
    assert months == {"2016-03"}


@pytest.mark.parametrize("n", [0, 5])
def test_tiny_and_empty_vector_sets_stay_exact(n):
    index = vector_search.build_vector_index(clustered(n) if n else np.zeros((0, 32), np.float32))
    assert isinstance(index, faiss.IndexFlatIP) and index.ntotal == n


def test_rows_of_a_large_mapped_file_are_read_exactly(tmp_path, monkeypatch):
    """Past the exact bound, rows are read with pread (in runs of consecutive rows), in the
    order asked, duplicates included; small arrays are indexed as they are."""
    monkeypatch.setattr(vector_search, "FLAT_MAX", 50)
    x = clustered(300, d=8)
    np.save(tmp_path / "v.npy", x)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    rows = np.array([7, 8, 9, 299, 0, 8, 150, 151, 3])
    calls = []
    real = vector_search.os.pread
    monkeypatch.setattr(vector_search.os, "pread", lambda *a: calls.append(a) or real(*a))
    got = vector_search.read_rows(mapped, rows)
    assert len(calls) == 6  # 0 | 3 | 7-8 | 8-9 | 150-151 | 299
    assert got.dtype == np.float32 and np.array_equal(got, x[rows])
    assert np.array_equal(vector_search.read_rows(mapped, []), x[:0])
    assert np.array_equal(vector_search.read_rows(x[:40], [1, 2]), x[[1, 2]])
