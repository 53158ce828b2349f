"""Vector search at 100k and 1M chunks: IVF-SQ8 against exact search, on realistic synthetic data.

    python bench/scale.py --index /tmp/isnad-bench/news --arcd ../shared/eval/arcd \\
        --tydi ../shared/eval/tydi [--sizes 100000 1000000]

The data: the real chunk and sentence vectors of an ant-news index (18,131 chunks, 38,182
sentences), tiled to the target size with Gaussian noise (each copy at cosine ~.94 to its
original, so copies are neighbours but not duplicates) and the same sentence-per-chunk structure
(2.1 sentences a chunk). Queries are real questions embedded by the default model: nprobe is
calibrated on ARCD's (as a build calibrates on question-like vectors) and recall is reported on
TyDi's, so the figure is not measured on what it was tuned on.

Per size: build seconds (train + add) and bytes of the chunk and sentence indexes, the nprobe
chosen, recall@10 against exact search for chunks and sentences, the median and p95 of one
question's vector work as qa.retrieve does it past the bound (chunk search at depth 100,
sentence search for 1,000 sentences, each fetching 4x candidates re-scored exactly from the
memory-mapped float vectors), and the process's peak RSS; then a projection to 10M.
Each size runs in a fresh process (`--one`) so RSS is its own. Writes bench/results/scale.json.

What it does NOT measure: BM25, the sentence scoring and the rest of an answer at these sizes
(bench/scale_answers.py does, on an index written by isnad's own store).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOISE = 0.25  # norm of the noise added to a tiled copy (cosine ~.94 to its original)


def memory_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, from /proc: getrusage's ru_maxrss would
    count the parent's memory at the fork (Linux carries it across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def tile(base: np.ndarray, n: int, rng) -> np.ndarray:
    reps = -(-n // len(base))
    out = np.empty((n, base.shape[1]), np.float32)
    for r in range(reps):
        lo, hi = r * len(base), min(n, (r + 1) * len(base))
        if lo >= n:
            break
        block = base[: hi - lo].copy()
        if r:  # the first copy is the real data
            block += rng.normal(0, NOISE / np.sqrt(base.shape[1]), block.shape).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[lo:hi] = block
    return out


def questions(folder: Path, encoder, n: int) -> np.ndarray:
    lines = (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    return encoder.encode_queries([json.loads(x)["question"] for x in lines])


def one(args) -> dict:
    import faiss

    from index import vectors as V
    from index.encoder import load_light_encoder
    from index.store import load_index

    rng = np.random.default_rng(0)
    news = load_index(args.index)
    ratio = len(news.sent_vectors) / len(news.chunk_vectors)
    n_chunks, n_sents = args.one, int(args.one * ratio)
    chunks = tile(np.asarray(news.chunk_vectors), n_chunks, rng)
    sents = tile(np.asarray(news.sent_vectors), n_sents, rng)
    del news
    encoder = load_light_encoder(None)
    calib, test = questions(args.arcd, encoder, 300), questions(args.tydi, encoder, 300)
    out = {"chunks": n_chunks, "sentences": n_sents}
    for name, x, k in (("chunk", chunks, 100), ("sentence", sents, 1000)):
        t0 = time.perf_counter()
        index = V.build_vector_index(x, flat_max=0, queries=calib)
        built = time.perf_counter() - t0
        path = Path(args.tmp) / f"{name}-{n_chunks}.faiss"
        faiss.write_index(index, str(path))
        del index
        index = V.read_vector_index(path)  # memory-mapped, as an index is served
        np.save(Path(args.tmp) / f"{name}-{n_chunks}.npy", x)
        mapped = np.load(Path(args.tmp) / f"{name}-{n_chunks}.npy", mmap_mode="r")
        exact = V._exact_top(x, test, 10)
        _, found = V.search(index, test, 10, vectors=mapped)
        times = []
        for q in test:
            t = time.perf_counter()
            V.search(index, q.reshape(1, -1), k, vectors=mapped)
            times.append(time.perf_counter() - t)
        (Path(args.tmp) / f"{name}-{n_chunks}.npy").unlink()
        out[name] = {
            "build_s": round(built, 1),
            "bytes": path.stat().st_size,
            "nprobe": int(faiss.extract_index_ivf(index).nprobe),
            "nlist": int(faiss.extract_index_ivf(index).nlist),
            "recall@10": round(V.recall(found, exact), 4),
            "search_ms_median": round(1000 * statistics.median(times), 2),
            "search_ms_p95": round(1000 * float(np.percentile(times, 95)), 2),
        }
        path.unlink()
    out["vector_ms_median"] = round(
        out["chunk"]["search_ms_median"] + out["sentence"]["search_ms_median"], 2
    )
    out["peak_rss_mb_incl_raw_vectors"] = round(memory_mb("VmHWM"))
    out["served_index_mb"] = round((out["chunk"]["bytes"] + out["sentence"]["bytes"]) / 2**20)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="an index of ant-news.jsonl")
    ap.add_argument("--arcd", type=Path, required=True)
    ap.add_argument("--tydi", type=Path, required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--tmp", default="/tmp")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    results = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--index", str(args.index), "--arcd", str(args.arcd),
               "--tydi", str(args.tydi), "--tmp", args.tmp, "--one", str(n)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{r['chunks']:>9,} chunks {r['sentences']:>9,} sentences | "
            f"chunk nprobe {r['chunk']['nprobe']}/{r['chunk']['nlist']} "
            f"recall {r['chunk']['recall@10']:.3f} "
            f"{r['chunk']['search_ms_median']} ms, build {r['chunk']['build_s']} s | "
            f"sentence nprobe {r['sentence']['nprobe']}/{r['sentence']['nlist']} "
            f"recall {r['sentence']['recall@10']:.3f} {r['sentence']['search_ms_median']} ms, "
            f"build {r['sentence']['build_s']} s | index {r['served_index_mb']} MB, "
            f"peak RSS {r['peak_rss_mb_incl_raw_vectors']} MB"
        )
    big = results[-1]
    factor = 10_000_000 / big["chunks"]
    projection = {
        "chunks": 10_000_000,
        "served_index_mb": round(big["served_index_mb"] * factor),
        "note": (
            "IVF-SQ8 bytes grow linearly (~0.4 KB a vector + lists); with nlist = 4 sqrt(n) "
            "and nprobe scaled to keep recall, the lists scanned grow ~sqrt(n): search time "
            f"x{np.sqrt(factor):.1f} of the largest size measured"
        ),
        "vector_ms_median": round(big["vector_ms_median"] * float(np.sqrt(factor)), 1),
    }
    print(f"projection to 10M chunks: {projection}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"sizes": results, "projection_10M": projection}, indent=1))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
