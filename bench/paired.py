"""Two bench/answers.py runs compared question by question: which questions one run gets right
and the other wrong, and whether the net difference is larger than such runs differ by chance.
Used to hold int8 documents against fp32 ones (README, "Building on CPUs without bf16").

    python bench/paired.py /tmp/isnad-fp32/records.json /tmp/isnad-int8/records.json \\
        --out bench/results/paired-int8-fp32.json

Each run's records.json is what bench/answers.py leaves in its --work. For each report set and
language (crosswise: the abstention model fitted on the other set of the same run, as
bench/answers.py reports it), and for hit@1 and answer@1: the questions only A gets right, only
B gets right, B - A, and the interval B - A +- 1.96 sqrt(only A + only B) / n, the normal
approximation of the sign test on the discordant questions: a difference inside it is what two
runs that differ only by noise in their vectors could give.

What it does NOT do: run anything (bench/answers.py does), or compare runs of different
question sets.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SETS = ("arcd", "tydi")


def outcomes(records: dict, model, report_on: str, lang: str) -> dict[str, dict[str, bool]]:
    """Per question id of `report_on` in `lang`: hit@1 and answer@1 under the abstention
    `model`."""
    out = {}
    for r in records[report_on]["in"]:
        if r["lang"] != lang:
            continue
        group = model.group_named(r["group"])
        answered = group.probability(np.array(r["features"])) >= group.threshold
        out[r["id"]] = {"hit@1": r["rank"] == 1, "answer@1": bool(answered and r["cited1"])}
    return out


def compare(a: dict[str, dict[str, bool]], b: dict[str, dict[str, bool]], key: str) -> dict:
    ids = sorted(set(a) & set(b))
    n = len(ids)
    only_a = sum(a[i][key] and not b[i][key] for i in ids)
    only_b = sum(b[i][key] and not a[i][key] for i in ids)
    half = 1.96 * math.sqrt(only_a + only_b) / n
    diff = (only_b - only_a) / n
    return {
        "n": n,
        "a": round(sum(a[i][key] for i in ids) / n, 4),
        "b": round(sum(b[i][key] for i in ids) / n, 4),
        "only_a": only_a,
        "only_b": only_b,
        "b_minus_a": round(diff, 4),
        "chance_interval": [round(diff - half, 4), round(diff + half, 4)],
        "beyond_chance": abs(diff) > half,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="records.json of one bench/answers.py run")
    ap.add_argument("b", type=Path, help="records.json of another, over the same questions")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "paired.json")
    args = ap.parse_args()
    try:
        runs = [json.loads(p.read_text("utf-8")) for p in (args.a, args.b)]
    except (OSError, ValueError) as exc:
        sys.exit(f"paired.py: cannot read the records ({exc}); give two records.json files")
    from answers import fit_model

    result = {"a": str(args.a), "b": str(args.b), "crosswise": {}}
    for fit_on, report_on in (SETS, SETS[::-1]):
        # each run's abstention model fitted on the other set, as bench/answers.py reports it
        models = [fit_model([run[fit_on]], "paired") for run in runs]
        for lang in ("ar", "en"):
            a, b = (
                outcomes(run, model, report_on, lang)
                for run, model in zip(runs, models, strict=True)
            )
            row = {key: compare(a, b, key) for key in ("hit@1", "answer@1")}
            result["crosswise"][f"{fit_on}->{report_on} {lang}"] = row
            print(
                f"{fit_on}->{report_on} {lang}: "
                + "; ".join(
                    f"{k} {v['a']:.3f} -> {v['b']:.3f} ({v['only_a']} lost, {v['only_b']} "
                    "gained; by chance {:+.3f}..{:+.3f})".format(*v["chance_interval"])
                    for k, v in row.items()
                )
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
