"""The Archive tab: the articles in the index as a paged table, searched, filtered, opened whole,
and deleted after a confirmation.

`build_archive_tab(demo, live, refresh)` lays out the tab inside an open `gr.Blocks` and wires
its handlers. The table (newest first, PAGE rows) comes from `LiveIndex.listing()`
(index/listing.py: titles, metadata and postings, no article text); a click on a row opens that
article (metadata, url, permalink, wire copies, its whole text); the articles chosen from the
page, or the open one, are deleted only after the confirmation that names them is answered "yes",
through `LiveIndex.remove` (the update-by-id path of `isnad index remove`), after which the chat
answers from the new index. `refresh` refills what other tabs show of the index.

What this module does NOT do: list or search (index/listing.py), remove (ui/live.py, index/), or
render answers (ui/render.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import gradio as gr

from index.listing import ArticleView, ListingError, NoSuchArticle, Page
from index.store import IndexMissing
from qa.export import permalink
from qa.filters import parse_filters
from ui.errors import as_gr_error, one_line
from ui.live import LiveIndex
from ui.render import ALSO_REPORTED, esc, meta_line
from ui.style import FONTS

PAGE = 100
HEADERS = ["التاريخ · Date", "العنوان · Title", "المصدر · Source", "القسم · Category",
           "مقاطع · Chunks", "نسخ · Copies"]  # fmt: skip
DATATYPES = ["str", "str", "str", "str", "number", "number"]
EMPTY = "اختر مقالة من الجدول · Choose an article in the table"
# The table's cells in isnad's fonts, each reading in its own direction (app.launch appends this
# to ui/style.py's CSS); the confirmation stands out.
CSS = f"""
#isnad-archive-table [role=gridcell], #isnad-archive-table th {{ font-family: {FONTS}; }}
#isnad-archive-table [role=gridcell] > div, #isnad-archive-table th span {{
  unicode-bidi: plaintext; text-align: start; }}
#isnad-archive-question {{ border: 2px solid #dc2626; border-radius: 8px; padding: .5em .8em; }}
"""


@contextmanager
def archive_errors():
    """The archive's own expected failures, and every tab's, as one-line gr.Errors."""
    try:
        with as_gr_error():
            yield
    except (ListingError, NoSuchArticle) as exc:
        raise gr.Error(one_line(exc)) from exc


def build_archive_tab(
    demo: gr.Blocks, live: LiveIndex, refresh: tuple[list, Callable[[], tuple]]
) -> None:
    """The Archive tab inside `demo`; `refresh`: (components of other tabs, their updates) to
    apply after articles were deleted."""
    others, updates = refresh
    offset = gr.State(0)
    page_ids = gr.State([])  # the ids of the table's rows, in order
    opened = gr.State(None)  # the id of the article on view
    pending = gr.State([])  # ids waiting for the confirmation
    with gr.Tab("الأرشيف · Archive", elem_id="isnad-archive-tab") as tab:
        with gr.Row():
            query = gr.Textbox(
                label="ابحث في العناوين والنصوص · Search titles and texts",
                elem_id="isnad-archive-query",
                scale=3,
            )
            since = gr.Textbox(label="من · Since", placeholder="YYYY-MM-DD",
                               elem_id="isnad-archive-since", scale=1)  # fmt: skip
            until = gr.Textbox(label="إلى · Until", placeholder="YYYY-MM-DD",
                               elem_id="isnad-archive-until", scale=1)  # fmt: skip
            source = gr.Dropdown([], value=[], multiselect=True, label="المصدر · Source",
                                 elem_id="isnad-archive-source", scale=1)  # fmt: skip
            category = gr.Dropdown([], value=[], multiselect=True, label="القسم · Category",
                                   elem_id="isnad-archive-category", scale=1)  # fmt: skip
        with gr.Row():
            search = gr.Button("ابحث · Search", variant="primary", elem_id="isnad-archive-search")
            previous = gr.Button("◀ السابق · Previous", elem_id="isnad-archive-prev")
            following = gr.Button("التالي · Next ▶", elem_id="isnad-archive-next")
        summary = gr.HTML("", elem_id="isnad-archive-summary")
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.Dataframe(
                    headers=HEADERS,
                    datatype=DATATYPES,
                    value=[],
                    interactive=False,
                    wrap=True,
                    max_height=620,
                    column_widths=[92, 300, 110, 90, 64, 64],
                    elem_id="isnad-archive-table",
                )
                with gr.Row():
                    chosen = gr.Dropdown(
                        [],
                        value=[],
                        multiselect=True,
                        label="للحذف · To delete (articles of this page)",
                        elem_id="isnad-archive-chosen",
                        scale=4,
                    )
                    delete = gr.Button(
                        "احذف المختار · Delete the chosen",
                        variant="stop",
                        size="sm",
                        elem_id="isnad-archive-delete",
                        scale=1,
                    )
                with gr.Group(visible=False, elem_id="isnad-archive-confirm") as confirm:
                    question = gr.HTML("", elem_id="isnad-archive-question")
                    with gr.Row():
                        yes = gr.Button("نعم، احذف · Yes, delete", variant="stop",
                                        elem_id="isnad-archive-yes")  # fmt: skip
                        no = gr.Button("إلغاء · Cancel", elem_id="isnad-archive-no")
            with gr.Column(scale=2):
                view = gr.HTML(_empty(), elem_id="isnad-archive-article")
                delete_one = gr.Button(
                    "احذف هذه المقالة · Delete this article",
                    variant="stop",
                    size="sm",
                    visible=False,
                    elem_id="isnad-archive-delete-one",
                )
        message = gr.Textbox(
            label="النتيجة · Result", interactive=False, elem_id="isnad-archive-message"
        )

    filters = [query, since, until, source, category]
    shown = [table, summary, page_ids, offset, chosen]

    def list_page(q, lo, hi, sources, categories, start: int):
        """The table from row `start` of what matches, its summary line, ids, offset and the
        choices to delete among."""
        with archive_errors():
            f = parse_filters(lo, hi, sources, categories)
            try:
                listing = live.listing()
            except IndexMissing:
                return [], _summary(None, 0), [], 0, gr.Dropdown(choices=[], value=[])
            page = listing.page(q or "", f.since, f.until, f.sources, f.categories, PAGE, start)
        choices = [(f"{(r.published or '')[:10]} {r.title} · {r.id}", r.id) for r in page.rows]
        ids = [r.id for r in page.rows]
        return _rows(page), _summary(page, start), ids, start, gr.Dropdown(choices, value=[])

    def on_search(q, lo, hi, sources, categories):
        return list_page(q, lo, hi, sources, categories, 0)

    def on_previous(q, lo, hi, sources, categories, start):
        return list_page(q, lo, hi, sources, categories, max(0, (start or 0) - PAGE))

    def on_next(q, lo, hi, sources, categories, start):
        out = list_page(q, lo, hi, sources, categories, (start or 0) + PAGE)
        if not out[2] and out[3] > 0:  # past the end: stay on the last page
            return list_page(q, lo, hi, sources, categories, start or 0)
        return out

    def on_select(ids: list[str], evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        if not ids or row is None or row >= len(ids):
            return gr.skip(), gr.skip(), gr.skip()
        return open_article(ids[row])

    def open_article(article_id: str):
        with archive_errors():
            view_ = live.listing().article(article_id)
        return render_view(view_), article_id, gr.Button(visible=True)

    def ask_delete(ids: list[str] | None):
        if not ids:
            raise gr.Error("choose the articles to delete first (the list beside the button)")
        return confirm_delete(list(ids))

    def ask_delete_one(article_id: str | None):
        if not article_id:
            raise gr.Error("open an article first")
        return confirm_delete([article_id])

    def confirm_delete(ids: list[str]):
        with archive_errors():
            listing = live.listing()
            titles = [listing.article(i).row.title for i in ids]
        items = "".join(f'<li dir="auto">{esc(t)} <code>{esc(i)}</code></li>'
                        for i, t in zip(ids, titles, strict=True))  # fmt: skip
        text = (
            f'<div class="isnad-note" dir="auto">احذف {len(ids)} من الفهرس؟ · Delete '
            f"{len(ids)} article{'s' if len(ids) > 1 else ''} from the index? Their source files "
            f"stay where they are.</div><ul>{items}</ul>"
        )
        return gr.Group(visible=True), text, ids

    def on_delete(ids: list[str], opened_id, q, lo, hi, sources, categories, start):
        with archive_errors():
            report = live.remove(ids)
        gone = opened_id in ids
        listed = list_page(q, lo, hi, sources, categories, start or 0)
        note = (
            f"حُذفت {len(report.removed)} · Deleted {len(report.removed)}: "
            f"{', '.join(report.removed)}; the index holds {report.articles:,} articles"
        )
        return (
            gr.Group(visible=False),
            [],
            note,
            *listed,
            _empty() if gone else gr.skip(),
            None if gone else opened_id,
            gr.Button(visible=not gone),
            *updates(),
        )

    def on_cancel():
        return gr.Group(visible=False), []

    def refresh_choices():
        """The sources and categories to filter by, and the index's first and last days."""
        try:
            catalog = live.snapshot()[0].catalog
        except IndexMissing:
            return gr.Dropdown(choices=[]), gr.Dropdown(choices=[]), gr.skip(), gr.skip()
        span = catalog.date_range()
        first, last = (d.isoformat() for d in span) if span else ("YYYY-MM-DD", "YYYY-MM-DD")
        return (
            gr.Dropdown(choices=catalog.names("source")),
            gr.Dropdown(choices=catalog.names("category")),
            gr.Textbox(placeholder=first),
            gr.Textbox(placeholder=last),
        )

    listed = dict(inputs=filters, outputs=shown)
    search.click(on_search, **listed, api_name="archive_search")
    query.submit(on_search, **listed, api_name=False)
    tab.select(on_search, **listed, api_name=False)  # after an upload or a deletion elsewhere
    previous.click(on_previous, [*filters, offset], shown, api_name="archive_previous")
    following.click(on_next, [*filters, offset], shown, api_name="archive_next")
    table.select(on_select, page_ids, [view, opened, delete_one], api_name=False)
    delete.click(ask_delete, chosen, [confirm, question, pending], api_name=False)
    delete_one.click(ask_delete_one, opened, [confirm, question, pending], api_name=False)
    yes.click(
        on_delete,
        [pending, opened, *filters, offset],
        [confirm, pending, message, *shown, view, opened, delete_one, *others],
        api_name="archive_delete",
        concurrency_id="build",
        concurrency_limit=1,
    )
    no.click(on_cancel, None, [confirm, pending], api_name=False)
    demo.load(on_search, **listed, api_name=False)
    demo.load(refresh_choices, None, [source, category, since, until], api_name=False)


def _rows(page: Page) -> list[list]:
    return [
        [(r.published or "")[:10], r.title, r.source, r.category, r.chunks, r.copies]
        for r in page.rows
    ]


def _summary(page: Page | None, start: int) -> str:
    if page is None:
        arabic, english = "لا فهرس بعد", "No index yet: add articles in the Index tab"
    else:
        arabic = f"المقالات المطابقة: {page.total:,}"
        english = f"{page.total:,} article{'s' if page.total != 1 else ''} match"
        if page.rows:
            english += f"; {start + 1:,}-{start + len(page.rows):,} shown, newest first"
        else:
            english += "; none on this page"
    return (
        f'<div class="isnad-meta"><span dir="rtl">{esc(arabic)}</span> · '
        f'<span dir="ltr" class="isnad-archive-count">{esc(english)}</span></div>'
    )


def _empty() -> str:
    return f'<div class="isnad-empty" dir="auto">{esc(EMPTY)}</div>'


def render_view(view: ArticleView) -> str:
    """One article whole: title, date, source, category, url, permalink, counts, wire copies,
    then its text exactly (escaped, nothing rewritten)."""
    r = view.row
    link = permalink("", r.id, *view.lead())
    facts = [
        f"{esc(r.category)}" if r.category else "",
        f"{r.chunks:,} مقاطع · chunks",
        f'<a class="isnad-permalink" href="{esc(link)}">رابط ثابت · permalink</a>',
        f"<code>{esc(r.id)}</code>",
    ]
    copies = ""
    if view.wire_copies:
        items = "".join(
            f'<li dir="auto"><span class="isnad-title" dir="auto">{esc(c.title)}</span> '
            f"{meta_line(c.published, c.source, c.url)} <code>{esc(c.id)}</code></li>"
            for c in view.wire_copies
        )
        copies = (
            '<div class="isnad-copies" dir="auto">'
            f'<span class="isnad-sources-head" dir="auto">{esc(ALSO_REPORTED)}</span>'
            f"<ul>{items}</ul></div>"
        )
    return (
        '<div class="isnad-article" dir="auto">'
        f'<h3 class="isnad-article-title" dir="auto">{esc(r.title)}</h3>'
        f"{meta_line(r.published, r.source, r.url)} "
        f'<span class="isnad-meta" dir="auto">{" · ".join(f for f in facts if f)}</span>'
        f"{copies}"
        f'<div class="isnad-article-body" dir="auto">{esc(view.text)}</div></div>'
    )
