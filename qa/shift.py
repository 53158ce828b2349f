"""Moving a question asked in one script towards the corpus's language before the dense search.

A multilingual embedding model keeps part of a text's language in its vector: an English
question and its Arabic original are at cosine ~.84 with e5-small, and the difference points
the same way for every pair (the mean difference fitted on ARCD's 350 pairs and on TyDi's 350
are at cosine .98). Subtracting that mean difference from an English question's vector before
it searches Arabic articles is the language-centering of Libovický et al. (2020, "On the
language neutrality of pre-trained multilingual representations"): measured crosswise
(bench/answers.py, the offset fitted on one set's pairs, reported on the other's English
questions), it ranks the answering passage first more often on ARCD and in the top five on both.

The offset is one vector per (model, question script, corpus script), in qa/query_shift.json,
written by `bench/answers.py ... --fit` from both sets' hand-translated question pairs. It is
applied only where it was fitted: a question written in its source script ("latin"), over a
corpus written in its target script ("arabic") and not in the source script, embedded by the
model it was fitted for. Everything else is searched with its vector unchanged.

What this module does NOT do: embed (the retriever's encoder does) or choose which questions
were translated (bench/data/english-*.jsonl).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.lexical import script_of
from qa.calibration import SHIFT_FILE, CalibrationError, calibration_dir, write_fitted

FORMAT = "isnad-query-shift 1"


class QueryShiftError(CalibrationError):
    """The query shift file is malformed; the message says what to run."""


@dataclass(frozen=True)
class QueryShift:
    model_id: str
    source: str  # the question's script, as index.lexical.script_of names it
    target: str  # the corpus's script
    offset: np.ndarray  # mean(source-script question vector - target-script original vector)
    pairs: int = 0  # question pairs it was fitted on

    def applies(self, model_id: str, corpus_scripts: frozenset[str]) -> bool:
        return (
            model_id == self.model_id
            and self.target in corpus_scripts
            and self.source not in corpus_scripts
        )

    def apply(self, vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts` written in the source script lose the offset (rows re-normalised);
        the others are returned as they are."""
        rows = [i for i, t in enumerate(texts) if script_of(t) == self.source]
        if not rows:
            return vectors
        out = np.array(vectors, dtype=np.float32, copy=True)
        moved = out[rows] - self.offset
        out[rows] = moved / np.maximum(np.linalg.norm(moved, axis=1, keepdims=True), 1e-12)
        return out

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "model_id": self.model_id,
            "source": self.source,
            "target": self.target,
            "pairs": self.pairs,
            "offset": [round(float(x), 6) for x in self.offset],
        }

    @classmethod
    def from_dict(cls, data: dict) -> QueryShift:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise QueryShiftError(
                f"the query shift file is not in the format {FORMAT!r}; "
                "refit it with `python bench/answers.py ... --fit`"
            )
        try:
            offset = np.asarray(data["offset"], dtype=np.float32)
            model_id, source, target = str(data["model_id"]), data["source"], data["target"]
            shift = cls(model_id, source, target, offset, int(data["pairs"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise QueryShiftError(
                f"the query shift file lacks or garbles {exc}; "
                "refit it with `python bench/answers.py ... --fit`"
            ) from exc
        if offset.ndim != 1 or not np.isfinite(offset).all():
            raise QueryShiftError("the query shift offset is not one finite vector; refit it")
        return shift


def fit_query_shift(
    source_vectors: np.ndarray, target_vectors: np.ndarray, model_id: str, source: str, target: str
) -> QueryShift:
    """The mean difference of paired question vectors (row i of each: one question, two
    languages)."""
    assert source_vectors.shape == target_vectors.shape and len(source_vectors), "paired rows"
    offset = (np.asarray(source_vectors) - np.asarray(target_vectors)).mean(axis=0)
    return QueryShift(model_id, source, target, offset.astype(np.float32), len(source_vectors))


def load_query_shift(path: Path | None = None) -> QueryShift | None:
    """The shift in `path` (default: the calibration folder's, qa.calibration), or None where
    no file was written (a model fitted without question pairs: its questions are searched
    as embedded)."""
    path = Path(path) if path is not None else calibration_dir() / SHIFT_FILE
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QueryShiftError(f"cannot read the query shift {path} ({exc})") from exc
    try:
        return QueryShift.from_dict(json.loads(text))
    except ValueError as exc:
        raise QueryShiftError(f"the query shift {path} is not JSON ({exc}); refit it") from exc


def save_query_shift(shift: QueryShift, path: Path) -> None:
    write_fitted(shift.to_dict(), path)
