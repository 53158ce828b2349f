"""Index build speed: a full build of a JSONL corpus, then an update after changing one article
and adding one. Prints a table and writes JSON (chunks, texts embedded, rates, wall time, peak RSS).

    python bench/build.py ../shared/corpora/ant-news.jsonl [--index-dir /tmp/isnad-bench/news]
    python bench/build.py seeds --plain-pass --out bench/results/build-seeds.json
    python bench/build.py ../shared/corpora/ant-news.jsonl --backend fp32 --no-update \
        --out bench/results/build-news-fp32.json

--backend chooses what embeds (auto, bf16, fp32, int8: as ISNAD_BACKEND; the JSON names the
one used, with the CPU's bf16 and the load average before and after each timed step).
--plain-pass also times one plain sentence-transformers pass over the same articles' texts cut
into 600-character pieces, with the same model and precision (fp32 when the build embeds in
int8: sentence-transformers has no int8), in the same run, and reports the
build's time as a multiple of it (what "each token embedded once" is measured against). Both
vary by 20-30% from one minute to the next on this machine, so with --repeat N the build (into
a fresh folder) and the plain pass alternate N times and the ratio of the medians is reported.
A folder (e.g. seeds/) is built as it is; the one-article update is measured for a .jsonl
corpus only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _TimedEncoder:
    """Passes calls through to an encoder and adds up the time spent embedding."""

    def __init__(self, encoder) -> None:
        self.encoder, self.seconds = encoder, 0.0
        self.model_id, self.dim = encoder.model_id, encoder.dim

    def encode_documents(self, texts, **kw):
        t0 = time.perf_counter()
        try:
            return self.encoder.encode_documents(texts, **kw)
        finally:
            self.seconds += time.perf_counter() - t0

    def encode_queries(self, texts, **kw):  # an IVF index's calibration (large indexes)
        return self.encoder.encode_queries(texts, **kw)

    def measure(self, texts):  # the build orders its texts by tokens before embedding them
        t0 = time.perf_counter()
        try:
            return self.encoder.measure(texts)
        finally:
            self.seconds += time.perf_counter() - t0

    def longest_first(self, texts, lengths=None):
        return self.encoder.longest_first(texts, lengths)

    def for_documents(self, n):  # the timed encoder embeds every job itself
        return self

    @property
    def backend(self):
        return self.encoder.backend


def plain_pass(encoder, corpus: Path, size: int = 600) -> dict:
    """One sentence-transformers pass over the articles' texts in `size`-character pieces."""
    from index.articles import load_articles

    articles, _ = load_articles([corpus])
    pieces = [a.text[i : i + size] for a in articles for i in range(0, len(a.text), size)]
    model = encoder._model
    t0 = time.perf_counter()
    model.encode(pieces, batch_size=32, prompt_name=encoder._document_prompt)
    seconds = time.perf_counter() - t0
    tokens = sum(map(len, model.tokenizer(pieces)["input_ids"]))
    return {"pieces": len(pieces), "tokens": tokens, "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpus", type=Path, help="a .jsonl dump (id, title, text, ...) or a folder")
    ap.add_argument("--plain-pass", action="store_true", help="also time a plain pass (above)")
    ap.add_argument("--repeat", type=int, default=1, help="with --plain-pass: alternate N times")
    ap.add_argument("--index-dir", type=Path, default=None, help="default: a temporary folder")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N articles")
    ap.add_argument("--model", default=None)
    ap.add_argument("--backend", default=None, help="auto, bf16, fp32 or int8 (default: auto)")
    ap.add_argument("--no-update", action="store_true", help="skip the one-article update")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build.json")
    args = ap.parse_args()

    from index.build import build_index
    from index.encoder import configure_threads, cpu_has_fast_bf16, load_encoder

    configure_threads()
    loads = {"start": os.getloadavg()[0]}
    encoder = load_encoder(args.model, backend=args.backend)
    plain_encoder = encoder
    if args.plain_pass and not hasattr(encoder, "_model"):  # not torch: compare with fp32
        plain_encoder = load_encoder(args.model, backend="fp32")
    work = Path(tempfile.mkdtemp(prefix="isnad-bench-"))
    index_dir = args.index_dir or work / "index"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    if args.corpus.is_dir():
        corpus, lines = args.corpus, None
    else:
        corpus = work / "corpus.jsonl"
        lines = args.corpus.read_text(encoding="utf-8").splitlines()
        if args.limit:
            lines = lines[: args.limit]
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if args.plain_pass:  # warm the model up first, as the build's first batches would
        encoder.encode_documents(["تسخين النموذج قبل القياس."] * 32)
        plain_encoder.encode_documents(["تسخين النموذج قبل القياس."] * 32)

    builds, plains = [], []
    for i in range(args.repeat if args.plain_pass else 1):
        if i:
            shutil.rmtree(index_dir)
        loads[f"build {i + 1}"] = os.getloadavg()[0]
        t0 = time.perf_counter()
        full = build_index([corpus], index_dir, encoder)
        builds.append(time.perf_counter() - t0)
        if args.plain_pass:
            loads[f"plain pass {i + 1}"] = os.getloadavg()[0]
            plains.append(plain_pass(plain_encoder, corpus))
    loads["end"] = os.getloadavg()[0]
    full_s = statistics.median(builds)

    update = None
    if lines is not None and not args.no_update:
        records = [json.loads(x) for x in lines]
        records[0]["text"] += "\n\nفقرة أضيفت للاختبار: تحديث المقال بعد نشره."
        records.append(
            {"id": "bench-added-1", "title": "مقال جديد", "text": "نص مقال جديد أضيف الآن. " * 20}
        )
        corpus.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        timed = _TimedEncoder(encoder)
        t0 = time.perf_counter()
        update = build_index([corpus], index_dir, timed)
        update_s = time.perf_counter() - t0

    result = {
        "corpus": str(args.corpus),
        "articles": full.articles,
        "chunks": full.chunks,
        "sentences": full.sentences,
        "texts_embedded": full.texts_embedded,
        "full_build_s": round(full_s, 1),
        "chunks_per_s_end_to_end": round(full.chunks / full_s, 2),
        "texts_per_s_end_to_end": round(full.texts_embedded / full_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "encoder_dtype": getattr(encoder, "dtype", "?"),
        "backend": encoder.backend,
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "load_average_1min": {k: round(v, 2) for k, v in loads.items()},
    }
    if plains:
        plain_s = statistics.median(p["seconds"] for p in plains)
        result["builds_s"] = [round(b, 1) for b in builds]
        result["plain_pass"] = {**plains[0], "seconds": [p["seconds"] for p in plains]}
        result["plain_pass"]["precision"] = plain_encoder.dtype
        result["build_over_plain_pass"] = round(full_s / plain_s, 2)
    if update is not None:
        result.update(
            update_changed=update.changed,
            update_added=update.added,
            update_texts_embedded=update.texts_embedded,
            update_s=round(update_s, 2),
            update_embedding_s=round(timed.seconds, 2),
            update_overhead_s=round(update_s - timed.seconds, 2),
        )
    for k, v in result.items():
        print(f"{k:26} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.index_dir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
