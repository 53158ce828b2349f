"""Which articles of a deep ranking are about the story: a logistic regression over how each
stands against the best ones.

An article that only mentions a story in passing can hold one sentence that matches it well; an
article about the story matches as a whole. `candidates(index, ranking, topic)` gives, for the
`limit` best-ranked articles of a story's topic (qa.timeline), one row of FEATURES each:
- gap: its best sentence's score (qa.scoring) below the best article's;
- about, about_gap: the cosine of the article as a whole (the unit mean of its sentence
  vectors) with the story (the question's vector plus the mean of the three best articles'),
  and how far below the best of those three it lies;
- log_rank: its rank among the articles;
- lexical: its best chunk's BM25 score over the best one's (0 across scripts: qa.retrieve);
- title_cov: the share of the topic's words its title holds (0 across scripts);
- title_prf: the share of the story's title words, those that two of the five best titles
  share, that its title holds (how the best articles name the story, whatever the question's
  language);
- chunks: how many of its chunks the ranking holds (up to 5, over 5);
- q_cos: the article's cosine with the question alone.
The weights, one group for questions in the corpus's script ("same") and one for the others
("cross"), and each group's threshold, are fitted by `bench/stories.py --fit` on half of the
judged story questions (qa/story_model.json) and reported on the other half.

What this module does NOT do: group articles into events or cite (qa.timeline).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.lexical import tokenize
from index.store import Index
from index.vectors import read_rows
from qa.abstain import GroupModel, group_of
from qa.calibration import STORY_FILE, CalibrationError, fitted_file, read_fitted, write_fitted
from qa.retrieve import Ranking

FORMAT = "isnad-story 1"
FEATURES = (
    "gap",
    "about",
    "about_gap",
    "log_rank",
    "lexical",
    "title_cov",
    "title_prf",
    "chunks",
    "q_cos",
)
STORY_ARTICLES = 3  # the best articles that, with the question, make the story vector


class StoryModelError(CalibrationError):
    """The story model is missing or malformed; the message says what to run."""


@dataclass(frozen=True)
class Candidates:
    """A story's candidate articles, best first, with their features and vectors."""

    rows: list[int]  # article rows
    scores: np.ndarray  # each one's best sentence score
    features: np.ndarray  # (n, len(FEATURES))
    vectors: np.ndarray  # (n, dim) unit mean sentence vectors
    story: np.ndarray  # (dim,) the story's vector


def article_vectors(index: Index, rows: list[int]) -> np.ndarray:
    """(len(rows), dim): each article's unit mean sentence vector (zeros without sentences)."""
    out = np.zeros((len(rows), index.sent_vectors.shape[1]), np.float32)
    spans = [index.sentence_rows(r) for r in rows]
    flat = [s for rng in spans for s in rng]
    if not flat:
        return out
    vectors = read_rows(index.sent_vectors, flat)
    at = 0
    for i, rng in enumerate(spans):
        if len(rng):
            v = vectors[at : at + len(rng)].mean(0)
            out[i] = v / (np.linalg.norm(v) or 1.0)
            at += len(rng)
    return out


def candidates(index: Index, ranking: Ranking, topic: str, limit: int) -> Candidates:
    """The `limit` best articles of `ranking` (a deep ranking of the story's `topic`)."""
    best: dict[int, float] = {}
    lexical: dict[int, float] = {}
    chunks: Counter[int] = Counter()
    for hit in ranking.hits:
        art = int(index.chunk_article[hit.chunk_row])
        best[art] = max(best.get(art, -9.0), hit.score)
        lexical[art] = max(lexical.get(art, 0.0), hit.lexical)
        chunks[art] += 1
    rows = sorted(best, key=lambda r: (-best[r], r))[:limit]
    if not rows:
        dim = len(ranking.vector)
        return Candidates(
            [], np.zeros(0), np.zeros((0, len(FEATURES))), np.zeros((0, dim)), ranking.vector
        )
    vectors = article_vectors(index, rows)
    story = ranking.vector + vectors[:STORY_ARTICLES].mean(0)
    story = story / (np.linalg.norm(story) or 1.0)
    about = vectors @ story
    scores = np.array([best[r] for r in rows])
    words = set(tokenize(topic)) if ranking.lexical_weight > 0 else set()
    titles = [set(tokenize(index.articles[r].title)) for r in rows]
    shared = Counter(t for ts in titles[:5] for t in ts)
    named = {t for t, n in shared.items() if n >= 2}
    top_lexical = max(lexical.values()) or 1.0
    x = np.array(
        [
            [
                scores[0] - scores[i],
                about[i],
                about[:STORY_ARTICLES].max() - about[i],
                math.log1p(i),
                lexical[r] / top_lexical if words else 0.0,
                len(words & titles[i]) / len(words) if words else 0.0,
                len(named & titles[i]) / len(named) if named else 0.0,
                min(chunks[r], 5) / 5,
                float(vectors[i] @ ranking.vector),
            ]
            for i, r in enumerate(rows)
        ]
    )
    return Candidates(rows, scores, x, vectors, story)


@dataclass(frozen=True)
class StoryModel:
    groups: dict[str, GroupModel]  # "same", "cross" (qa.abstain.group_of)
    notes: dict

    def probabilities(self, ranking: Ranking, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Each candidate's probability of being about the story, and the group's threshold."""
        g = self.groups.get(group_of(ranking)) or self.groups["same"]
        if not len(x):
            return np.zeros(0), g.threshold
        z = (x - np.array(g.mean)) / np.array(g.scale)
        logits = np.clip(g.intercept + z @ np.array(g.coef), -50, 50)
        return 1.0 / (1.0 + np.exp(-logits)), g.threshold

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
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
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> StoryModel:
        if data.get("format") != FORMAT or tuple(data.get("features", ())) != FEATURES:
            raise StoryModelError(
                f"story model has format {data.get('format')!r} and features "
                f"{data.get('features')}, expected {FORMAT!r} with {list(FEATURES)}; "
                "refit it with `python bench/stories.py ... --fit`"
            )
        groups = {
            name: GroupModel(
                tuple(g["mean"]),
                tuple(g["scale"]),
                tuple(g["coef"]),
                float(g["intercept"]),
                float(g["threshold"]),
            )
            for name, g in data["groups"].items()
        }
        if "same" not in groups:
            raise StoryModelError("story model has no 'same' group; refit it")
        return cls(groups, data.get("notes", {}))


def load_story_model(path: Path | None = None) -> StoryModel:
    """The model in `path`; by default the calibration folder's, or the shipped one where
    that folder has none (the features are relative scores, which transfer better than the
    abstention's absolute ones)."""
    path = fitted_file(STORY_FILE) if path is None else path
    data = read_fitted(path, "story model", "python bench/stories.py ... --fit", StoryModelError)
    return StoryModel.from_dict(data)


def save_story_model(model: StoryModel, path: Path) -> None:
    write_fitted(model.to_dict(), path, indent=1)
