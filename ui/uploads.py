"""Uploaded article files: check them, save them under safe names, then rebuild the index.

`add_files` checks every file before it saves any (one bad file and nothing changes): the type
(index.articles.FILE_TYPES), the size, that the loader reads all of it, and that no id or text
repeats one already indexed. Files are saved under a plain name (no folders, no leading dots, no
control characters), never overwriting another file, and then `LiveIndex.rebuild` brings them in.

What this module does NOT do: parse articles (index/articles.py), build the index (index/), or
turn its `UploadError`s into messages on screen (app.py).
"""

from __future__ import annotations

import os
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

from index.articles import FEED_TYPES, FILE_TYPES, Article, load_articles, text_key
from index.build import BuildReport
from index.store import IndexMissing
from ui.live import LiveIndex

UPLOAD_TYPES = FILE_TYPES
ACCEPTED = ".txt, .md, .jsonl, .html/.htm or .xml/.rss/.atom feeds"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_NAME_CHARS = 100


class UploadError(Exception):
    """An uploaded file was refused before anything was written; the message says why."""


def safe_filename(name: str) -> str:
    """A plain file name for an upload: no folders, no leading dots, no control characters.

    `safe_filename("../../x.txt") == "x.txt"`; raises UploadError for other file types.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    stem, dot, ext = re.sub(r"[^\w.\- ]+", "_", name).rpartition(".")
    if not dot or f".{ext.lower()}" not in UPLOAD_TYPES:
        shown = f".{ext}" if dot else "(no extension)"
        raise UploadError(f"{name or 'file'}: type {shown} not accepted; upload {ACCEPTED}")
    return f"{stem.strip(' .')[:MAX_NAME_CHARS].strip() or 'upload'}.{ext.lower()}"


def check_upload(path: Path, name: str, existing: Sequence[Article] = ()) -> list[Article]:
    """The articles in an uploaded file, or UploadError if any part of it cannot be used.

    Refused: other types, files over MAX_UPLOAD_BYTES, any line or file the loader skips
    (malformed JSON, not UTF-8, empty), ids or texts already in `existing`.
    """
    shown = safe_filename(name)
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(
            f"{shown}: {size / 2**20:.1f} MB is over the {MAX_UPLOAD_BYTES // 2**20} MB limit; "
            "split it into smaller files"
        )
    articles, skipped = load_articles([path])
    if skipped:
        where = skipped[0].source.replace(str(path), shown)
        more = f" (and {len(skipped) - 1} more problems)" if len(skipped) > 1 else ""
        raise UploadError(f"{where}: {skipped[0].reason}{more}; nothing was added")
    if not articles:
        raise UploadError(f"{shown}: no articles in it; nothing was added")
    ids = {a.id for a in existing}
    texts = {text_key(a.text): a.id for a in existing}
    for a in articles:
        if shown.endswith((".jsonl", *FEED_TYPES)) and a.id in ids:
            raise UploadError(
                f"{shown}: id {a.id!r} is already used by another article; nothing was added"
            )
        if text_key(a.text) in texts:
            raise UploadError(
                f"{shown}: the text of {a.title!r} is already in the index as "
                f"{texts[text_key(a.text)]!r}; nothing was added"
            )
    return articles


def save_upload(
    path: Path, name: str, upload_dir: Path, taken: set[str] = frozenset()
) -> tuple[Path, bool]:
    """Copy an upload into upload_dir under a safe name -> (where, whether it is new).

    A file of that name with the same bytes is reused; with other bytes (or a name in
    `taken`, e.g. an article id elsewhere), `name-2.txt`, `name-3.txt`, ... is used instead.
    """
    upload_dir.mkdir(parents=True, exist_ok=True)
    stem, ext = os.path.splitext(safe_filename(name))
    data = path.read_bytes()
    for i in range(1, 10_000):
        dest = upload_dir / (f"{stem}-{i}{ext}" if i > 1 else f"{stem}{ext}")
        if dest.exists():
            if dest.read_bytes() == data:
                return dest, False
            continue
        if dest.name in taken:
            continue
        tmp = upload_dir / f".{dest.name}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        try:
            os.link(tmp, dest)  # fails if dest appeared meanwhile: never overwrites
        except FileExistsError:
            continue
        finally:
            tmp.unlink()
        return dest, True
    raise UploadError(f"{stem}{ext}: too many files of this name in {upload_dir}")


def add_files(
    live: LiveIndex,
    upload_dir: Path,
    files: Sequence[tuple[Path, str]],
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Check every (path, original name), save them into upload_dir, add them to the index
    (LiveIndex.add); a summary line.

    All files are checked before any is saved: one bad file and nothing changes. A file
    already uploaded with the same bytes is left as it is, and indexed again (nothing to do
    unless its indexing had failed).
    """
    if not files:
        raise UploadError(f"choose files first ({ACCEPTED})")
    known = indexed_articles(live)
    taken = {a.id for a in known}  # a .txt/.md upload's id is its name: keep names unique
    new, notes, saved = [], [], []
    for path, name in files:
        path, dest = Path(path), upload_dir / safe_filename(name)
        if _same_file(path, dest):
            notes.append(f"{dest.name}: already uploaded")
            saved.append(dest)  # indexed again: a no-op, unless its indexing failed last time
            continue
        articles = check_upload(path, name, known)
        known += articles  # also catches two new files that repeat each other
        new.append((path, name, len(articles)))
    for path, name, count in new:
        dest, _ = save_upload(path, name, upload_dir, taken)
        saved.append(dest)
        wanted = safe_filename(name)
        renamed = "" if dest.name == wanted else f" (another {wanted} exists)"
        notes.append(f"{dest.name}: {_n(count, 'article')}{renamed}")
    return "; ".join(notes) + f". Index: {build_summary(live.add(saved, progress))}"


def indexed_articles(live: LiveIndex) -> list[Article]:
    """The articles an upload must not repeat: the index's (no need to read every source
    again), or the sources' where there is no index yet."""
    try:
        return list(live.snapshot()[0].articles)
    except IndexMissing:
        return load_articles([s for s in live.sources if isinstance(s, Path) and s.exists()])[0]


def _same_file(path: Path, dest: Path) -> bool:
    return (
        dest.is_file()
        and dest.stat().st_size == path.stat().st_size
        and dest.read_bytes() == path.read_bytes()
    )


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def build_summary(r: BuildReport) -> str:
    """What a build did, in one line: "3 articles, 7 chunks (2 texts embedded in 0.4 s)."."""
    return (
        f"{_n(r.articles, 'article')}, {_n(r.chunks, 'chunk')} "
        f"({_n(r.texts_embedded, 'text')} embedded in {r.seconds:.1f} s)."
    )
