"""Answer or abstain: a small logistic regression over retrieval scores, one per question group.

Features of one question's evidence (`features`): the top chunk cosine, the best sentence's
cosine and score, both relative to what the question's `depth`-th chunk scores (such relative
scores transfer across scripts better than raw cosines, DESIGN), the share of the question's
words the top chunk and the best sentence hold, whether the top passages agree on an article,
the idf-weighted share of the question's words in the top chunk and the rarest word it lacks,
and how far the best evidence stands out (best sentence over another article's best, top chunk
over the rest, best sentence cosine over the next five). Groups: "same" (the question is written
in a script of the corpus) and "cross" (it is not: word overlap is replaced by the share of the
question's names found, index.translit; cosines run lower), each with its weights and threshold.

The weights live in qa/abstain_model.json, written by `bench/answers.py ... --fit` from ARCD
and TyDi questions (Arabic and hand-translated English) asked of their own articles among 10k
news articles (answerable) and of the news alone (not answerable). bench/answers.py reports
them crosswise: fitted on one set, measured on the other. They hold for the model they were
fitted with (`model_id` in the file); another embedding model needs its own fit, kept in a
folder of its own (qa.calibration: `--calibration DIR`, then `ISNAD_CALIBRATION=DIR`).

What this module does NOT do: fit the model (bench/answers.py does, with scikit-learn), or
write the abstention text (qa.answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.lexical import tokenize
from index.store import Index
from qa.calibration import (
    ABSTAIN_FILE,
    HOW,
    CalibrationError,
    calibration_dir,
    read_fitted,
    write_fitted,
)
from qa.retrieve import Ranking
from qa.scoring import Scored, name_coverage

FORMAT = "isnad-abstain 2"
FEATURES = (
    "top_dense",
    "top_dense_rel",
    "best_cosine",
    "best_cosine_rel",
    "best_score",
    "chunk_coverage",
    "sentence_coverage",
    "agreement",
    "idf_coverage",
    "missing_idf",
    "margin",
    "dense_gap",
    "cos_gap",
)


class AbstainModelError(CalibrationError):
    """The abstention model file is missing or malformed; the message says what to run."""


def features(ranking: Ranking, best: Scored | None, index: Index) -> np.ndarray:
    """The evidence of one question as a vector in FEATURES order."""
    if not ranking.hits or best is None:
        return np.zeros(len(FEATURES))
    top = ranking.hits[0]
    words = ranking.lexical_weight > 0
    chunk_text = index.chunk_text(top.chunk_row)
    art = int(index.chunk_article[top.chunk_row])
    if words:
        chunk_cov, idf_cov, missing = word_features(ranking.question, chunk_text, index)
    else:  # across scripts: the question's names (qa.scoring), not its words
        chunk_cov = name_coverage(ranking.scorer.scorers[0].names, chunk_text)
        idf_cov = missing = 0.0
    head = ranking.hits[:3]
    agreement = sum(int(index.chunk_article[h.chunk_row]) == art for h in head) / len(head)
    dense = [h.dense for h in ranking.hits]
    sentences = ranking.sentences.values()
    best_art = int(index.sent_article[best.row])
    other = max(
        (s.score for s in sentences if int(index.sent_article[s.row]) != best_art),
        default=ranking.sentence_floor,
    )
    cosines = sorted((s.cosine for s in sentences), reverse=True)
    return np.array(
        [
            max(dense),
            max(dense) - ranking.dense_floor,
            best.cosine,
            best.cosine - ranking.sentence_floor,
            best.score,
            chunk_cov,
            best.coverage,
            agreement,
            idf_cov,
            missing,
            best.score - other,
            dense[0] - float(np.mean(dense[1:])) if len(dense) > 1 else 0.0,
            cosines[0] - float(np.mean(cosines[1:6])) if len(cosines) > 1 else 0.0,
        ]
    )


def word_features(question: str, text: str, index: Index) -> tuple[float, float, float]:
    """From the question's and the passage's tokens, each made once: (the share of the
    question's tokens found in `text`, as index.lexical.coverage; the same share weighted by
    idf; the highest idf among those not found): a rare name of the question missing from the
    best passage is the clearest sign the articles do not answer it."""
    tokens = set(tokenize(question))
    if not tokens:
        return 0.0, 0.0, 0.0
    found = tokens.intersection(tokenize(text))
    idf = index.lexical.idf(sorted(tokens))
    total = sum(idf.values())
    kept = sum(idf[t] for t in found)
    missing = max((v for t, v in idf.items() if t not in found), default=0.0)
    return len(found) / len(tokens), kept / total if total else 0.0, missing


def group_of(ranking: Ranking) -> str:
    """ "same" when the question is written in a script of the corpus, else "cross"."""
    return "same" if ranking.lexical_weight > 0 else "cross"


@dataclass(frozen=True)
class GroupModel:
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float  # answer when the probability is at least this

    def probability(self, x: np.ndarray) -> float:
        z = (np.asarray(x) - np.array(self.mean)) / np.array(self.scale)
        logit = float(self.intercept + z @ np.array(self.coef))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))


@dataclass(frozen=True)
class AbstainModel:
    groups: dict[str, GroupModel]
    model_id: str = ""
    notes: dict | None = None

    def group(self, ranking: Ranking) -> GroupModel:
        """The weights for this question's group ("same" where a group is missing)."""
        return self.group_named(group_of(ranking))

    def group_named(self, name: str) -> GroupModel:
        """The weights of group `name` ("same" where that group is missing); benchmarks, which
        keep a question's group by name, ask this way."""
        return self.groups.get(name) or self.groups["same"]

    def probability(self, ranking: Ranking, x: np.ndarray) -> float:
        """How likely (0..1) the articles answer the question, from its features `x`."""
        return self.group(ranking).probability(x)

    def answers(self, ranking: Ranking, x: np.ndarray) -> bool:
        """True when the evidence is strong enough to answer."""
        group = self.group(ranking)
        return group.probability(x) >= group.threshold

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "features": list(FEATURES),
            "groups": {
                name: {
                    "mean": list(g.mean),
                    "scale": list(g.scale),
                    "coef": list(g.coef),
                    "intercept": g.intercept,
                    "threshold": g.threshold,
                }
                for name, g in self.groups.items()
            },
            "notes": self.notes or {},
        }

    @classmethod
    def from_dict(cls, data: dict) -> AbstainModel:
        if data.get("format") != FORMAT or tuple(data.get("features", ())) != FEATURES:
            raise AbstainModelError(
                f"abstention model has format {data.get('format')!r} and features "
                f"{data.get('features')}, expected {FORMAT!r} with {list(FEATURES)}; "
                "refit it with `python bench/answers.py ... --fit`"
            )
        groups = {}
        for name, g in data["groups"].items():
            groups[name] = GroupModel(
                tuple(g["mean"]),
                tuple(g["scale"]),
                tuple(g["coef"]),
                float(g["intercept"]),
                float(g["threshold"]),
            )
        if "same" not in groups:
            raise AbstainModelError("abstention model has no 'same' group; recalibrate it")
        return cls(groups, data.get("model_id", ""), data.get("notes"))


def load_abstain_model(path: Path | None = None) -> AbstainModel:
    """The model in `path`, by default the calibration folder's (qa.calibration)."""
    if path is None:
        path = calibration_dir() / ABSTAIN_FILE
        if not path.exists():
            raise AbstainModelError(f"no abstention model in {path.parent}; {HOW}")
    refit = "python bench/answers.py ... --fit"
    data = read_fitted(path, "abstention model", refit, AbstainModelError)
    return AbstainModel.from_dict(data)


def save_abstain_model(model: AbstainModel, path: Path) -> None:
    write_fitted(model.to_dict(), path, indent=1)
