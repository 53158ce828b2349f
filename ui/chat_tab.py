"""The Chat tab: questions and cited answers, the sources they open, conversations and exports.

`build_chat_tab(demo, live, store)` lays out the tab inside an open `gr.Blocks` and wires its
handlers: asking (with the filters), opening a source at its span, the conversation list (new,
open, rename, delete), exporting to Markdown or HTML, and the page-load restore (the
conversation this browser had open, and the article a permalink asks for). It returns the
filter controls and how to refill them, for the tabs that change the index.

What this module does NOT do: render HTML (ui/render.py), answer (ui/live.py, qa/), or store
conversations (ui/conversations.py).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from index.store import IndexMissing
from qa.answer import QuestionError
from qa.export import DEFAULT_BASE_URL, to_html, to_markdown
from qa.filters import parse_filters
from ui.conversations import ConversationError, Conversations
from ui.errors import as_gr_error
from ui.live import LiveIndex, ask
from ui.render import (
    Turn,
    chat_messages,
    open_permalink,
    open_source,
    render_empty_view,
    source_choices,
)
from ui.style import SCROLL_TO_MARK

WHOLE = ("المحادثة كلها · Whole conversation", "all")
# how a question is answered: a timeline when it asks how a story developed (qa.story), or always,
# or never
MODES = [
    ("تلقائي · Auto", "auto"),
    ("خط زمني · Timeline", "timeline"),
    ("إجابة · Answer", "answer"),
]


@dataclass
class ChatTab:
    filter_controls: list  # source, category, since, until: refilled when the index changes
    refresh_filters: Callable[[], tuple]  # their updates, from the live index


def build_chat_tab(demo: gr.Blocks, live: LiveIndex, store: Conversations, secret: str) -> ChatTab:
    """The Chat tab inside `demo` (an open gr.Blocks); `secret` signs the browser's memory of
    its open conversation."""
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
                        [WHOLE],
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
                    # enabled by the page's restore: a question asked before the restore had
                    # finished would have had its answer wiped off the screen by it
                    interactive=False,
                )
                mode = gr.Radio(
                    MODES,
                    value="auto",
                    show_label=False,
                    container=False,
                    elem_id="isnad-mode",
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

    def shown(cid: str | None, turns: list[Turn], view: str | None = None, user=None):
        """What a conversation puts on screen: chat, its turns, every answer's sources, the
        article view, the conversation list (`user`'s), the current id, the export choices."""
        return (
            chat_messages(turns),
            turns,
            gr.Radio(choices=source_choices(turns), value=None),
            view or render_empty_view(),
            gr.Radio(choices=conversation_choices(store, user), value=cid),
            cid,
            gr.Dropdown(choices=export_choices(turns), value="all"),
        )

    def on_ask(question, turns, cid, since, until, sources, categories, mode, request: gr.Request):
        user = _user(request)
        with as_gr_error():
            filters = parse_filters(since, until, sources, categories)
            if not store.exists(cid, user):
                cid, turns = store.create(question, user), []
            turns = ask(live, question, turns or [], filters, mode or "auto")
            store.append(cid, turns[-1], user)
        chat_, turns, radio, view, listed, cid, scope = shown(cid, turns, user=user)
        return chat_, turns, "", radio, view, listed, cid, scope

    def on_source(turns: list[Turn] | None, choice: str | None) -> str:
        return open_source(turns or [], choice)

    def on_new(request: gr.Request):
        return shown(None, [], user=_user(request))

    def on_open(cid: str | None, request: gr.Request):
        """Open a conversation from the list (None: none chosen)."""
        user = _user(request)
        with as_gr_error():
            cid = cid if store.exists(cid, user) else None
            return shown(cid, store.turns(cid, user) if cid else [], user=user)

    def on_load(cid: str | None, request: gr.Request):
        """After a page reload or a server restart: the conversation this browser had open (a
        new browser starts a new one; the list offers the others), and the article a permalink
        asks for."""
        user = _user(request)
        cid = cid if store.exists(cid, user) else None
        turns = store.turns(cid, user) if cid else []
        query = dict(request.query_params) if request is not None else {}
        try:
            articles = {a.id: a for a in live.snapshot()[0].articles}
        except IndexMissing:
            articles = {}
        view = open_permalink(articles, query)
        return (*shown(cid, turns, view, user), gr.Textbox(interactive=True))

    def on_rename(cid: str | None, title: str, request: gr.Request):
        user = _user(request)
        with as_gr_error():
            if not store.exists(cid, user):
                raise ConversationError("choose a conversation to rename")
            store.rename(cid, title, user)
        return gr.Radio(choices=conversation_choices(store, user), value=cid), ""

    def on_delete(cid: str | None, request: gr.Request):
        store.delete(cid, _user(request))  # nothing happens to another user's
        return on_new(request)

    def on_export(turns, cid, scope, fmt: str, request: gr.Request):
        with as_gr_error():
            return export_file(store, cid, turns or [], scope, fmt, _user(request))

    def on_export_markdown(turns, cid, scope, request: gr.Request):
        return on_export(turns, cid, scope, "markdown", request)

    def on_export_html(turns, cid, scope, request: gr.Request):
        return on_export(turns, cid, scope, "html", request)

    def refresh_filters():
        """The filter controls filled from the index: its sources, categories, date range."""
        sources, categories, first, last = filter_options(live)
        return (
            gr.Dropdown(choices=sources),
            gr.Dropdown(choices=categories),
            gr.Textbox(placeholder=first or "YYYY-MM-DD"),
            gr.Textbox(placeholder=last or "YYYY-MM-DD"),
        )

    filter_controls = [source_filter, category_filter, since, until]
    screen = [chat, turns, sources_radio, article, conversations, conversation, scope]
    question.submit(
        on_ask,
        [question, turns, conversation, since, until, source_filter, category_filter, mode],
        [chat, turns, question, sources_radio, article, conversations, conversation, scope],
        api_name="ask",
        concurrency_limit=4,
    )
    sources_radio.input(on_source, [turns, sources_radio], article, api_name="open_source").then(
        None, js=SCROLL_TO_MARK
    )
    chat.clear(on_new, None, screen, api_name="clear")
    new.click(on_new, None, screen, api_name="new_conversation")
    conversations.input(on_open, conversations, screen, api_name="open_conversation")
    rename.click(on_rename, [conversation, title], [conversations, title], api_name="rename")
    delete.click(on_delete, conversation, screen, api_name="delete_conversation")
    export_md.click(
        on_export_markdown,
        [turns, conversation, scope],
        exported,
        api_name="export_markdown",
    )
    export_html.click(
        on_export_html,
        [turns, conversation, scope],
        exported,
        api_name="export_html",
    )
    demo.load(on_load, conversation, [*screen, question], api_name="restore").then(
        None, js=SCROLL_TO_MARK
    )
    demo.load(refresh_filters, None, filter_controls, api_name="filters")
    return ChatTab(filter_controls, refresh_filters)


def _user(request: gr.Request | None) -> str | None:
    """The logged-in user (None without logins): whose conversations these are."""
    return getattr(request, "username", None) if request is not None else None


def conversation_choices(store: Conversations, user: str | None = None) -> list[tuple[str, str]]:
    return [(f"{c.title} ({c.turns})", c.id) for c in store.list(user)]


def export_choices(turns: list[Turn]) -> list[tuple[str, str]]:
    """ "all", or one answer: its index in the conversation."""
    return [WHOLE] + [
        (f"س{i + 1} · Q{i + 1}: {t.answer.question[:50]}", str(i)) for i, t in enumerate(turns)
    ]


def export_file(
    store: Conversations,
    cid: str | None,
    turns: list[Turn],
    scope: str | None,
    fmt: str,
    user: str | None = None,
) -> str:
    """Write the conversation (or the one answer `scope` names) as Markdown or HTML to a temp
    file; its path (Gradio serves it for download)."""
    if not turns:
        raise QuestionError("nothing to export yet; ask a question first")
    chosen = turns if scope in (None, "", "all") else [turns[int(scope)]]
    title = store.title(cid, user) if store.exists(cid, user) else "isnad"
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
