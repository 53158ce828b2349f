"""Segments: an update writes one new segment and a deletion list, never rewrites what it keeps,
and the index it leaves answers exactly like one built from scratch."""

from __future__ import annotations

import copy
import json
import pickle
import shutil

import numpy as np
import pytest

from index import build as build_mod
from index import vectors as vector_search
from index.articles import Article, load_articles
from index.build import build_index
from index.store import StoredArticle, load_index, read_manifest
from qa.retrieve import Retriever
from tests.conftest import FakeEncoder


def write_jsonl(folder, n, *, changed=(), start=0):
    """n short news records a{start}..; those in `changed` get another second paragraph."""
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["الانتخابات", "النفط", "المنتخب", "التطعيم", "المعرض", "الميزانية", "الجفاف"]
    rows = []
    for i in range(start, start + n):
        t = topics[i % len(topics)]
        extra = f"وأضاف أن الملف أُحيل إلى البرلمان رقم {i}." if i in changed else ""
        text = f"خبر رقم {i} عن {t}. قال المسؤول إن {t} في الولاية {i % 13} يتقدم.\n\n{extra}"
        rows.append({"id": f"a{i}", "title": f"عنوان {t} {i}", "text": text})
    (folder / "news.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return folder


def files_of(folder):
    """path -> (size, mtime_ns) of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def by_chunk(ix):
    """Each chunk (article id, start, end) -> (its vector, its sentences' vectors)."""
    out = {}
    for r in range(len(ix)):
        c = ix.chunk(r)
        sents = [
            s
            for s in ix.sentence_rows(int(ix.chunk_article[r]))
            if ix.sent_start[s] < c.end and ix.sent_end[s] > c.start
        ]
        out[(c.article_id, c.start, c.end)] = (ix.chunk_vectors[r], ix.sent_vectors[sents])
    return out


def assert_same_index(a, b):
    """Two indexes hold the same articles, chunks, vectors, BM25 scores and dense rankings
    (row numbers may differ: rows follow segment order)."""
    assert sorted(x.id for x in a.articles) == sorted(x.id for x in b.articles)
    va, vb = by_chunk(a), by_chunk(b)
    assert va.keys() == vb.keys()
    for key, (chunk, sents) in va.items():
        assert np.allclose(chunk, vb[key][0], atol=1e-5)
        assert np.allclose(sents, vb[key][1], atol=1e-6)
    encoder = FakeEncoder()
    for q in ("الانتخابات في الولاية 3", "النفط يتقدم", "البرلمان رقم 4", "خبر رقم 7"):
        got, want = a.lexical.search(q, 8), b.lexical.search(q, 8)
        assert [(a.chunk(r), round(s, 9)) for r, s in got] == [
            (b.chunk(r), round(s, 9)) for r, s in want
        ]
        v = encoder.encode_queries([q])
        (sa,), (ra,) = vector_search.search(a.faiss_index, v, 6, None, a.chunk_vectors)
        (sb,), (rb,) = vector_search.search(b.faiss_index, v, 6, None, b.chunk_vectors)
        assert np.allclose(sa, sb, atol=1e-5)
        assert {a.chunk(r) for r in ra} == {b.chunk(r) for r in rb} or np.allclose(sa[-1], sa[-2])


def test_an_update_writes_one_segment_and_keeps_the_rest_untouched(tmp_path, monkeypatch):
    corpus = write_jsonl(tmp_path / "c", 30)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    (first,) = read_manifest(ix_dir)["segments"]
    before = files_of(ix_dir / first["name"])

    write_jsonl(corpus, 31, changed={4})  # a4 changed, a30 added
    chunked = []
    real = build_mod.chunk_article
    monkeypatch.setattr(build_mod, "chunk_article", lambda a, s: chunked.append(a.id) or real(a, s))
    report = build_index([corpus], ix_dir, FakeEncoder())
    assert chunked == ["a4", "a30"]  # only the new and changed articles, each once
    assert report.changed == ["a4"] and report.added == ["a30"] and report.unchanged == 29
    manifest = read_manifest(ix_dir)
    kept, new = manifest["segments"]
    assert kept["name"] == first["name"] and files_of(ix_dir / first["name"]) == before
    assert kept["deleted"] == [4]  # a4's old rows stay on disk, masked
    assert new["articles"] == 2
    written = sum(size for size, _ in files_of(ix_dir / new["name"]).values())
    assert written < 0.25 * sum(size for size, _ in before.values())
    assert manifest["counts"]["segments"] == 2

    ix = load_index(ix_dir)
    assert len(ix.articles) == 31 and ix.article_row["a4"] >= 29  # the new version, last
    fresh = load_index(build_index([corpus], tmp_path / "fresh", FakeEncoder()).index_dir)
    assert_same_index(ix, fresh)


def test_deleted_rows_never_come_back_from_any_search(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 20)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    write_jsonl(corpus, 19, changed={3})  # a3 changed (its old rows masked), a19 removed
    build_index([corpus], ix_dir, FakeEncoder())
    ix = load_index(ix_dir)
    assert ix.faiss_index.ntotal == len(ix) == read_manifest(ix_dir)["counts"]["chunks"]
    question = "خبر رقم 19 عن الجفاف. قال المسؤول إن الجفاف في الولاية 6 يتقدم."
    v = FakeEncoder().encode_queries([question])
    _, rows = vector_search.search(ix.faiss_index, v, 10 * len(ix))
    assert sorted(rows[0][rows[0] >= 0].tolist()) == list(range(len(ix)))  # each live row once
    words = ix.lexical.search(question, 10 * len(ix))
    assert words and all(0 <= r < len(ix) for r, _ in words)
    hits = Retriever(ix, FakeEncoder(), shift=None).search(question, k=len(ix))
    assert hits and all(0 <= h.chunk_row < len(ix) for h in hits)
    assert "a19" not in {ix.chunk(h.chunk_row).article_id for h in hits}
    a3 = ix.articles[ix.article_row["a3"]].text
    assert "البرلمان" in a3 and sum(a.id == "a3" for a in ix.articles) == 1


def test_segments_are_merged_and_deleted_rows_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(build_mod, "MERGE_FACTOR", 3)
    corpus = tmp_path / "c"
    ix_dir = tmp_path / "ix"
    counts, rewritten = [], {}
    for step in range(8):  # one new article per build, then one changed
        write_jsonl(corpus, 10 + step, changed={1} if step >= 5 else ())
        report = build_index([corpus], ix_dir, FakeEncoder())
        manifest = read_manifest(ix_dir)
        counts.append(len(manifest["segments"]))
        for seg in manifest["segments"]:
            rewritten.setdefault(seg["name"], step)
        assert report.texts_embedded <= 20  # merges reuse vectors: only new text is embedded
    # never more than MERGE_FACTOR - 1 segments of a size class (two classes here)
    assert max(counts) <= 4 and counts[-1] < 8
    assert len(rewritten) < 8 + 4  # segments written, each build at most one
    ix = load_index(ix_dir)
    fresh = load_index(build_index([corpus], tmp_path / "fresh", FakeEncoder()).index_dir)
    assert_same_index(ix, fresh)
    # a merge drops the rows it masked: no segment keeps more dead articles than live ones
    for seg in read_manifest(ix_dir)["segments"]:
        assert len(seg["deleted"]) * 2 <= seg["articles"]


def test_removing_articles_masks_them_and_a_mostly_dead_segment_is_rewritten(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 20)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    write_jsonl(corpus, 15)  # five removed
    report = build_index([corpus], ix_dir, FakeEncoder())
    assert report.removed == [f"a{i}" for i in (15, 16, 17, 18, 19)] and report.texts_embedded == 0
    (seg,) = read_manifest(ix_dir)["segments"]
    assert seg["deleted"] == [15, 16, 17, 18, 19]
    write_jsonl(corpus, 6)  # most of the segment gone: it is rewritten without them
    report = build_index([corpus], ix_dir, FakeEncoder())
    assert report.texts_embedded == 0 and report.segments_merged == 1
    (seg,) = read_manifest(ix_dir)["segments"]
    assert seg["deleted"] == [] and seg["articles"] == 6
    fresh = build_index([corpus], tmp_path / "fresh", FakeEncoder()).index_dir
    assert_same_index(load_index(ix_dir), load_index(fresh))


def downgrade_to_format_1(ix_dir):
    """Rewrite a one-segment index the way isnad wrote indexes before segments (format 1)."""
    manifest = read_manifest(ix_dir)
    (seg,) = manifest["segments"]
    data = ix_dir / seg["name"].replace("seg-", "data-")
    (ix_dir / seg["name"]).rename(data)
    (data / "lexical").mkdir()
    lexical = {"format": "isnad-lexical 1", "tokenizer_version": 1, "n_docs": seg["chunks"]}
    (data / "lexical" / "lexical.json").write_text(json.dumps(lexical))
    for name in ("postings.npz", "postings-docs.npy", "postings-tf.npy", "lexical.json"):
        (data / name).unlink()
    offsets, texts = np.load(data / "texts.npy"), (data / "texts.bin").read_bytes()
    lines = (data / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    with open(data / "articles.jsonl", "w", encoding="utf-8") as f:
        for i, line in enumerate(lines):
            rec = json.loads(line)
            rec["text"] = texts[offsets[i] : offsets[i + 1]].decode("utf-8")
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    (data / "texts.npy").unlink()
    (data / "texts.bin").unlink()
    signatures = np.load(data / "signatures.npy")
    np.savez(data / "copies.npz", signatures=signatures, cluster=np.arange(len(signatures)))
    (data / "signatures.npy").unlink()
    del manifest["segments"]
    manifest.update(format=1, data=data.name)
    (ix_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False))


def test_an_index_from_before_segments_answers_and_is_converted_without_embedding(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 12)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    want = load_index(ix_dir)
    downgrade_to_format_1(ix_dir)
    old = load_index(ix_dir)
    assert_same_index(old, want)

    write_jsonl(corpus, 13)
    report = build_index([corpus], ix_dir, FakeEncoder())
    assert report.texts_embedded == len(load_index(ix_dir).sentence_rows(12))  # only a12's
    manifest = read_manifest(ix_dir)
    assert manifest["format"] == 2 and len(manifest["segments"]) == 1
    assert not [p for p in ix_dir.iterdir() if p.name.startswith("data-")]
    fresh = load_index(build_index([corpus], tmp_path / "fresh", FakeEncoder()).index_dir)
    assert_same_index(load_index(ix_dir), fresh)


def test_large_segmented_indexes_search_each_segment_approximately(tmp_path, monkeypatch):
    """Past the exact-search bound, vectors stay where they lie (no copy) and each segment is
    searched by its own FAISS index, deleted rows excluded inside the search."""
    corpus = write_jsonl(tmp_path / "c", 64, changed={5, 6})
    exact = load_index(build_index([corpus], tmp_path / "exact", FakeEncoder()).index_dir)
    assert not vector_search.is_ivf(exact.faiss_index)
    monkeypatch.setattr(vector_search, "FLAT_MAX", 40)
    write_jsonl(corpus, 60)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    write_jsonl(corpus, 64, changed={5, 6})
    build_index([corpus], ix_dir, FakeEncoder())
    ix = load_index(ix_dir)
    assert isinstance(ix.faiss_index, vector_search.Segments)
    assert isinstance(ix.chunk_vectors, vector_search.Rows)
    assert ix.sentence_index is not None and vector_search.is_ivf(ix.faiss_index)
    rows = [0, len(ix) - 1, 7, 7]
    assert np.array_equal(ix.chunk_vectors[rows], np.asarray(ix.chunk_vectors)[rows])
    encoder = FakeEncoder()
    same = 0
    questions = [f"خبر رقم {i} عن الملف في الولاية {i % 13}" for i in range(0, 64, 4)]
    for q in questions:
        v = encoder.encode_queries([q])
        _, got = vector_search.search(ix.faiss_index, v, 5)
        _, want = vector_search.search(exact.faiss_index, v, 5)
        assert (got[0] >= 0).all()
        same += {ix.chunk(int(r)) for r in got[0]} == {exact.chunk(int(r)) for r in want[0]}
        allowed = np.zeros(len(ix), bool)
        allowed[ix.chunk_article == ix.article_row["a5"]] = True
        _, inside = vector_search.search(ix.faiss_index, v, 3, allowed)
        assert {ix.chunk(int(r)).article_id for r in inside[0] if r >= 0} == {"a5"}
    assert same >= len(questions) - 2


def test_a_crash_before_the_manifest_leaves_the_previous_index(tmp_path, monkeypatch):
    corpus = write_jsonl(tmp_path / "c", 10)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = read_manifest(ix_dir)
    write_jsonl(corpus, 11, changed={2})

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_mod, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        build_index([corpus], ix_dir, FakeEncoder())
    assert read_manifest(ix_dir) == manifest
    assert len(load_index(ix_dir).articles) == 10
    monkeypatch.undo()
    report = build_index([corpus], ix_dir, FakeEncoder())  # the written segment is not reused
    assert report.texts_resumed > 0 and report.texts_embedded == 0
    names = {s["name"] for s in read_manifest(ix_dir)["segments"]}
    assert {p.name for p in ix_dir.iterdir() if p.name.startswith("seg-")} == names
    shutil.rmtree(ix_dir)


def test_article_texts_stay_on_disk_until_read(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 12)
    ix = load_index(build_index([corpus], tmp_path / "ix", FakeEncoder()).index_dir)
    first = ix.articles[0]
    assert isinstance(first, StoredArticle)
    assert first._texts.text.cache_info().currsize == 0  # nothing decoded by loading
    plain = load_articles([corpus])[0][0]
    assert first == plain and first.text == plain.text and first.title == plain.title
    assert first._texts.text.cache_info().currsize == 1
    copied = copy.deepcopy(first)
    assert type(copied) is Article and copied == plain
    assert pickle.loads(pickle.dumps(ix.articles[5])) == ix.articles[5]
