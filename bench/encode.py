"""Encoder speed: passages/s for ~600-character Arabic passages and single-query latency,
fp32 vs bf16, on this machine. Prints a table and writes JSON.

    python bench/encode.py [--corpus seeds/ant-news-sample.jsonl] [--passages 256]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def passages_from(corpus: Path, n: int, size: int) -> list[str]:
    out = []
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            for lo in range(0, len(text) - size + 1, size):
                out.append(text[lo : lo + size])
                if len(out) == n:
                    return out
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT / "seeds" / "ant-news-sample.jsonl")
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--chars", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--model", default=None, help="sentence-transformers model (default: bundled)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "encode.json")
    args = ap.parse_args()

    from index.encoder import configure_threads, load_encoder

    threads = configure_threads()
    passages = passages_from(args.corpus, args.passages, args.chars)
    questions = [p[:50] + "؟" for p in passages[: args.queries]]
    rows = []
    for precision in ("fp32", "bf16"):
        enc = load_encoder(args.model, precision=precision)
        ids = enc._model.tokenizer(passages)["input_ids"]
        tokens = sum(map(len, ids)) / len(ids)
        enc.encode_documents(passages[: args.batch_size], batch_size=args.batch_size)  # warm-up
        t0 = time.perf_counter()
        enc.encode_documents(passages, batch_size=args.batch_size)
        rate = len(passages) / (time.perf_counter() - t0)
        enc.encode_queries(questions[:3])
        lat = []
        for q in questions:
            t0 = time.perf_counter()
            enc.encode_queries([q])
            lat.append((time.perf_counter() - t0) * 1000)
        rows.append(
            {
                "precision": precision,
                "dtype_used": enc.dtype,
                "passages": len(passages),
                "mean_tokens": round(tokens, 1),
                "passages_per_s": round(rate, 2),
                "query_ms_median": round(statistics.median(lat), 2),
                "query_ms_p95": round(sorted(lat)[int(0.95 * (len(lat) - 1))], 2),
            }
        )
    result = {
        "machine": {"cpus": os.cpu_count(), "threads": threads, "processor": platform.processor()},
        "chars_per_passage": args.chars,
        "batch_size": args.batch_size,
        "results": rows,
    }
    print(f"{'precision':10}{'passages/s':>12}{'query ms (median)':>20}{'p95':>8}{'tokens':>8}")
    for r in rows:
        print(f"{r['precision']:10}{r['passages_per_s']:>12}{r['query_ms_median']:>20}"
              f"{r['query_ms_p95']:>8}{r['mean_tokens']:>8}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
