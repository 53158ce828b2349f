"""Answer quality on ARCD: retrieval hit@k, cited-span accuracy, abstention trade-off, latency.

    python bench/answers.py --index-dir /tmp/isnad-bench/arcd
    python bench/answers.py --distractors ../shared/corpora/ant-news.jsonl \\
        --index-dir /tmp/isnad-bench/arcd+news --ooc-index-dir /tmp/isnad-bench/news-only
    python bench/answers.py ... --calibrate      # refit qa/abstain_model.json, then report

ARCD (--arcd: articles/*.txt, questions.jsonl with answer offsets into the file text) is
indexed with the real encoder, alone or with --distractors (a .jsonl news dump); an index
folder that already holds an index is reused as it is. Each question is asked; a retrieved
passage or a cited span is right when it contains the gold answer span (or, in one of ARCD's
twin articles with the same title, the answer text). hit@k: a top-k passage contains it;
answer@1: the first citation does; answer@3: the first citation or one of the next two best
candidate sentences does; any-cited: some citation of the answer does. English questions (hand
translations of 100 ARCD questions, below) are reported separately.

Abstention: ARCD questions asked of an index of the distractors alone (--ooc-index-dir, made
from the main index without embedding anything again) must abstain. ARCD's articles are split
in two halves by title; --calibrate fits the abstention model on the first half and every
abstention figure printed is on the second (the whole curve over thresholds, also in the JSON).
Calibrating needs scikit-learn.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Hand translations of ARCD questions (by ARCD question id) for English-over-Arabic figures.
ENGLISH = {
    "969331847966": "Who is Jamal Ahmad Hamza Khashoggi?",
    "71045458517": "What is the area of the Arab Republic of Egypt?",
    "596947493429": "When was the Ottoman state founded?",
    "352642249194": "When did Gavrilo Princip assassinate the Austrian crown prince Franz "
    "Ferdinand?",
    "210334949040": "What is the name of the state founded by Saladin?",
    "719357408328": "In what year did Albert Einstein receive his academic diploma?",
    "382159239503": "What was India known for in its history?",
    "285144718428": "How many people died of cancer in 2007?",
    "773584604729": "What is the shape of a football pitch?",
    "588267622886": "What else is the Battle of Badr called?",
    "257325202932": "When did Japan's system of government become a constitutional monarchy?",
    "122654307133": "In which sport was Recep Tayyip Erdogan a semi-professional?",
    "637252281049": "Which Middle Eastern country is larger in area than the Islamic Republic "
    "of Iran?",
    "179680238411": "How long did Tamer Hosny spend in prison over the forgery case?",
    "997586307406": "What are the most dangerous complications of diabetes?",
    "82557755105": "In what year was the capital moved from Edirne to Constantinople?",
    "217887824819": "What scale is used to measure the severity of obsessive-compulsive disorder?",
    "644134390788": "Who is Jesus?",
    "374730948058": "When was Gibran Khalil Gibran born?",
    "476853456099": "How many people in the world are infected with AIDS?",
    "429567529777": "How do periods of abnormal elation differ from feeling elated in normal "
    "circumstances?",
    "627300218690": "What are some of the Shia rituals on the day of Ashura?",
    "801223142342": "What is the largest continent on Earth?",
    "703049186486": "What is the origin of the word clitoris according to the Oxford English "
    "Dictionary?",
    "114069415149": "How far is Mecca from Taif?",
    "214222340937": "How much did Shakira's album Where Are the Thieves cost?",
    "150639205612": "How does Christianity rank by number of followers?",
    "869365838461": "How old was Muhammad Ali when he retired?",
    "850910508804": "What was the northern Kingdom of Israel?",
    "507285299079": "Where is Austria located?",
    "73656955765": "When did the comedy trio Thalathy Adwaa El Masrah break up?",
    "921602405546": "Who were the two sides in the Battle of Yarmouk?",
    "961602426026": "Who is the father of Muhammad ibn Hasan al-Mahdi?",
    "559426496462": "In which film did the actor Ahmed Ezz appear in a small scene at the start "
    "of his career?",
    "336729511037": "What are some examples of links the preacher Zaghloul El-Naggar drew "
    "between the Quran and scientific theories?",
    "39516513226": "When did Zidane start coaching Real Madrid?",
    "626665128310": "In what year was the band EXO formed?",
    "613849990402": "When was Nancy Ajram born?",
    "969104075657": "What did his sister Wisal do after her family forced her to marry a man she "
    "did not love?",
    "555406862548": "What is Al Ahly Sporting Club?",
    "471623198503": "From which name were the names of Syria and Palestine borrowed?",
    "67403385215": "Which school did King Abdulaziz attend?",
    "156381511284": "How much of Dubai's income comes from oil?",
    "405244021047": "What causes economic disparities?",
    "434312966606": "Who are the Druze?",
    "299285268300": "Why did the King of Morocco go on an official mission abroad?",
    "367498667730": "In which century did the Muslims conquer Tunisia?",
    "140771605947": "How does the Chinese economy rank among the world's economies?",
    "385156279394": "What happened at the end of the October War?",
    "417010134974": "Did the Prophet Muhammad reproach his companions who did not go out to fight?",
    "611642964297": "When did Spain emerge as a unified state?",
    "809283218984": "What is the area of the larger part of the Arabian Peninsula?",
    "914711707882": "Where is the state of Alaska located?",
    "408498946789": "Which territories did Germany and the Soviet Union agree to divide between "
    "them?",
    "990192035872": "Which country borders Iraq to the north?",
    "963819258584": "What is the capital of Syria?",
    "198556547032": "What is the estimated population of the Gaza Strip and the West Bank?",
    "930272774853": "What is the name of the People's Republic of China in Chinese?",
    "785188684087": "For how long did Omar Mukhtar fight the Italians?",
    "876083035683": "What is the other name of the Christian-era calendar?",
    "845203590979": "Who is called a Sufi?",
    "542553239652": "What did the Islamic state become under Suleiman I?",
    "892630606439": "Who is behind the New Seven Wonders of the World project?",
    "452274862934": "How long did the reign of Muhammad Ali Pasha, known as the Aziz of Egypt, "
    "last?",
    "671064432986": "Who wrote Game of Thrones?",
    "954407911139": "In what year was al-Shafi'i born?",
    "582131163172": "What is the oldest Arab kingdom?",
    "315750954445": "Were the borders of al-Andalus fixed and stable?",
    "637464571302": "Which surah and verse of the Quran do Muslims cite for the story of "
    "Abraham and Ishmael building the Kaaba?",
    "519138685836": "In what Hijri year did the Fatimids conquer Egypt?",
    "324133491326": "What is communism called in English?",
    "630073452538": "What is the Mona Lisa?",
    "55491865421": "What causes tuberculosis?",
    "375828999300": "What share of the Netherlands' population lives below sea level?",
    "494954827598": "What were fever-reducing substances known as in the Middle Ages?",
    "720843402371": "What bound Hamza and Muhammad ibn Abdullah together?",
    "418715126457": "How many signs of the zodiac are there?",
    "891889291512": "When did Genghis Khan die?",
    "376944286139": "How was Egypt divided administratively under the French occupation led by "
    "Napoleon Bonaparte?",
    "151756558894": "Which countries border Mauritania?",
    "728901420910": "When did Egypt regain its membership in the Arab League?",
    "519765296332": "When was the first Dutch colony established in Mauritius?",
    "793046555002": "What doses of the painkiller tramadol are allowed?",
    "823729464252": "What distinguishes the player Ronaldo from other players?",
    "876389952025": "Where is Kuwait located?",
    "657225935048": "What kind of relationship do Canada and the United States have?",
    "623302809357": "When is the World Cup held?",
    "310531527553": "What was the name of Umm Kulthum's mother?",
    "603396636936": "What does the word Jordan mean in Hebrew?",
    "685010669649": "Where does the name India come from?",
    "562307963806": "What are the health risks of female circumcision?",
    "936851592782": "Who is Antarah ibn Shaddad?",
    "98880741533": "Who revealed the Quran?",
    "585541886294": "When did Azerbaijan join the Commonwealth of Independent States?",
    "228310460636": "In what year did al-Mutanabbi settle in Antioch?",
    "717388575411": "How many league titles has Liverpool won?",
    "488447093092": "When were the laws of football drawn up?",
    "329919813738": "What was Naguib Mahfouz's first government post?",
    "506565318741": "What is the area of the continent of Europe?",
    "950438628756": "When did the civil war in Sudan end?",
}
ANSWER_RATE = 0.93  # calibration: the threshold answers this share of in-corpus questions
EDGE = " \t\n،,.;:؛()«»\"'-"


# --- gold ----------------------------------------------------------------------------------


class Gold:
    """Where each question's answer is, and whether a span of an index contains it."""

    def __init__(self, index) -> None:
        self.index = index
        self.titles = [a.title for a in index.articles]

    def target(self, q: dict) -> tuple[int, int, int, str]:
        """(article row, start, end, text) of the gold answer, trimmed of edge punctuation."""
        row = self.index.article_row[q["article_id"] + ".txt"]
        ans, start = q["answers"][0], q["answer_starts"][0]
        lo, hi = len(ans) - len(ans.lstrip(EDGE)), len(ans.rstrip(EDGE))
        return row, start + lo, start + max(hi, lo), ans[lo:hi]

    def contains(self, q: dict, row: int, start: int, end: int) -> bool:
        a, s, e, text = self.target(q)
        if row == a:
            return start <= s and e <= end
        if self.titles[row] == self.titles[a]:  # ARCD's twin articles
            return text in self.index.articles[row].text[start:end]
        return False

    def chunk(self, q: dict, c: int) -> bool:
        ix = self.index
        return self.contains(
            q, int(ix.chunk_article[c]), int(ix.chunk_start[c]), int(ix.chunk_end[c])
        )


def load_questions(arcd: Path, limit: int) -> list[dict]:
    qs = [json.loads(x) for x in (arcd / "questions.jsonl").read_text("utf-8").splitlines() if x]
    qs = qs[:limit] if limit else qs
    english = [dict(q, question=ENGLISH[q["id"]], lang="en") for q in qs if q["id"] in ENGLISH]
    return [dict(q, lang="ar") for q in qs] + english


def halves(questions: list[dict], index) -> None:
    """Mark each question "cal" or "test": alternate titles of ARCD's articles (twins together)."""

    def title(q: dict) -> str:
        return index.articles[index.article_row[q["article_id"] + ".txt"]].title

    cal = set(sorted({title(q) for q in questions})[::2])
    for q in questions:
        q["half"] = "cal" if title(q) in cal else "test"


# --- indexes -------------------------------------------------------------------------------


def open_index(index_dir: Path, paths: list[Path], encoder, *, seed: Path | None = None):
    """Load the index in index_dir, or build it from paths (starting from a copy of `seed`,
    an index whose embeddings it can reuse)."""
    from index.build import build_index
    from index.store import load_index

    if not (index_dir / "manifest.json").is_file():
        if seed is not None and (seed / "manifest.json").is_file() and not index_dir.exists():
            shutil.copytree(seed, index_dir)
        t0 = time.perf_counter()
        report = build_index(paths, index_dir, encoder)
        print(
            f"built {index_dir}: {report.articles} articles, {report.chunks} chunks, "
            f"{report.texts_embedded} texts embedded in {time.perf_counter() - t0:.0f}s"
        )
    return load_index(index_dir, encoder_model_id=encoder.model_id)


# --- measuring -----------------------------------------------------------------------------


def evaluate(answerer, gold: Gold, questions: list[dict]) -> list[dict]:
    """Per question: retrieval ranks, citation correctness, abstention features."""
    from qa.abstain import group_of
    from qa.compose import candidates

    ix = answerer.index
    out = []
    evidence = answerer.evidence_batch([q["question"] for q in questions])
    for q, (ranking, spans, x) in zip(questions, evidence, strict=True):
        hits = [gold.chunk(q, h.chunk_row) for h in ranking.hits[:10]]
        cands = candidates(ranking, answerer.compose)
        first3 = [(s.article_row, s.start, s.end) for s in spans[:1]] + [
            (int(ix.sent_article[c.row]), int(ix.sent_start[c.row]), int(ix.sent_end[c.row]))
            for c in cands[1:3]
        ]
        out.append(
            {
                "id": q["id"],
                "lang": q["lang"],
                "half": q["half"],
                "group": group_of(ranking),
                "rank": next((i + 1 for i, h in enumerate(hits) if h), None),
                "answer1": bool(first3) and gold.contains(q, *first3[0]),
                "answer3": any(gold.contains(q, *s) for s in first3),
                "answer_cited": any(gold.contains(q, s.article_row, s.start, s.end) for s in spans),
                "citations": len(spans),
                "cited_chars": sum(s.end - s.start for s in spans),
                "features": [float(v) for v in x],
                "p": answerer.abstain_model.probability(ranking, x),
            }
        )
    return out


def out_of_corpus(answerer, questions: list[dict]) -> list[dict]:
    from qa.abstain import group_of

    out = []
    evidence = answerer.evidence_batch([q["question"] for q in questions])
    for q, (ranking, _, x) in zip(questions, evidence, strict=True):
        out.append(
            {
                "id": q["id"],
                "lang": q["lang"],
                "half": q["half"],
                "group": group_of(ranking),
                "features": [float(v) for v in x],
                "p": answerer.abstain_model.probability(ranking, x),
            }
        )
    return out


def latency(answerer, questions: list[dict], n: int) -> dict:
    """Warm single-question latency of Answerer.ask over the first n questions."""
    asked = [q["question"] for q in questions[:n]]
    for q in asked[:5]:
        answerer.ask(q)
    times = []
    for q in asked:
        t0 = time.perf_counter()
        answerer.ask(q)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return {
        "n": len(times),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
    }


def retrieval_figures(rows: list[dict]) -> dict:
    n = len(rows) or 1
    ranks = [r["rank"] for r in rows]
    return {
        "n": len(rows),
        "hit@1": sum(r == 1 for r in ranks) / n,
        "hit@5": sum(r is not None and r <= 5 for r in ranks) / n,
        "hit@10": sum(r is not None for r in ranks) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
        "answer@1": sum(r["answer1"] for r in rows) / n,
        "answer@3": sum(r["answer3"] for r in rows) / n,
        "answer_any_citation": sum(r["answer_cited"] for r in rows) / n,
        "citations_mean": sum(r["citations"] for r in rows) / n,
        "cited_chars_mean": sum(r["cited_chars"] for r in rows) / n,
    }


# --- abstention ----------------------------------------------------------------------------


def fit(inside: list[dict], outside: list[dict], group: str, model_id: str):
    """A GroupModel fitted on the calibration half (in-corpus = 1, out-of-corpus = 0)."""
    from sklearn.linear_model import LogisticRegression

    from qa.abstain import GroupModel

    pos = [r["features"] for r in inside if r["half"] == "cal" and r["group"] == group]
    neg = [r["features"] for r in outside if r["half"] == "cal" and r["group"] == group]
    X = np.array(pos + neg)
    y = np.array([1] * len(pos) + [0] * len(neg))
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-9] = 1.0
    lr = LogisticRegression(C=1.0, max_iter=1000).fit((X - mean) / scale, y)
    model = GroupModel(tuple(mean), tuple(scale), tuple(lr.coef_[0]), float(lr.intercept_[0]), 0.5)
    probs = sorted(model.probability(x) for x in pos)
    threshold = probs[int((1 - ANSWER_RATE) * len(probs))]
    return (
        GroupModel(model.mean, model.scale, model.coef, model.intercept, threshold),
        len(pos),
        len(neg),
    )


def auc(pos: list[float], neg: list[float]) -> float | None:
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def tradeoff(inside: list[dict], outside: list[dict], lang: str, thresholds: dict) -> dict:
    """Held-out (test half) answer and abstain rates for one question language."""
    pos = [r for r in inside if r["half"] == "test" and r["lang"] == lang]
    neg = [r for r in outside if r["half"] == "test" and r["lang"] == lang]
    if not pos or not neg:
        return {}

    def answered(r):
        return r["p"] >= thresholds.get(r["group"], thresholds["same"])

    kept = [r for r in pos if answered(r)]
    curve = []
    for t in np.round(np.arange(0.0, 1.0001, 0.05), 2):
        curve.append(
            {
                "threshold": float(t),
                "answered_in_corpus": sum(r["p"] >= t for r in pos) / len(pos),
                "abstained_out_of_corpus": sum(r["p"] < t for r in neg) / len(neg),
            }
        )
    return {
        "n_in_corpus": len(pos),
        "n_out_of_corpus": len(neg),
        "auc": auc([r["p"] for r in pos], [r["p"] for r in neg]),
        "answered_in_corpus": len(kept) / len(pos),
        "abstained_out_of_corpus": sum(not answered(r) for r in neg) / len(neg),
        "answer@1_of_answered": sum(r["answer1"] for r in kept) / max(1, len(kept)),
        "curve": curve,
    }


def always_answer():
    """A stand-in abstention model before the first calibration: it never abstains."""
    from qa.abstain import FEATURES, AbstainModel, GroupModel

    zeros = (0.0,) * len(FEATURES)
    return AbstainModel({"same": GroupModel(zeros, (1.0,) * len(FEATURES), zeros, 0.0, 0.0)})


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arcd", type=Path, default=Path("/work/shared/eval/arcd"))
    ap.add_argument("--distractors", type=Path, default=None, help="a .jsonl news dump")
    ap.add_argument("--index-dir", type=Path, required=True, help="built here unless present")
    ap.add_argument(
        "--ooc-index-dir",
        type=Path,
        default=None,
        help="index of the distractors alone (built from --index-dir if absent)",
    )
    ap.add_argument("--limit", type=int, default=0, help="only the first N ARCD questions")
    ap.add_argument("--latency-n", type=int, default=300, help="questions timed one by one")
    ap.add_argument("--calibrate", action="store_true", help="refit qa/abstain_model.json")
    ap.add_argument("--cache-dir", type=Path, default=None, help="where the default model is")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    from index.encoder import configure_threads, load_encoder
    from qa.abstain import DEFAULT_PATH, AbstainModel, load_abstain_model, save_abstain_model
    from qa.answer import Answerer

    configure_threads()
    import faiss

    # One question at a time: FAISS's OpenMP threads cost more than they gain (14 ms -> 1.6 ms
    # for one search over 19k chunks on this 2-core machine).
    faiss.omp_set_num_threads(1)
    encoder = load_encoder(cache_dir=args.cache_dir)
    paths = [args.arcd / "articles"] + ([args.distractors] if args.distractors else [])
    index = open_index(args.index_dir, paths, encoder)
    gold = Gold(index)
    questions = load_questions(args.arcd, args.limit)
    halves(questions, index)
    model = load_abstain_model() if DEFAULT_PATH.is_file() else always_answer()
    answerer = Answerer(index, encoder, abstain_model=model)
    t0 = time.perf_counter()
    inside = evaluate(answerer, gold, questions)
    print(f"asked {len(questions)} questions in {time.perf_counter() - t0:.0f}s")

    outside: list[dict] = []
    if args.ooc_index_dir is not None:
        if args.distractors is None and not (args.ooc_index_dir / "manifest.json").is_file():
            ap.error("--ooc-index-dir needs --distractors to build it")
        ooc = open_index(
            args.ooc_index_dir,
            [args.distractors] if args.distractors else [],
            encoder,
            seed=args.index_dir,
        )
        outside = out_of_corpus(Answerer(ooc, encoder, abstain_model=model), questions)

    if args.calibrate:
        assert outside, "--calibrate needs --ooc-index-dir (out-of-corpus questions)"
        groups, notes = {}, {"answer_rate_target": ANSWER_RATE}
        for group in ("same", "cross"):
            groups[group], n_pos, n_neg = fit(inside, outside, group, encoder.model_id)
            notes[group] = {"calibration_in_corpus": n_pos, "calibration_out_of_corpus": n_neg}
        notes["index"] = str(args.index_dir)
        model = AbstainModel(groups, encoder.model_id, notes)
        save_abstain_model(model)
        print("wrote qa/abstain_model.json")
        for r in inside + outside:
            g = model.groups.get(r["group"]) or model.groups["same"]
            r["p"] = g.probability(np.array(r["features"]))

    thresholds = {name: g.threshold for name, g in model.groups.items()}
    result = {
        "index": str(args.index_dir),
        "articles": len(index.articles),
        "chunks": len(index),
        "sentences": len(index.sent_start),
        "model": encoder.model_id,
        "retrieval": {
            lang: {
                h: retrieval_figures(
                    [r for r in inside if r["lang"] == lang and (h == "all" or r["half"] == h)]
                )
                for h in ("all", "test")
            }
            for lang in ("ar", "en")
        },
        "abstention": {
            lang: tradeoff(inside, outside, lang, thresholds) for lang in ("ar", "en") if outside
        },
        "latency": latency(answerer, [q for q in questions if q["lang"] == "ar"], args.latency_n),
    }
    print_table(result)
    out = args.out or ROOT / "bench" / "results" / f"answers-{args.index_dir.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}")


def print_table(result: dict) -> None:
    print(f"\nindex {result['index']}: {result['articles']} articles, {result['chunks']} chunks")
    columns = {  # result key -> column label
        "n": "n",
        "hit@1": "hit@1",
        "hit@5": "hit@5",
        "hit@10": "hit@10",
        "mrr@10": "mrr@10",
        "answer@1": "answer@1",
        "answer@3": "answer@3",
        "answer_any_citation": "any-cited",
        "cited_chars_mean": "chars",
    }
    keys = list(columns)
    print(f"{'questions':<16}" + "".join(f"{label:>10}" for label in columns.values()))
    for lang, by_half in result["retrieval"].items():
        for half, fig in by_half.items():
            if fig["n"]:
                formats = {"n": ">10", "cited_chars_mean": ">10.0f"}
                cells = "".join(format(fig[k], formats.get(k, ">10.3f")) for k in keys)
                print(f"{lang + ' ' + half:<16}" + cells)
    for lang, fig in result["abstention"].items():
        if not fig:
            continue
        print(
            f"\nabstention, {lang} questions (held-out half): AUC {fig['auc']:.3f}; "
            f"answers {fig['answered_in_corpus']:.1%} of in-corpus, abstains on "
            f"{fig['abstained_out_of_corpus']:.1%} of out-of-corpus; answer@1 of answered "
            f"{fig['answer@1_of_answered']:.3f}"
        )
        print("  threshold  answered-in  abstained-out")
        for p in fig["curve"]:
            print(
                f"  {p['threshold']:>9.2f}  {p['answered_in_corpus']:>11.3f}  "
                f"{p['abstained_out_of_corpus']:>13.3f}"
            )
    lat = result["latency"]
    print(
        f"\nlatency (Answerer.ask, warm, {lat['n']} questions): median {lat['median_ms']} ms, "
        f"p95 {lat['p95_ms']} ms"
    )


if __name__ == "__main__":
    main()
