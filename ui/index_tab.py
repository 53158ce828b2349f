"""The Index tab: what the index holds, adding article files, rebuilding from the sources.

`build_index_tab(demo, live, upload_dir, refresh)` lays out the tab inside an open `gr.Blocks`
and wires its handlers. Builds run one at a time (one concurrency group for "add" and
"rebuild"); questions keep answering from the index they started with (ui/live.py). After a
build, `refresh` (outputs, updates) refills what other tabs show of the index (the chat's
filters).

What this module does NOT do: check or save uploads (ui/uploads.py), build (index/), or render
the status table (ui/render.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from ui.errors import as_gr_error
from ui.live import LiveIndex
from ui.render import render_status
from ui.uploads import UPLOAD_TYPES, add_files, build_summary

_PROGRESS = gr.Progress()  # a marker: Gradio hands each call its own tracker


def build_index_tab(
    demo: gr.Blocks,
    live: LiveIndex,
    upload_dir: Path,
    refresh: tuple[list, Callable[[], tuple]],
) -> None:
    """The Index tab inside `demo`; `refresh`: (components of other tabs, their updates) to
    apply after the index changed."""
    others, updates = refresh
    with gr.Tab("الفهرس · Index"):
        status = gr.HTML(render_status(live.index_dir, note=live.note()), elem_id="isnad-status")
        files = gr.File(
            label="أضف مقالات · Add articles (.txt .md .jsonl .html .xml .rss .atom; 20 MB)",
            file_count="multiple",
            file_types=list(UPLOAD_TYPES),
            elem_id="isnad-upload",
        )
        with gr.Row():
            add = gr.Button("أضف وفهرس · Add and index", variant="primary")
            rebuild = gr.Button("أعد البناء · Rebuild")
        with gr.Row():  # a page or a feed, read as `isnad index build URL` reads it
            url = gr.Textbox(label="أو من رابط · Or from a URL (a page or an RSS/Atom feed)",
                             placeholder="https://", elem_id="isnad-url", scale=4)  # fmt: skip
            add_url = gr.Button("اجلب وفهرس · Fetch and index", elem_id="isnad-add-url", scale=1)
        message = gr.Textbox(label="النتيجة · Result", interactive=False, elem_id="isnad-message")

    def on_status() -> str:
        return render_status(live.index_dir, note=live.note())

    def on_add(files: list[str] | None, progress=_PROGRESS):
        pairs = [(Path(f), Path(f).name) for f in files or []]
        with as_gr_error():
            message = add_files(live, upload_dir, pairs, progress_bar(progress))
        return message, on_status(), None, *updates()

    def on_add_url(address: str, progress=_PROGRESS):
        with as_gr_error():
            r = live.add_url(address or "", progress_bar(progress))
        return f"{address.strip()}: {build_summary(r)}", on_status(), "", *updates()

    def on_rebuild(progress=_PROGRESS):
        with as_gr_error():
            r = live.rebuild(progress_bar(progress))
        return f"Index: {build_summary(r)}", on_status(), *updates()

    add.click(
        on_add,
        files,
        [message, status, files, *others],
        api_name="add_files",
        concurrency_id="build",
        concurrency_limit=1,
    )
    add_url.click(
        on_add_url,
        url,
        [message, status, url, *others],
        api_name="add_url",
        concurrency_id="build",
        concurrency_limit=1,
    )
    rebuild.click(
        on_rebuild,
        None,
        [message, status, *others],
        api_name="rebuild",
        concurrency_id="build",
        concurrency_limit=1,
    )
    demo.load(on_status, None, status, api_name="status")


def progress_bar(progress) -> Callable[[int, int], None]:
    """gr.Progress as build_index's progress(done, total) callback."""
    progress(0, desc="reading articles")
    return lambda done, total: progress((done, total), desc="embedding", unit="texts")
