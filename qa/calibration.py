"""Where the fitted files live: the abstention model and the English query shift.

Both are fitted for one embedding model by `bench/answers.py --fit` (qa.abstain, qa.shift) and
hold for that model only. The shipped ones, in this package, are for the bundled default model.
Another model gets a folder of its own:

    python bench/answers.py --arcd A --tydi T --distractors NEWS --work W \
        --model MODEL --fit --calibration DIR
    ISNAD_MODEL=MODEL ISNAD_CALIBRATION=DIR isnad serve

What this module does NOT do: fit the files (bench/), or know what they hold (qa.abstain,
qa.shift, qa.reader, qa.story_model): it finds, reads and writes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENV = "ISNAD_CALIBRATION"
SHIPPED = Path(__file__).resolve().parent
ABSTAIN_FILE = "abstain_model.json"
SHIFT_FILE = "query_shift.json"
READER_FILE = "reader_model.json"
STORY_FILE = "story_model.json"
HOW = (
    "fit one with `python bench/answers.py ... --model MODEL --fit --calibration DIR` "
    f"and set {ENV}=DIR"
)


class CalibrationError(Exception):
    """A fitted file is missing, unreadable or malformed; the message says what to run."""


def calibration_dir() -> Path:
    """$ISNAD_CALIBRATION when set (it must be a folder), else the shipped files' folder."""
    value = os.environ.get(ENV)
    if not value:
        return SHIPPED
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise CalibrationError(f"{ENV}={value} is not a folder; {HOW}, or unset {ENV}")
    return folder


def fitted_file(name: str) -> Path:
    """The calibration folder's `name`, or the shipped one where that folder has none: for the
    fitted files that hold for any embedding model (the reader's, the story model's)."""
    path = calibration_dir() / name
    return path if path.exists() else SHIPPED / name


def read_fitted(path: Path, what: str, refit: str, error: type[CalibrationError]) -> dict:
    """The JSON in a fitted file, or `error` in one line naming `what` and the command that
    fits it again (`refit`)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"cannot read the {what} {path} ({exc}); refit it with `{refit}`") from exc


def write_fitted(data: dict, path: Path, indent: int | None = None) -> None:
    """`data` as JSON in `path`, whole or not at all (written beside it, then moved over it)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent) + "\n", encoding="utf-8")
    tmp.replace(path)
