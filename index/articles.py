"""Articles from .txt/.md files and .jsonl dumps, with their text exactly as the user saved it.

`load_articles(paths)` returns the articles it could read and, for everything else, a `Skipped`
record whose reason says what to do. An article's `text` is the contract every offset in isnad
refers to: for a file it is the whole file decoded as UTF-8 with the BOM dropped and CRLF / lone
CR turned into "\\n", nothing else (no strip, no Unicode normalisation); for a JSONL record it is
the record's `text` field, with the same newline rule; for a web page (.html/.htm) or an item of
an RSS/Atom feed (.xml/.rss/.atom) it is the text index.webformats extracts, paragraphs
separated by a blank line. http(s) URLs of pages and feeds are fetched (index.fetch); a page's
id is its URL, a feed item's its link.

What this module does NOT do: split articles (see `index.chunking`), normalise text for matching,
or read PDFs. The only error it raises is `ArticleError`, for a path that does not exist;
everything else that cannot be read (a URL that cannot be fetched too) is reported as `Skipped`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from index.fetch import FetchError, fetch, is_url
from index.webformats import WebFormatError, read_feed, read_html

FILE_TYPES = (".txt", ".md", ".jsonl", ".html", ".htm", ".xml", ".rss", ".atom")
PAGE_TYPES = (".html", ".htm")
FEED_TYPES = (".xml", ".rss", ".atom")
READS = "isnad reads .txt, .md, .jsonl, .html/.htm pages and .xml/.rss/.atom feeds"
META_KEYS = ("url", "published", "source", "category")
MAX_TITLE_CHARS = 150
DERIVED_TITLE_CHARS = 90  # a title made from a lead sentence
# A sentence end: punctuation before whitespace or (Arabic written without a space) a letter.
_SENTENCE_END = re.compile(r"[.!?؟]+[\"'”’»)\]]*(?=\s|[\u0621-\u064A])")
MAX_ID_CHARS = 512


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    text: str
    meta: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Skipped:
    source: str  # "dump.jsonl:17" or "folder/bad.txt"
    reason: str  # one line that says what to do


class ArticleError(Exception):
    """The whole call is refused (e.g. a path that does not exist); the message says why."""


def load_articles(
    paths: Sequence[str | Path], *, max_chars: int = 1_000_000
) -> tuple[list[Article], list[Skipped]]:
    """Read articles from folders (walked recursively, sorted), .txt/.md files and .jsonl dumps.

    Returns (articles in a deterministic order, skipped items with reasons). Raises ArticleError
    if a path does not exist. Example: `articles, skipped = load_articles(["corpus/"])`.
    """
    assert max_chars > 0, f"max_chars must be positive, got {max_chars}"
    urls = {i for i, p in enumerate(paths) if isinstance(p, str) and is_url(p)}
    paths = [p if i in urls else Path(p) for i, p in enumerate(paths)]
    for i, path in enumerate(paths):
        if i not in urls and not path.exists():
            raise ArticleError(f"no such file or folder: {path}")
    loader = _Loader(max_chars)
    seen: set[Path] = set()  # a file reached twice (listed, and under a listed folder) loads once
    for i, path in enumerate(paths):
        if i in urls:
            loader.load_url(path)
        elif path.is_dir():
            for file, rel in _walk(path, loader.skipped):
                if _first_time(file, seen):
                    loader.load_file(file, rel)
        elif _first_time(path, seen):
            loader.load_file(path, path.name)
    return loader.articles, loader.skipped


def _first_time(file: Path, seen: set[Path]) -> bool:
    key = file.resolve()
    if key in seen:
        return False
    seen.add(key)
    return True


def covered(path: str | Path, sources: Sequence[str]) -> bool:
    """Whether `path` (as source_name records it) is one of `sources` or under a folder of
    them: a manifest need not list it again."""
    name = source_name(path)
    if name in sources:
        return True
    if isinstance(as_source(name), str):  # a URL: only itself covers it
        return False
    return any(Path(name).is_relative_to(s) for s in sources if isinstance(as_source(s), Path))


def as_source(source: str | Path) -> str | Path:
    """A source as load_articles takes it: an http(s) URL stays text, anything else a Path."""
    return source if isinstance(source, str) and is_url(source) else Path(source)


def source_name(source: str | Path) -> str:
    """How a manifest records a source: a URL as given, a path made absolute."""
    source = as_source(source)
    return source if isinstance(source, str) else str(source.resolve())


def content_hash(article: Article) -> str:
    """sha256 hex of title, text and sorted meta: equal hashes mean nothing to re-embed."""
    payload = [
        article.title,
        article.text,
        sorted((str(k), str(v)) for k, v in article.meta.items()),
    ]
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def text_key(text: str) -> bytes:
    """What "the same text" means for duplicates: equal up to surrounding whitespace."""
    return hashlib.sha256(text.strip().encode("utf-8")).digest()


def make_title(text: str, *, markdown: bool = False) -> str:
    """The first non-empty line of text, stripped (and without leading `#`s for Markdown),
    cut at a word boundary with "…" if longer than 150 characters; "" if there is none.

    A first line that reads as body text rather than a headline (over 150 characters, or ending
    in a full stop) is not a title: the title is then its first sentence, cut to 90 characters.
    """
    for line in text.splitlines():
        line = line.strip()
        if markdown:
            line = line.lstrip("#").strip()
        if line:
            if _reads_as_body(line):
                return _shorten(_first_sentence(line), limit=DERIVED_TITLE_CHARS)
            return _shorten(line)
    return ""


@lru_cache(maxsize=4096)
def title_from_lead(article: Article) -> bool:
    """True when the article had no headline and its title was made from its first sentence.
    Cached: a build asks once per sentence, answering once per article and question."""
    first = next((line.strip() for line in article.text.splitlines() if line.strip()), "")
    return bool(first) and _reads_as_body(first) and article.title == make_title(first)


def _reads_as_body(line: str) -> bool:
    return len(line) > MAX_TITLE_CHARS or line.rstrip("\"'”’»)]").endswith((".", "。"))


def _first_sentence(line: str) -> str:
    m = _SENTENCE_END.search(line)
    return line[: m.end()].rstrip(" .") if m else line


def _shorten(line: str, limit: int = MAX_TITLE_CHARS) -> str:
    line = " ".join(line.split())
    if len(line) <= limit:
        return line
    head = line[:limit]
    cut = head.rfind(" ")
    return (head[:cut].rstrip(" ،,") if cut > 0 else head[: limit - 1]) + "…"


def _walk(folder: Path, skipped: list[Skipped], rel: str = "") -> Iterator[tuple[Path, str]]:
    """(file, id) for every non-hidden file under folder, sorted by name at each level."""
    here = folder / rel if rel else folder
    try:
        entries = sorted(os.scandir(here), key=lambda e: e.name)
    except OSError as e:
        skipped.append(Skipped(str(here), f"cannot read folder: {_os_reason(e)}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        child = f"{rel}/{entry.name}" if rel else entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir and entry.is_symlink():
            # Followed links could loop; linked folders are named explicitly if wanted.
            skipped.append(
                Skipped(
                    str(here / entry.name),
                    "symbolic link to a folder not followed; pass the folder itself",
                )
            )
        elif is_dir:
            yield from _walk(folder, skipped, child)
        else:
            yield here / entry.name, child


def _os_reason(e: OSError) -> str:
    """ "permission denied; check its permissions" and the like, from an OSError."""
    why = e.strerror.lower() if e.strerror else type(e).__name__
    return f"{why}; check its permissions" if isinstance(e, PermissionError) else why


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _utf8_reason(e: UnicodeDecodeError, where: str = "") -> str:
    byte = e.object[e.start]
    return f"not valid UTF-8 (byte 0x{byte:02x} at offset {e.start}{where}); save the file as UTF-8"


class _Loader:
    """Accumulates articles and skipped items, checking ids and duplicates as it goes."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.articles: list[Article] = []
        self.skipped: list[Skipped] = []
        self.id_sources: dict[str, str] = {}
        self.text_owners: dict[bytes, str] = {}

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append(Skipped(source, reason))

    def load_file(self, path: Path, article_id: str) -> None:
        source = str(path)
        ext = path.suffix.lower()
        if ext not in FILE_TYPES:
            shown = ext or "(no extension)"
            self.skip(source, f"unsupported file type {shown}; {READS}")
            return
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a pipe would block read_bytes
                self.skip(source, "not a regular file (a pipe, socket or device); remove it")
                return
            data = path.read_bytes()
        except OSError as e:
            self.skip(source, f"cannot read file: {_os_reason(e)}")
            return
        if b"\x00" in data:
            self.skip(source, "binary file (contains NUL bytes); isnad reads UTF-8 text only")
            return
        if ext in PAGE_TYPES or ext in FEED_TYPES:
            self.load_web(data, "html" if ext in PAGE_TYPES else "feed", article_id, source)
            return
        if ext == ".jsonl":
            self.load_jsonl(data, source)
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.skip(source, _utf8_reason(e))
            return
        text = _normalise_newlines(text.removeprefix("\ufeff"))
        self.add(article_id, make_title(text, markdown=ext == ".md"), text, {}, source)

    def load_url(self, url: str) -> None:
        try:
            fetched = fetch(url)
        except FetchError as exc:
            self.skip(url, str(exc))
            return
        self.load_web(fetched.data, fetched.kind, url, url)

    def load_web(self, data: bytes, kind: str, article_id: str, source: str) -> None:
        """A page is one article (id: its file's id or URL); a feed, one per item (id: the
        item's link, else the feed's id and the item's number)."""
        try:
            records = [read_html(data)] if kind == "html" else read_feed(data)
        except WebFormatError as exc:
            self.skip(source, str(exc))
            return
        except Exception as exc:  # a parser's own failure on a malformed file
            self.skip(source, f"cannot parse ({type(exc).__name__}: {exc}); check the file")
            return
        for i, r in enumerate(records, start=1):
            item_id = article_id if kind == "html" else _item_id(r.key, article_id, i)
            where = source if kind == "html" else f"{source}#{i}"
            title = _shorten(r.title) if r.title.strip() else make_title(r.text)
            self.add(item_id, title, r.text, dict(r.meta), where)

    def load_jsonl(self, data: bytes, path: str) -> None:
        for lineno, raw in enumerate(data.split(b"\n"), start=1):
            source = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                self.skip(source, _utf8_reason(e, " in this line"))
                continue
            if lineno == 1:
                line = line.removeprefix("\ufeff")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                self.skip(
                    source,
                    f"not valid JSON ({e.msg}, column {e.colno}); write one JSON object a line",
                )
                continue
            problem = _record_problem(record)
            if problem:
                self.skip(source, problem)
                continue
            text = _normalise_newlines(record["text"])
            title = record.get("title")
            title = (
                _shorten(title) if isinstance(title, str) and title.strip() else make_title(text)
            )
            meta = {k: str(record[k]) for k in META_KEYS if record.get(k) not in (None, "")}
            self.add(str(record["id"]), title, text, meta, source)

    def add(
        self, article_id: str, title: str, text: str, meta: dict[str, str], source: str
    ) -> None:
        problem = _id_problem(article_id)
        if problem:
            self.skip(source, problem)
            return
        if not text.strip():
            self.skip(source, "empty or whitespace-only article; add text or remove it")
            return
        if len(text) > self.max_chars:
            self.skip(
                source,
                f"article has {len(text):,} characters, more than max_chars {self.max_chars:,}; "
                "split it into smaller articles or raise --max-chars",
            )
            return
        if article_id in self.id_sources:
            self.skip(
                source,
                f"duplicate id {article_id!r} (first loaded from {self.id_sources[article_id]}); "
                "give each article a unique id",
            )
            return
        key = text_key(text)
        if key in self.text_owners:
            first = self.text_owners[key]
            where = self.id_sources[first]
            self.skip(source, f"duplicate of article {first!r} ({where}): same text, loaded once")
            return
        self.id_sources[article_id] = source
        self.text_owners[key] = article_id
        self.articles.append(Article(article_id, title, text, meta))


def _item_id(key: str, feed_id: str, n: int) -> str:
    """A feed item's id: its link (or guid) when it is a URL, else the feed's id and number."""
    return key if is_url(key) else f"{feed_id}#{key or n}"


def _record_problem(record: object) -> str:
    """Why a parsed JSONL line is not an article record, or "" if it is one."""
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}; write one object per line"
    if "id" not in record or record["id"] is None:
        return 'missing "id"; every record needs an "id" (string or integer)'
    if isinstance(record["id"], bool) or not isinstance(record["id"], (str, int)):
        return f'"id" must be a string or integer, got {type(record["id"]).__name__}'
    if not isinstance(record.get("text"), str):
        return 'missing "text" (or not a string); every record needs its article text'
    return ""


def _id_problem(article_id: str) -> str:
    """Why an id cannot be kept in an index, or "" if it can."""
    if not article_id.strip():
        return "empty id; give the article a non-empty id"
    if len(article_id) > MAX_ID_CHARS:
        return f"id longer than {MAX_ID_CHARS} characters ({len(article_id):,}); use a shorter id"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in article_id):
        return "id contains control characters (e.g. a newline or tab); rename it"
    return ""
