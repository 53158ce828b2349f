"""What an update costs: change one article and add one, then count the bytes the build wrote
(new or rewritten files, the manifest included) against the size of the whole index, and time
it (embedding apart from the rest).

    python bench/update.py seeds --out bench/results/update-seeds.json
    python bench/update.py ../shared/corpora/ant-news.jsonl --index /tmp/isnad-bench2/news \\
        --out bench/results/update-news.json

`--by-id` measures `isnad index add` instead (index.update.update_index: the changed and the
new article given in a file of their own, nothing else read) on a copy of `--index` made of hard
links (segments are never modified, so an 8 GB index is copied in a moment):

    python bench/update.py --by-id --index /tmp/isnad-1m --out bench/results/update-1m.json

An index whose segments predate keys.npz/bands.npy gets them first (timed apart: once per
segment, ever).

The corpus is copied into a temporary folder (a folder's first .jsonl, or its first .txt, gets
the change). `--index` starts from a copy of an index already built from that corpus instead of
building one; an index written before segments is first brought up to date by a build with no
change (reported apart: it rewrites the index once). Each update is measured `--repeat` times
on fresh copies; the median time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from build import _TimedEncoder  # bench/build.py

ROOT = Path(__file__).resolve().parent.parent


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


def change_one_add_one(corpus: Path) -> None:
    """Append a paragraph to the first article of `corpus` (a folder) and add a new one."""
    jsonl = sorted(corpus.glob("*.jsonl"))
    if jsonl:
        lines = jsonl[0].read_text(encoding="utf-8").splitlines()
        first = json.loads(lines[0])
        first["text"] += "\n\nفقرة أضيفت للاختبار: تحديث المقال بعد نشره."
        lines[0] = json.dumps(first, ensure_ascii=False)
        jsonl[0].write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        txt = sorted(corpus.rglob("*.txt"))[0]
        txt.write_text(txt.read_text(encoding="utf-8") + "\n\nفقرة أضيفت للاختبار.\n", "utf-8")
    added = "مقال جديد\n\n" + "نص مقال جديد أضيف الآن عن معرض الكتاب في تونس. " * 20
    (corpus / "bench-added-1.txt").write_text(added, encoding="utf-8")


def write_result(result: dict, out: Path) -> None:
    for k, v in result.items():
        print(f"{k:34} {v}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("corpus", type=Path, nargs="?", help="a folder of articles, or a .jsonl dump")
    ap.add_argument("--by-id", action="store_true", help="time `isnad index add` on --index")
    ap.add_argument("--index", type=Path, default=None, help="an index built from the corpus")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "update.json")
    args = ap.parse_args()

    from index.build import build_index
    from index.encoder import configure_threads, load_encoder

    configure_threads()
    encoder = load_encoder(None)
    if args.by_id:
        if args.index is None:
            ap.error("--by-id needs --index")
        return by_id(args, encoder)
    if args.corpus is None:
        ap.error("give a corpus (or --by-id with --index)")
    work = Path(tempfile.mkdtemp(prefix="isnad-update-"))
    corpus0 = work / "corpus0"
    if args.corpus.is_dir():
        shutil.copytree(args.corpus, corpus0)
    else:
        corpus0.mkdir()
        shutil.copy(args.corpus, corpus0 / args.corpus.name)
    base = work / "base"
    result: dict = {"corpus": str(args.corpus)}
    if args.index is None:
        t0 = time.perf_counter()
        build_index([corpus0], base, encoder)
        result["base_build_s"] = round(time.perf_counter() - t0, 1)
    else:
        shutil.copytree(args.index, base)
        before = files(base)
        t0 = time.perf_counter()
        report = build_index([corpus0], base, encoder)  # a format-1 index is rewritten here
        result["bring_up_to_date"] = {
            "seconds": round(time.perf_counter() - t0, 1),
            "texts_embedded": report.texts_embedded,
            "rewrote_index": files(base).keys() != before.keys(),
        }
    size = sum(s for s, _ in files(base).values())

    runs = []
    for _ in range(args.repeat):
        ix, corpus = work / "ix", work / "corpus"
        shutil.rmtree(ix, ignore_errors=True)
        shutil.rmtree(corpus, ignore_errors=True)
        shutil.copytree(base, ix)
        shutil.copytree(corpus0, corpus)
        change_one_add_one(corpus)
        before = files(ix)
        timed = _TimedEncoder(encoder)
        t0 = time.perf_counter()
        report = build_index([corpus], ix, timed)
        seconds = time.perf_counter() - t0
        after = files(ix)
        written = sum(s for p, (s, m) in after.items() if before.get(p) != (s, m))
        runs.append(
            {
                "seconds": seconds,
                "embedding_s": timed.seconds,
                "bytes_written": written,
                "changed": report.changed,
                "added": report.added,
                "texts_embedded": report.texts_embedded,
                "segments_after": len(json.loads((ix / "manifest.json").read_text())["segments"]),
            }
        )
    seconds = statistics.median(r["seconds"] for r in runs)
    embedding = statistics.median(r["embedding_s"] for r in runs)
    result.update(
        index_bytes=size,
        update_bytes_written=runs[0]["bytes_written"],
        update_share_of_index=round(runs[0]["bytes_written"] / size, 4),
        update_changed=runs[0]["changed"],
        update_added=runs[0]["added"],
        update_texts_embedded=runs[0]["texts_embedded"],
        segments_after=runs[0]["segments_after"],
        update_s=[round(r["seconds"], 2) for r in runs],
        update_median_s=round(seconds, 2),
        update_embedding_median_s=round(embedding, 2),
        update_beyond_embedding_median_s=round(
            statistics.median(r["seconds"] - r["embedding_s"] for r in runs), 2
        ),
    )
    write_result(result, args.out)
    shutil.rmtree(work, ignore_errors=True)


def by_id(args, encoder) -> None:
    """Change one article of the index and add one, through update_index."""
    from index.store import SegmentKeys, read_manifest, segment_bands
    from index.update import update_index

    work = Path(tempfile.mkdtemp(prefix="isnad-update-", dir=args.index.parent))
    manifest = read_manifest(args.index)
    result: dict = {"index": str(args.index), "mode": "isnad index add (update_index)"}
    result["counts"] = manifest["counts"]
    base = work / "base"
    shutil.copytree(args.index, base, copy_function=os.link)
    t0 = time.perf_counter()
    first = SegmentKeys(base / manifest["segments"][0]["name"])
    for entry in manifest["segments"]:
        SegmentKeys(base / entry["name"])
        segment_bands(base / entry["name"])
    result["keys_made_once_s"] = round(time.perf_counter() - t0, 1)
    size = sum(s for s, _ in files(base).values())
    old = first.article(len(first.id) // 2)
    changed = {"id": old.id, "title": old.title, "text": old.text + "\n\nفقرة أضيفت للاختبار.",
               **old.meta}  # fmt: skip
    added = {"id": "bench-added-1", "title": "مقال جديد",
             "text": "نص مقال جديد أضيف الآن عن معرض الكتاب في تونس. " * 20}  # fmt: skip
    update = work / "update.jsonl"
    update.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (changed, added)), "utf-8"
    )
    runs = []
    for _ in range(args.repeat):
        ix = work / "ix"
        shutil.rmtree(ix, ignore_errors=True)
        shutil.copytree(base, ix, copy_function=os.link)
        before = files(ix)
        timed = _TimedEncoder(encoder)
        t0 = time.perf_counter()
        report = update_index(ix, timed, add=[update])
        seconds = time.perf_counter() - t0
        after = files(ix)
        written = sum(s for p, (s, m) in after.items() if before.get(p) != (s, m))
        runs.append(
            {
                "seconds": round(seconds, 2),
                "embedding_s": round(timed.seconds, 2),
                "beyond_embedding_s": round(seconds - timed.seconds, 2),
                "bytes_written": written,
                "changed": report.changed,
                "added": report.added,
                "texts_embedded": report.texts_embedded,
            }
        )
    result.update(
        index_bytes=size,
        runs=runs,
        update_median_s=statistics.median(r["seconds"] for r in runs),
        update_embedding_median_s=statistics.median(r["embedding_s"] for r in runs),
        update_beyond_embedding_median_s=statistics.median(r["beyond_embedding_s"] for r in runs),
        update_bytes_written=runs[0]["bytes_written"],
        update_share_of_index=round(runs[0]["bytes_written"] / size, 6),
    )
    write_result(result, args.out)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
