"""Time in questions, measured: dated questions over a news index, with and without steering.

    python bench/dated.py --index /tmp/isnad-bench/news   # an index of ant-news.jsonl

bench/data/dated-questions.jsonl holds 40 hand-written questions over ../shared/corpora/
ant-news.jsonl: 34 name a period ("سنة 2015", "في مارس 2017", "in May 2016", "14/01/2016") and
list every article of that period that answers them (gold) and articles of other periods on
the same topic (decoys); 6 ask for the latest on a topic (gold: its newest answering articles).
Each is asked three ways: with the time in the question steering retrieval (qa.timeq, today's
default), without (RetrievalSettings w_period = period_bonus = latest_band = 0), and with the
period as a hard filter (--since/--until: an upper bound of what steering can reach).

Figures per question group: gold@1 (the first passage is from a gold article), gold@5, and for
period questions in-period@5 (the share of the top 5 passages published in the named period).
Written to bench/results/dated.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ROOT / "bench" / "data" / "dated-questions.jsonl"


def run(answerer, items: list[dict], filtered: bool) -> list[dict]:
    from qa.filters import parse_filters

    index, out = answerer.index, []
    for it in items:
        f = parse_filters(it.get("since"), it.get("until")) if filtered else None
        ranking = answerer.retriever.rank_batch(
            [it["question"]], 5, allowed=[f.article_mask(index.catalog)] if f else None
        )[0]
        rows = [int(index.chunk_article[h.chunk_row]) for h in ranking.hits[:5]]
        ids = [index.articles[r].id for r in rows]
        rec = {"id": it["id"], "top": ids, "gold@1": ids[:1] != [] and ids[0] in it["gold"]}
        rec["gold@5"] = any(i in it["gold"] for i in ids)
        if it["kind"] == "period":
            lo, hi = it["since"], it["until"]
            days = [index.catalog.published[r] for r in rows]
            rec["in_period@5"] = sum(1 for d in days if d and lo <= d[:10] <= hi) / max(
                len(rows), 1
            )
        out.append(rec)
    return out


def summary(records: list[dict], items: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for rec, it in zip(records, items, strict=True):
        groups.setdefault(f"{it['kind']} {it['lang']}", []).append(rec)
        groups.setdefault("all", []).append(rec)
    out = {}
    for name, recs in sorted(groups.items()):
        row = {"n": len(recs)}
        for key in ("gold@1", "gold@5", "in_period@5"):
            vals = [r[key] for r in recs if key in r]
            if vals:
                row[key] = round(sum(vals) / len(vals), 3)
        out[name] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="an index of ant-news.jsonl")
    ap.add_argument("--questions", type=Path, default=QUESTIONS)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dated.json")
    args = ap.parse_args()

    from index.encoder import load_light_encoder
    from index.store import load_index
    from qa.answer import Answerer
    from qa.retrieve import RetrievalSettings

    items = [json.loads(line) for line in args.questions.read_text(encoding="utf-8").splitlines()]
    encoder = load_light_encoder(None)
    index = load_index(args.index, encoder_model_id=encoder.model_id)
    steered = Answerer(index, encoder)
    plain = Answerer(
        index,
        encoder,
        retrieval=replace(RetrievalSettings(), w_period=0.0, period_bonus=0.0, latest_band=0.0),
    )
    result = {"index": str(args.index), "questions": len(items)}
    for name, answerer, filtered in (
        ("without steering", plain, False),
        ("steered (default)", steered, False),
        ("hard filter", plain, True),
    ):
        records = run(answerer, items, filtered)
        result[name] = {"summary": summary(records, items), "records": records}
    print(f"{'group':<14}{'n':>4}  " + "  ".join(f"{k:>30}" for k in result if " " in k))
    names = [k for k in result if isinstance(result[k], dict)]
    for group in result[names[0]]["summary"]:
        cells = []
        for k in names:
            s = result[k]["summary"][group]
            cells.append(
                f"{s.get('gold@1', 0):.3f}/{s.get('gold@5', 0):.3f}/{s.get('in_period@5', 0):.2f}"
            )
        n = result[names[0]]["summary"][group]["n"]
        print(f"{group:<14}{n:>4}  " + "  ".join(f"{c:>30}" for c in cells))
    print("cells: gold@1/gold@5/in-period@5")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
