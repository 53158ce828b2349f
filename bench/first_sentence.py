"""Would the reader choose a better first sentence? Measured crosswise from bench/answers.py's
records (issue #21, item 2).

    python bench/first_sentence.py --work /tmp/isnad-bench     # after bench/answers.py --work

For each answerable question, bench/answers.py records the three sentences first in line to be
cited (qa.compose.candidates) with [their order score, the reader's confidence in its best span
in them, whether they hold the answer] (`first_choices`, the reader fitted on the other set).
Here they are re-ordered by score + w x confidence: w is chosen on one set (its best share of
first sentences holding the answer) and reported on the other. Writes
bench/results/first_sentence.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def holds(records: list[dict], w: float) -> float:
    """The share of `records` whose first sentence, re-ordered with weight w, holds the answer."""
    right = []
    for r in records:
        choices = r.get("first_choices")
        if choices:
            k = int(np.argmax([score + w * conf for score, conf, _ in choices]))
            right.append(bool(choices[k][2]))
    return float(np.mean(right)) if right else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="bench/answers.py's --work")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "first_sentence.json")
    args = ap.parse_args()
    records = json.loads((args.work / "records.json").read_text(encoding="utf-8"))
    by = {
        (name, lang): [r for r in records[name]["in"] if r["lang"] == lang]
        for name in ("arcd", "tydi")
        for lang in ("ar", "en")
    }
    result = {"weights": list(WEIGHTS), "share": {}, "crosswise": {}}
    for (name, lang), recs in by.items():
        result["share"][f"{name} {lang}"] = [round(holds(recs, w), 4) for w in WEIGHTS]
    for fit, report in (("arcd", "tydi"), ("tydi", "arcd")):
        for lang in ("ar", "en"):
            shares = result["share"][f"{fit} {lang}"]
            w = WEIGHTS[int(np.argmax(shares))]
            row = {
                "w": w,
                "without": round(holds(by[report, lang], 0.0), 4),
                "with": round(holds(by[report, lang], w), 4),
            }
            result["crosswise"][f"{fit}->{report} {lang}"] = row
            print(f"{fit}->{report} {lang}: w {w}, {row['without']:.3f} -> {row['with']:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
