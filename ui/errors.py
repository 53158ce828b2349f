"""Expected failures as the web UI shows them: one line in a `gr.Error`.

Every tab's handlers run inside `as_gr_error()`: a bad question, filter, upload or a missing
index reaches the person as the first line of its message; anything else is a bug and
propagates.

What this module does NOT do: decide what is expected anywhere else (the CLI has its own list).
"""

from __future__ import annotations

from contextlib import contextmanager

import gradio as gr

from index.articles import ArticleError
from index.encoder import EncoderError
from index.store import IndexError_
from qa.answer import QuestionError
from qa.calibration import CalibrationError
from qa.filters import FilterError
from ui.conversations import ConversationError
from ui.uploads import UploadError

EXPECTED = (
    QuestionError,
    ConversationError,
    FilterError,
    ArticleError,
    EncoderError,
    IndexError_,
    CalibrationError,
    UploadError,
)


def one_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextmanager
def as_gr_error():
    """Expected failures become one-line gr.Error messages in the UI."""
    try:
        yield
    except EXPECTED as exc:
        raise gr.Error(one_line(exc)) from exc
