"""How close two indexes of the same articles are, sentence by sentence: the cosine between
each sentence's vector in one and in the other (sentences matched by article id and offsets).
Used to compare a build's backends (int8 against fp32: README, "Building on CPUs without
bf16"). Prints the figures and writes JSON.

    python bench/vectors.py /tmp/isnad-int8/news /tmp/isnad-int8/fp32-ref/news \\
        --out bench/results/vectors-int8-fp32.json

What it does NOT do: compare answers (bench/answers.py does, crosswise).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sentence_rows(ix) -> dict[tuple[str, int, int], int]:
    """(article id, start, end) -> sentence row."""
    return {
        (ix.articles[ix.sent_article[r]].id, int(ix.sent_start[r]), int(ix.sent_end[r])): r
        for r in range(len(ix.sent_start))
    }


def backends(ix) -> list[str]:
    return sorted({b for s in ix.segments for b in s.entry.get("backends", ["unrecorded"])})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="an index folder")
    ap.add_argument("b", type=Path, help="another index folder of the same articles")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "vectors.json")
    args = ap.parse_args()

    from index.store import load_index

    a, b = load_index(args.a), load_index(args.b)
    ka, kb = sentence_rows(a), sentence_rows(b)
    common = sorted(set(ka) & set(kb))
    assert common, "the two indexes share no sentence"
    ra, rb = np.array([ka[k] for k in common]), np.array([kb[k] for k in common])
    cos = (np.asarray(a.sent_vectors[ra]) * np.asarray(b.sent_vectors[rb])).sum(1)
    result = {
        "a": {"index": str(args.a), "sentences": len(ka), "backends": backends(a)},
        "b": {"index": str(args.b), "sentences": len(kb), "backends": backends(b)},
        "sentences_compared": len(common),
        "cosine": {
            "min": round(float(cos.min()), 4),
            "p1": round(float(np.percentile(cos, 1)), 4),
            "p5": round(float(np.percentile(cos, 5)), 4),
            "median": round(float(np.median(cos)), 4),
        },
        "share_below_.99": round(float((cos < 0.99).mean()), 5),
    }
    for key, value in result.items():
        print(f"{key:<20} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
