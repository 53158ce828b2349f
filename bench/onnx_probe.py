"""Probe: does ONNX Runtime (fp32, and int8 dynamic per-channel) embed passages faster than the
project's own PyTorch encoder (bf16 where the CPU has it) for the default model, and how close
are its vectors? Prints a table and writes JSON. The probe that led to index/onnx_backend.py
(the int8 backend on CPUs without bf16); onnx and onnxruntime are ordinary dependencies now.

    python bench/onnx_probe.py [--corpus /work/shared/corpora/ant-news.jsonl] [--passages 128]
                               [--work /tmp/onnx] [--reexport] [--repeats 3]

Models are exported once into --work (reused on later runs unless --reexport):
  model.onnx       torch.onnx.export(dynamo=False, opset 17), eager attention, fp32
  model_opt.onnx   onnxruntime.transformers.optimizer (model_type="bert": fused attention etc.)
  model_int8.onnx  quantize_dynamic(model_opt.onnx, per_channel=True, weight_type=QInt8)
ONNX vectors: last hidden state mean-pooled over the attention mask (prompt included, as the
model's own Pooling does), L2-normalised; texts get the model's "passage: " / "query: " prompts.
Passage speed: batches of 32 sorted by length, 2 intra-op threads (spinning off, like the
project's OMP_WAIT_POLICY=PASSIVE); each timing runs --repeats times (variants interleaved) and
the median is kept. Query latency: one question per call, 1 thread, median over the questions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EVAL = Path("/work/shared/eval/arcd/questions.jsonl")
ENGLISH = ROOT / "bench" / "data" / "english-arcd.jsonl"
sys.path.insert(0, str(ROOT / "bench"))

from encode import passages_from  # noqa: E402


def questions_from(n: int) -> list[str]:
    """n/2 Arabic ARCD questions (the first with a translation) and their hand-made English."""
    english = {}
    for line in ENGLISH.read_text("utf-8").splitlines():
        rec = json.loads(line)
        english[rec["id"]] = rec["question"]
    arabic = [json.loads(x) for x in EVAL.read_text("utf-8").splitlines()]
    arabic = [q for q in arabic if q["id"] in english][: n // 2]
    return [q["question"] for q in arabic] + [english[q["id"]] for q in arabic]


def export(model_dir: Path, work: Path, tokenizer) -> dict:
    """Export fp32, optimise, quantise; returns seconds per step."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel

    work.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.perf_counter()
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):  # positional inputs, one output
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    enc = tokenizer.encode_batch(["passage: hello world", "passage: a longer text here, ok"])
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with torch.inference_mode():
        torch.onnx.export(
            Hidden(bert),
            (ids, mask, torch.zeros_like(ids)),
            str(work / "model.onnx"),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + ["last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    times["export_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    opt = optimize_model(str(work / "model.onnx"), model_type="bert", num_heads=12, hidden_size=384)
    fused = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    opt.save_model_to_file(str(work / "model_opt.onnx"))
    times["optimize_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    quantize_dynamic(
        str(work / "model_opt.onnx"),
        str(work / "model_int8.onnx"),
        per_channel=True,
        weight_type=QuantType.QInt8,
        # the fused Attention etc. (com.microsoft ops) defeat ONNX shape inference; without
        # this: "RuntimeError: Unable to find data type for weight_name=..."
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    times["quantize_s"] = time.perf_counter() - t0
    quantize_dynamic(
        str(work / "model.onnx"),
        str(work / "model_int8_noopt.onnx"),
        per_channel=True,
        weight_type=QuantType.QInt8,
    )
    times = {k: round(v, 1) for k, v in times.items()}
    times["fused_ops"] = fused
    (work / "export_times.json").write_text(json.dumps(times, indent=1) + "\n")
    return times


class OrtEncoder:
    def __init__(self, path: Path, tokenizer, threads: int, spin: bool) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        t0 = time.perf_counter()
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.load_s = time.perf_counter() - t0
        self.inputs = {i.name for i in self.sess.get_inputs()}
        self.tok = tokenizer

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = self.sess.run(None, {k: v for k, v in feed.items() if k in self.inputs})
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: list[str], prompt: str, batch_size: int = 32) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            out[idx] = self.embed([prompt + texts[i] for i in idx])
        return out


def rowcos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def medmin(c: np.ndarray) -> list[float]:
    return [round(float(np.median(c)), 5), round(float(c.min()), 5)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/ant-news.jsonl"))
    ap.add_argument("--passages", type=int, default=128)
    ap.add_argument("--chars", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per variant (median kept)")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads for passages")
    ap.add_argument("--spin", action="store_true", help="let ORT's threads spin while waiting")
    ap.add_argument("--work", type=Path, default=Path("/tmp/onnx"), help="where the .onnx go")
    ap.add_argument("--reexport", action="store_true", help="export/quantise again")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "onnx.json")
    args = ap.parse_args()

    os.chdir(ROOT)
    from index.encoder import configure_threads, load_encoder  # before torch is imported

    threads = configure_threads()
    from tokenizers import Tokenizer

    from index.e5model import ensure_default_model

    model_dir = Path(ensure_default_model(None))
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(512)
    tok.enable_padding(pad_id=tok.token_to_id("<pad>"), pad_token="<pad>")

    names = ("model", "model_opt", "model_int8", "model_int8_noopt")
    paths = {n: args.work / f"{n}.onnx" for n in names}
    if args.reexport or not all(p.is_file() for p in paths.values()):
        print("exporting to", args.work, flush=True)
        times = export(model_dir, args.work, tok)
    else:
        times = json.loads((args.work / "export_times.json").read_text())
    sizes = {p.name: round(p.stat().st_size / 1e6, 1) for p in paths.values()}

    passages = passages_from(args.corpus, args.passages, args.chars)
    questions = questions_from(args.queries)

    base = load_encoder()  # the project's path: bf16 where the CPU has it
    ref32 = load_encoder(precision="fp32")  # to tell bf16 noise from ONNX/int8 noise
    st_ids = base._model.tokenizer(["passage: " + p for p in passages[:8]])["input_ids"]
    own_ids = [e.ids for e in tok.encode_batch(["passage: " + p for p in passages[:8]])]
    own_ids = [[i for i in ids if i != tok.token_to_id("<pad>")] for ids in own_ids]
    assert [list(x) for x in st_ids] == own_ids, "tokenizer.json differs from the model's tokenizer"
    tokens = statistics.mean(len(e.ids) for e in (tok.encode("passage: " + p) for p in passages))

    ort_models = {
        "onnx fp32": paths["model"],
        "onnx fp32 opt": paths["model_opt"],
        "onnx int8": paths["model_int8"],
        "onnx int8 no-opt": paths["model_int8_noopt"],
    }
    ort2 = {n: OrtEncoder(p, tok, args.threads, args.spin) for n, p in ort_models.items()}
    load_s = {n: round(e.load_s, 2) for n, e in ort2.items()}

    runners = {
        f"torch {base.dtype} (project)": lambda: base.encode_documents(
            passages, batch_size=args.batch_size
        ),
        "torch fp32": lambda: ref32.encode_documents(passages, batch_size=args.batch_size),
    }
    for n, e in ort2.items():
        runners[n] = lambda e=e: e.encode(passages, "passage: ", args.batch_size)

    # vectors (also the warm-up)
    vecs_p = {n: fn() for n, fn in runners.items()}
    vecs_q = {
        f"torch {base.dtype} (project)": base.encode_queries(questions),
        "torch fp32": ref32.encode_queries(questions),
    }
    for n, e in ort2.items():
        vecs_q[n] = e.encode(questions, "query: ", len(questions))

    secs = {n: [] for n in runners}
    cores = {n: [] for n in runners}  # process CPU s / wall s: ~2 when nothing else runs
    for _ in range(args.repeats):
        for n, fn in runners.items():
            c0 = time.process_time()
            secs[n].append(timed(fn))
            cores[n].append((time.process_time() - c0) / secs[n][-1])
            rate, load = len(passages) / secs[n][-1], os.getloadavg()[0]
            print(f"  {n}: {rate:.1f} passages/s, {cores[n][-1]:.2f} cores, load {load:.1f}")

    # single-question latency, 1 thread
    q1 = {"onnx int8": OrtEncoder(paths["model_int8"], tok, 1, args.spin)}
    q1["onnx int8 no-opt"] = OrtEncoder(paths["model_int8_noopt"], tok, 1, args.spin)
    q1["onnx fp32 opt"] = OrtEncoder(paths["model_opt"], tok, 1, args.spin)
    qfns = {f"torch {base.dtype} (project)": lambda q: base.encode_queries([q])}
    for n, e in q1.items():
        qfns[n] = lambda q, e=e: e.embed(["query: " + q])
    lat = {n: [] for n in qfns}
    for fn in qfns.values():
        for q in questions[:3]:
            fn(q)
    for _ in range(args.repeats):
        for n, fn in qfns.items():
            ms = [timed(lambda fn=fn, q=q: fn(q)) * 1000 for q in questions]
            lat[n].append(statistics.median(ms))

    qms = {n: round(statistics.median(v), 2) for n, v in lat.items()}
    baseline = f"torch {base.dtype} (project)"
    base_rate = len(passages) / statistics.median(secs[baseline])
    rows = []
    for n in runners:
        rate = len(passages) / statistics.median(secs[n])
        cp = rowcos(vecs_p[n], vecs_p[baseline])
        cq = rowcos(vecs_q[n], vecs_q[baseline])
        cp32 = rowcos(vecs_p[n], vecs_p["torch fp32"])
        cq32 = rowcos(vecs_q[n], vecs_q["torch fp32"])
        rows.append(
            {
                "variant": n,
                "passages_per_s": round(rate, 2),
                "runs_passages_per_s": [round(len(passages) / s, 2) for s in secs[n]],
                "runs_cores_used": [round(c, 2) for c in cores[n]],
                "best_passages_per_s": round(len(passages) / min(secs[n]), 2),
                "speedup_vs_project": round(rate / base_rate, 2),
                "cos_vs_project_passages": medmin(cp),
                "cos_vs_project_queries": medmin(cq),
                "cos_vs_torch_fp32_passages": medmin(cp32),
                "cos_vs_torch_fp32_queries": medmin(cq32),
                "query_ms_median_1thread": qms.get(n),
            }
        )

    import onnxruntime
    import torch

    result = {
        "machine": {"cpus": os.cpu_count(), "threads": threads, "processor": platform.processor()},
        "versions": {"onnxruntime": onnxruntime.__version__, "torch": torch.__version__},
        "model_dir": str(model_dir),
        "project_dtype": base.dtype,
        "passages": len(passages),
        "chars_per_passage": args.chars,
        "mean_tokens": round(tokens, 1),
        "questions": len(questions),
        "batch_size": args.batch_size,
        "ort_threads": args.threads,
        "ort_spinning": args.spin,
        "repeats": args.repeats,
        "export_times": times,
        "onnx_sizes_mb": sizes,
        "ort_session_load_s": load_s,
        "note": "cos values are [median, min] of per-row cosines",
        "results": rows,
    }
    print(f"\n{len(passages)} passages x {args.chars} chars (~{tokens:.0f} tokens), "
          f"{len(questions)} questions; project encoder dtype {base.dtype}")  # fmt: skip
    print(f"{'variant':22}{'pass/s':>8}{'x':>6}{'cos p med/min':>17}{'cos q med/min':>17}"
          f"{'q ms':>7}")  # fmt: skip
    for r in rows:
        cp, cq = r["cos_vs_project_passages"], r["cos_vs_project_queries"]
        q = r["query_ms_median_1thread"]
        print(f"{r['variant']:22}{r['passages_per_s']:>8}{r['speedup_vs_project']:>6}"
              f"{cp[0]:>9.4f}/{cp[1]:.4f}{cq[0]:>9.4f}/{cq[1]:.4f}"
              f"{(f'{q:.1f}' if q is not None else '-'):>7}")  # fmt: skip
    print("sizes MB:", sizes, " export/optimise/quantise s:", times)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
