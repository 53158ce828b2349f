"""Where the fitted files live: the abstention model and the English query shift.

Both are fitted for one embedding model by `bench/answers.py --fit` (qa.abstain, qa.shift) and
hold for that model only. The shipped ones, in this package, are for the bundled default model.
Another model gets a folder of its own:

    python bench/answers.py --arcd A --tydi T --distractors NEWS --work W \
        --model MODEL --fit --calibration DIR
    ISNAD_MODEL=MODEL ISNAD_CALIBRATION=DIR isnad serve

What this module does NOT do: read or fit the files (qa.abstain, qa.shift, bench/answers.py).
"""

from __future__ import annotations

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
