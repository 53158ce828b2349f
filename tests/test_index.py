"""The index directory: exact offsets, incremental updates, and safety against interruption."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index import build as build_mod
from index import store as store_mod
from index.build import BuildError, build_index, sentence_text
from index.chunking import ChunkerSettings
from index.store import IndexError_, IndexMismatch, IndexMissing, load_index, read_manifest
from qa.retrieve import chunk_sentences

ROOT = Path(__file__).resolve().parent.parent

ARTICLES = {
    "politics/turkey.txt": (
        "تركيا تدعم سوريا\n\nأعلنت وزارة الدفاع التركية، اليوم الأربعاء، أن الإدارة السورية "
        "طلبت دعماً رسمياً من أنقرة. وَقَالَ الْمُتَحَدِّثُ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً.\n"
        "وكانت قسد قد وقّعت في شهر آذار اتفاقاً مع الرئيس السوري أحمد الشرع.\n"
    ),
    "sport/match.md": "# الترجي يفوز\n\nفاز الترجي الرياضي على النادي الإفريقي بهدفين 🎉⚽.\n",
    "english.txt": "Markets rally\n\nStocks rose 3.5 percent on Monday. Analysts were surprised.\n",
}


def write_corpus(root: Path, articles: dict[str, str] = ARTICLES) -> Path:
    for rel, text in articles.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus")


def test_every_chunk_and_sentence_slices_back_and_covers_the_article(tmp_path, fake_encoder):
    corpus = write_corpus(tmp_path / "c")
    (corpus / "crlf.txt").write_bytes("عنوان\r\n\r\nسطر أول.\r\nسطر ثان 👨‍👩‍👧.\r\n".encode())
    (corpus / "bom.txt").write_bytes("\ufeffBOM title\n\nBody text here.".encode())
    big = "جملة طويلة عن الاقتصاد التونسي والأسعار. " * 80
    (corpus / "long.txt").write_text("طويل\n\n" + big, encoding="utf-8")
    build_index([corpus], tmp_path / "ix", fake_encoder)
    ix = load_index(tmp_path / "ix")

    assert {a.id for a in ix.articles} == set(ARTICLES) | {"crlf.txt", "bom.txt", "long.txt"}
    crlf = ix.articles[ix.article_row["crlf.txt"]]
    assert crlf.text == "عنوان\n\nسطر أول.\nسطر ثان 👨‍👩‍👧.\n"
    assert ix.articles[ix.article_row["bom.txt"]].text.startswith("BOM title")
    for row, article in enumerate(ix.articles):
        rows = np.flatnonzero(ix.chunk_article == row)
        covered = np.zeros(len(article.text), dtype=bool)
        for r in rows:
            c = ix.chunk(r)
            assert ix.chunk_text(r) == article.text[c.start : c.end]
            covered[c.start : c.end] = True
        assert covered.all(), article.id
        for r in ix.sentence_rows(row):
            s, e = ix.sent_start[r], ix.sent_end[r]
            assert 0 <= s < e <= len(article.text) and article.text[s:e].strip()
    assert len(np.flatnonzero(ix.chunk_article == ix.article_row["long.txt"])) > 3


def expected_vectors(ix, encoder) -> tuple[np.ndarray, np.ndarray]:
    """(sentence vectors, chunk vectors) as the build defines them: each sentence embedded as
    index.build.sentence_text says, each chunk the unit mean of the sentences it overlaps."""
    texts = [
        sentence_text(ix.articles[a], int(s), int(e))
        for a, s, e in zip(ix.sent_article, ix.sent_start, ix.sent_end, strict=True)
    ]
    sent = encoder.encode_documents(texts)
    lo, hi = chunk_sentences(ix)
    assert (hi > lo).all()  # every chunk holds a sentence
    chunks = np.stack([sent[a:b].sum(0) for a, b in zip(lo, hi, strict=True)])
    return sent, chunks / np.linalg.norm(chunks, axis=1, keepdims=True)


def test_vectors_and_faiss_match_brute_force(corpus, tmp_path, fake_encoder):
    build_index([corpus], tmp_path / "ix", fake_encoder)
    ix = load_index(tmp_path / "ix", encoder_model_id=fake_encoder.model_id)
    sent, chunks = expected_vectors(ix, fake_encoder)
    assert np.allclose(ix.sent_vectors, sent, atol=1e-6)
    assert np.allclose(ix.chunk_vectors, chunks, atol=1e-5)
    q = fake_encoder.encode_queries(["وزارة الدفاع التركية"])
    scores, ids = ix.faiss_index.search(q, len(ix))
    brute = ix.chunk_vectors @ q[0]
    assert list(ids[0]) == list(np.argsort(-brute, kind="stable"))
    assert np.allclose(scores[0], np.sort(brute)[::-1], atol=1e-5)


def test_rebuild_embeds_only_what_changed(corpus, tmp_path, fake_encoder):
    ix_dir = tmp_path / "ix"
    first = build_index([corpus], ix_dir, fake_encoder)
    assert first.texts_embedded > 0 and sorted(first.added) == sorted(ARTICLES)
    # each token embedded once: the sentences are, the chunks' own texts are not
    ix = load_index(ix_dir)
    sentences = {
        sentence_text(ix.articles[a], int(s), int(e))
        for a, s, e in zip(ix.sent_article, ix.sent_start, ix.sent_end, strict=True)
    }
    assert set(fake_encoder.embedded_documents) == sentences

    fake_encoder.calls.clear()
    again = build_index([corpus], ix_dir, fake_encoder)
    assert fake_encoder.embedded_documents == []
    assert again.unchanged == 3 and not again.added and not again.changed

    (corpus / "english.txt").write_text("Markets fall\n\nStocks fell on Tuesday.\n")
    (corpus / "new.txt").write_text("خبر جديد\n\nافتتح معرض الكتاب في تونس.\n", encoding="utf-8")
    (corpus / "sport" / "match.md").unlink()
    fake_encoder.calls.clear()
    report = build_index([corpus], ix_dir, fake_encoder)
    assert report.changed == ["english.txt"] and report.added == ["new.txt"]
    assert report.removed == ["sport/match.md"]
    embedded = fake_encoder.embedded_documents
    assert embedded and all(("Markets fall" in t or "خبر جديد" in t or "Stocks fell" in t
                             or "معرض الكتاب" in t) for t in embedded)  # fmt: skip

    ix = load_index(ix_dir)
    assert sorted(a.id for a in ix.articles) == ["english.txt", "new.txt", "politics/turkey.txt"]
    assert not any("الترجي" in ix.chunk_text(i) for i in range(len(ix)))
    names = {s["name"] for s in read_manifest(ix_dir)["segments"]}
    assert {d.name for d in ix_dir.iterdir() if d.name.startswith(("seg-", "data-"))} == names
    sent, chunks = expected_vectors(ix, fake_encoder)
    assert np.allclose(ix.sent_vectors, sent, atol=1e-6)
    assert np.allclose(ix.chunk_vectors, chunks, atol=1e-5)

    # the updated BM25 (stored tokens reused) ranks exactly like one built from scratch
    fresh = load_index(build_index([corpus], tmp_path / "fresh", fake_encoder).index_dir)
    for q in ("وزارة الدفاع التركية", "Stocks fell", "معرض الكتاب في تونس"):
        got, want = ix.lexical.search(q, 5), fresh.lexical.search(q, 5)
        assert [(ix.chunk(r), s) for r, s in got] == [(fresh.chunk(r), s) for r, s in want]


def test_same_text_under_two_ids_is_indexed_once(corpus, tmp_path, fake_encoder):
    (corpus / "copy.txt").write_text(ARTICLES["english.txt"], encoding="utf-8")
    report = build_index([corpus], tmp_path / "ix", fake_encoder)
    assert report.articles == 3
    # folders are read in sorted order, so copy.txt comes first and english.txt is the copy
    assert any(s.source.endswith("english.txt") and "copy.txt" in s.reason for s in report.skipped)
    assert read_manifest(tmp_path / "ix")["skipped"]


def test_interrupted_embedding_keeps_old_index_and_resumes(corpus, tmp_path, fake_encoder,
                                                           monkeypatch):  # fmt: skip
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    before = load_index(ix_dir)
    for i in range(40):
        (corpus / f"more/{i:02d}.txt").parent.mkdir(exist_ok=True)
        (corpus / f"more/{i:02d}.txt").write_text(f"خبر {i}\n\nنص الخبر رقم {i} عن تونس. " * 3)
    monkeypatch.setattr(build_mod, "SHARD", 16)
    real = fake_encoder.embed_batch
    seen = []

    def dies_midway(texts, kind):
        seen.append(len(texts))
        if len(seen) == 3:
            raise KeyboardInterrupt
        return real(texts, kind)

    monkeypatch.setattr(fake_encoder, "embed_batch", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        build_index([corpus], ix_dir, fake_encoder)
    after = load_index(ix_dir)
    assert [a.id for a in after.articles] == [a.id for a in before.articles]
    assert np.array_equal(after.chunk_vectors, before.chunk_vectors)

    monkeypatch.setattr(fake_encoder, "embed_batch", real)
    report = build_index([corpus], ix_dir, fake_encoder)
    assert report.texts_resumed == 32 and len(report.added) == 40
    assert not (ix_dir / "pending").exists()


def test_failure_while_writing_leaves_the_old_index(corpus, tmp_path, fake_encoder, monkeypatch):
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    manifest = read_manifest(ix_dir)
    (corpus / "new.txt").write_text("جديد\n\nنص جديد.", encoding="utf-8")

    def disk_full(self, folder):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod.Postings, "save", disk_full)
    with pytest.raises(BuildError, match="No space left on device.*not changed") as err:
        build_index([corpus], ix_dir, fake_encoder)
    assert "\n" not in str(err.value)
    assert read_manifest(ix_dir) == manifest
    assert len(load_index(ix_dir).articles) == 3
    names = [s["name"] for s in manifest["segments"]]
    assert sorted(p.name for p in ix_dir.iterdir() if "seg-" in p.name) == names


KILL_SCRIPT = """
import sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from conftest import FakeEncoder
from index import build
from index.build import build_index
build.SHARD = 8
class Slow(FakeEncoder):
    def embed_batch(self, texts, kind):
        time.sleep(0.3)
        return super().embed_batch(texts, kind)
build_index([{corpus!r}], {ix!r}, Slow())
"""


def test_kill_9_mid_build_leaves_a_loadable_index(corpus, tmp_path, fake_encoder):
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    for i in range(30):
        (corpus / f"k{i:02d}.txt").write_text(f"عنوان {i}\n\nجملة أولى {i}. جملة ثانية {i}.")
    script = KILL_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), corpus=str(corpus),
                                ix=str(ix_dir))  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script])
    pending = ix_dir / "pending"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(pending.rglob("shard-*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(load_index(ix_dir).articles) == 3
    done = len(list(pending.rglob("shard-*.npz"))) * 8
    report = build_index([corpus], ix_dir, fake_encoder)
    assert report.texts_resumed >= done > 0
    assert len(load_index(ix_dir).articles) == 33


def test_model_chunker_and_format_changes_are_detected(corpus, tmp_path, fake_encoder):
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    with pytest.raises(IndexMismatch, match="isnad index build"):
        load_index(ix_dir, encoder_model_id="another-model")

    report = build_index([corpus], ix_dir, fake_encoder, settings=ChunkerSettings(300, 50))
    assert "chunker settings changed" in report.note and report.texts_embedded > 0

    # an index from before sentences-only embedding (no "embedded_texts") is re-embedded once
    manifest = json.loads((ix_dir / "manifest.json").read_text())
    del manifest["embedded_texts"]
    (ix_dir / "manifest.json").write_text(json.dumps(manifest))
    report = build_index([corpus], ix_dir, fake_encoder, settings=ChunkerSettings(300, 50))
    assert "what is embedded changed" in report.note and report.texts_embedded > 0
    again = build_index([corpus], ix_dir, fake_encoder, settings=ChunkerSettings(300, 50))
    assert again.texts_embedded == 0 and not again.note

    manifest = json.loads((ix_dir / "manifest.json").read_text())
    manifest["format"] = 999
    (ix_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="format 999") as err:
        load_index(ix_dir)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("damage", ["vectors", "truncated-npz", "empty-npz", "manifest-key"])
def test_missing_and_damaged_index_are_one_line_errors(corpus, tmp_path, fake_encoder, damage):
    with pytest.raises(IndexMissing, match="isnad index build"):
        load_index(tmp_path / "nothing")
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    data = ix_dir / read_manifest(ix_dir)["segments"][0]["name"]
    if damage == "vectors":
        np.save(data / "vectors.npy", np.zeros((1, 64), dtype=np.float32))
    elif damage == "truncated-npz":
        blob = (data / "chunks.npz").read_bytes()
        (data / "chunks.npz").write_bytes(blob[: len(blob) // 2])
    elif damage == "empty-npz":
        (data / "sentences.npz").write_bytes(b"")
    else:
        manifest = json.loads((ix_dir / "manifest.json").read_text())
        del manifest["counts"]
        (ix_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexError_, match="rebuild") as err:
        load_index(ix_dir)
    assert "\n" not in str(err.value)
    build_index([corpus], ix_dir, fake_encoder)  # a damaged index is rebuilt, not reused
    assert len(load_index(ix_dir)) > 1


def test_no_articles_refuses_and_changes_nothing(corpus, tmp_path, fake_encoder):
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, fake_encoder)
    manifest = read_manifest(ix_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.pdf").write_bytes(b"%PDF")
    with pytest.raises(BuildError, match="no articles found"):
        build_index([empty], ix_dir, fake_encoder)
    assert read_manifest(ix_dir) == manifest


def test_a_second_concurrent_build_is_refused(corpus, tmp_path, fake_encoder):
    import fcntl

    ix_dir = tmp_path / "ix"
    ix_dir.mkdir()
    with open(ix_dir / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="another build"):
            build_index([corpus], ix_dir, fake_encoder)


def test_ids_cannot_write_outside_the_index(tmp_path, fake_encoder):
    dump = tmp_path / "dump.jsonl"
    rows = [{"id": "../../escape", "title": "t", "text": "نص أول"},
            {"id": "/etc/passwd", "title": "t", "text": "نص ثان"}]  # fmt: skip
    dump.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    ix_dir = tmp_path / "deep" / "ix"
    build_index([dump], ix_dir, fake_encoder)
    assert {p.name for p in (tmp_path / "deep").iterdir()} == {"ix"}
    assert not (tmp_path / "escape").exists()
    assert {a.id for a in load_index(ix_dir).articles} == {"../../escape", "/etc/passwd"}


def test_cli_build_and_status(corpus, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import cli
    from tests.conftest import FakeEncoder

    monkeypatch.setattr(cli, "_encoder", lambda model: FakeEncoder())
    (corpus / "bad.txt").write_bytes(b"\xff\xfe not utf8")
    runner = CliRunner()
    ix = str(tmp_path / "ix")
    out = runner.invoke(cli.main, ["index", "build", str(corpus), "--index", ix])
    assert out.exit_code == 0, out.output
    assert "3 articles" in out.output and "bad.txt" in out.output
    status = runner.invoke(cli.main, ["index", "status", "--index", ix, "--json"])
    data = json.loads(status.output)
    assert data["articles"] == 3 and data["model"]["id"] == "fake-trigram-64"
    assert [Path(s["source"]).name for s in data["skipped_files"]] == ["bad.txt"]
    assert data["embedded_texts"] == 2 and data["segments"][0]["deleted_articles"] == 0
    text = runner.invoke(cli.main, ["index", "status", "--index", ix]).output
    assert "re-embeds" not in text and "segments   1 (0 replaced" in text
    (corpus / "english.txt").write_text("Markets fall\n\nStocks fell on Tuesday.\n")
    out = runner.invoke(cli.main, ["index", "build", str(corpus), "--index", ix, "--json"])
    assert json.loads(out.stdout)["segments_written"] == 1
    data = json.loads(runner.invoke(cli.main, ["index", "status", "--index", ix, "--json"]).output)
    assert [s["deleted_articles"] for s in data["segments"]] == [1, 0]
    # an index from before sentences-only embedding says its next build re-embeds it
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    del manifest["embedded_texts"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    old = runner.invoke(cli.main, ["index", "status", "--index", ix])
    assert old.exit_code == 0 and "next `isnad index build` re-embeds every article" in old.output

    missing = runner.invoke(cli.main, ["index", "status", "--index", str(tmp_path / "none")])
    assert missing.exit_code == 1 and missing.output.count("\n") == 1
    assert "isnad index build" in missing.output
    nothing = runner.invoke(cli.main, ["index", "build", str(tmp_path / "nope"), "--index", ix])
    assert nothing.exit_code == 1 and "no such file or folder" in nothing.output


def test_a_10_mb_article_is_skipped_with_a_reason(corpus, tmp_path, fake_encoder):
    (corpus / "huge.txt").write_text("عنوان\n\n" + "كلمة " * 2_000_000, encoding="utf-8")
    report = build_index([corpus], tmp_path / "ix", fake_encoder)
    assert report.articles == 3
    (reason,) = [s.reason for s in report.skipped if s.source.endswith("huge.txt")]
    assert "--max-chars" in reason and "\n" not in reason
