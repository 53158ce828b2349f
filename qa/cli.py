"""The `isnad` command line: build and inspect the index, ask questions, serve the web UI.

Every expected failure (bad input, a missing or mismatched index, a model that cannot load)
ends as one line on stderr and exit code 1; nothing is half written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from index.articles import ArticleError
from index.encoder import EncoderError
from index.store import IndexError_, default_index_dir

EXPECTED = (ArticleError, EncoderError, IndexError_)

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


def _fail(exc: Exception) -> None:
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    click.echo(f"isnad: error: {message}", err=True)
    sys.exit(1)


def _encoder(model: str | None):
    from index.encoder import configure_threads, load_encoder

    configure_threads()
    return load_encoder(model)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """isnad: answers about news articles, every claim cited to an exact span."""


@main.group("index")
def index_group() -> None:
    """Build, update and inspect the index."""


@index_group.command("build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@model_option
@click.option("--max-chars", default=1_000_000, show_default=True, help="Longest article kept.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as JSON.")
def index_build(paths, index_dir, model, max_chars, as_json) -> None:
    """Build the index from PATHS (folders, .txt/.md/.jsonl files), or update it.

    Only new and changed articles are embedded; articles no longer under PATHS are dropped.
    """
    from tqdm import tqdm

    from index.build import build_index

    index_dir = index_dir or default_index_dir()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="text", desc="embedding", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        report = build_index(
            paths, index_dir, _encoder(model), progress=progress, max_chars=max_chars
        )
    except EXPECTED as exc:
        _fail(exc)
    finally:
        if bar is not None:
            bar.close()
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


@index_group.command("status")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def index_status(index_dir, as_json) -> None:
    """Show what the index holds: articles, chunks, model, format, build time, skipped files."""
    from index.store import read_manifest

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
    }
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False, indent=1))
        return
    click.echo(f"index      {index_dir} (format {m['format']})")
    click.echo(f"articles   {m['counts']['articles']}")
    click.echo(f"chunks     {m['counts']['chunks']}")
    click.echo(f"sentences  {m['counts']['sentences']}")
    click.echo(f"model      {m['model']['id']} ({m['model']['dim']} dimensions)")
    click.echo(f"built      {m['built_at']}")
    click.echo(f"sources    {', '.join(m['sources'])}")
    click.echo(f"skipped    {len(m['skipped'])}")
    for s in m["skipped"]:
        click.echo(f"  {s['source']}: {s['reason']}")


@main.command("serve")
@index_option
@model_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7860, show_default=True, help="Port to listen on.")
@click.option(
    "--corpus",
    "sources",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Article folders/files the index is built from (default: the bundled seeds/).",
)
def serve(index_dir, model, host, port, sources) -> None:
    """Serve the web UI (chat with cited sources, and index management)."""
    import app

    try:
        app.main(
            index_dir=index_dir, sources=list(sources) or None, host=host, port=port, model=model
        )
    except EXPECTED as exc:
        _fail(exc)


if __name__ == "__main__":
    main()
