"""The live index: the (Index, Answerer) pair questions use, swapped after a rebuild commits.

`LiveIndex` loads the index at start (if there is one), hands out the current pair with
`snapshot()`, and `rebuild()`s from its sources (or `add()`s uploaded files, `add_url()`s a
page or feed, `remove()`s articles by id) one build at a time, swapping the new pair in under a
lock once the build has committed. A question uses the pair current when it starts and never
waits for a build; the texts of the pair it holds stay readable after an update removed their
files (their file descriptors are opened at load). `listing()` is the archive's table over the
current index (index.listing). `ask` answers one question against such a snapshot and keeps the
articles it cites as a `Turn`, so a later rebuild cannot change an answer already shown.

What this module does NOT do: render (ui/render.py), check uploads (ui/uploads.py), touch
Gradio (app.py), or retrieve, compose and abstain (qa/).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from index.articles import as_source, load_articles
from index.build import BuildError, BuildReport, build_index
from index.encoder import Encoder
from index.fetch import is_url
from index.listing import Listing, NoSuchArticle
from index.store import Index, IndexMissing, load_index
from index.update import update_index
from qa.answer import Answerer
from qa.filters import Filters
from ui.render import CLOSEST, Turn


class LiveIndex:
    """The current (Index, Answerer), replaced atomically after a rebuild commits.

    Builds are serialised (one at a time, others wait); questions never wait for a build.
    """

    def __init__(
        self,
        index_dir: Path,
        sources: Sequence[Path],
        encoder: Encoder,
        answerer: Callable[[Index, Encoder], Answerer] = Answerer,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.sources = [as_source(s) for s in sources]
        self.encoder = encoder
        self.make_answerer = answerer
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._current = None
        self._listing: Listing | None = None
        self._listing_lock = threading.Lock()
        try:
            self._current = self._load()
            self._warm()
        except IndexMissing:
            pass  # the UI says so; the first upload or rebuild creates the index

    def _load(self):
        index = load_index(self.index_dir, encoder_model_id=self.encoder.model_id)
        _open_texts(index)
        return index, self.make_answerer(index, self.encoder)

    def snapshot(self):
        """(index, answerer) as of now; IndexMissing if nothing was built yet."""
        with self._lock:
            current = self._current
        if current is None:
            raise IndexMissing("no index yet; add articles in the Index tab or press Rebuild")
        return current

    def note(self) -> str | None:
        """What a user should know about the answers (today: abstention weights fitted for
        another embedding model), or None."""
        with self._lock:
            current = self._current
        return current[1].calibration_warning() if current is not None else None

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Bring the index up to date with the sources, then switch questions over to it."""
        with self._build_lock:
            report = build_index(self.sources, self.index_dir, self.encoder, progress=progress)
            self._swap()
        return report

    def add(
        self, paths: Sequence[Path], progress: Callable[[int, int], None] | None = None
    ) -> BuildReport:
        """Add the articles of `paths` (files under the sources), reading only them
        (index.update: an upload to a 10k-article index takes a second, not a rebuild of every
        source), then switch questions over. Where there is no index yet, or one that must be
        rebuilt (another model or recipe), a rebuild from the sources instead."""
        with self._build_lock:
            try:
                report = update_index(
                    self.index_dir, self.encoder, add=list(paths), progress=progress
                )
            except (IndexMissing, BuildError):
                report = build_index(self.sources, self.index_dir, self.encoder, progress=progress)
            self._swap()
        return report

    def add_url(self, url: str, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        """Fetch a page or a feed and add its articles by id, as `isnad index build URL` reads
        it (index.fetch, index.webformats); the URL joins the sources, so a rebuild fetches it
        again. BuildError (nothing changed) when it cannot be fetched or holds no article."""
        url = url.strip()
        if not is_url(url):
            raise BuildError(
                f"{url or 'the address'} is not a web address; give one starting with http:// "
                "or https://"
            )
        with self._build_lock:
            try:
                report = update_index(self.index_dir, self.encoder, add=[url], progress=progress)
            except (IndexMissing, BuildError) as exc:
                # fetched again to tell a page that cannot be read from an index that must be
                # rebuilt (no index yet, another model): as `add` does, that one is rebuilt
                articles, skipped = load_articles([url])
                if not articles:
                    why = skipped[0].reason if skipped else f"{url} holds no article"
                    raise BuildError(f"{why}; the index was not changed") from exc
                sources = [*self.sources, url]
                report = build_index(sources, self.index_dir, self.encoder, progress=progress)
            if url not in self.sources:
                self.sources.append(url)
            self._swap()
        return report

    def remove(self, ids: Sequence[str]) -> BuildReport:
        """Remove the articles with these ids (index.update, as `isnad index remove` does),
        then switch questions over. NoSuchArticle, and nothing removed, if the index does not
        hold one of them (also when another user removed it a moment ago)."""
        ids = list(dict.fromkeys(ids))
        with self._build_lock:
            try:
                held = self.snapshot()[0].article_row
            except IndexMissing:
                held = {}
            missing = [i for i in ids if i not in held]
            if missing or not ids:
                raise NoSuchArticle(
                    f"no article {missing[0]!r} in the index (removed already, or never added); "
                    "nothing was removed"
                    if missing
                    else "no article chosen; nothing was removed"
                )
            report = update_index(self.index_dir, self.encoder, remove=ids)
            self._swap()
        return report

    def listing(self) -> Listing:
        """The archive's table over the current index (made once per index); IndexMissing if
        nothing was built yet."""
        index = self.snapshot()[0]
        with self._listing_lock:
            if self._listing is None or self._listing.index is not index:
                self._listing = Listing(index)
            return self._listing

    def _swap(self) -> None:
        current = self._load()
        with self._lock:
            self._current = current
        self._warm()

    def _warm(self) -> None:
        """Make the archive's table and its titles' postings in the background (seconds at a
        million chunks the first time; after an update, only the new segment's titles), so the
        first page or search after a start or an update need not wait for them."""

        def warm() -> None:
            try:
                self.listing().titles()
            except IndexMissing:
                pass

        threading.Thread(target=warm, name="isnad-listing", daemon=True).start()


def _open_texts(index: Index) -> None:
    """Open each segment's texts file now: an update that removes the segment's folder later
    (a merge) leaves a question already holding this index able to read and cite its texts."""
    if index.article_segment is None or not len(index.articles):
        return
    _, first = np.unique(index.article_segment, return_index=True)
    for row in first.tolist():
        _ = index.articles[row].text


def ask(
    live: LiveIndex,
    question: str,
    turns: Sequence[Turn],
    filters: Filters | None = None,
    mode: str = "auto",
) -> list[Turn]:
    """Answer `question` after the earlier turns, from the articles `filters` lets through,
    as a timeline or not by `mode` (qa.answer.Answerer.ask); returns the turns with the new
    one added."""
    index, answerer = live.snapshot()
    history = [(t.answer.question, t.answer.text) for t in turns]
    answer = answerer.ask(question, history, filters, mode=mode)
    ids = {c.article_id for c in answer.citations}
    ids |= {p.article_id for p in answer.passages[:CLOSEST]}
    articles = {i: index.articles[index.article_row[i]] for i in ids if i in index.article_row}
    return [*turns, Turn(answer, articles)]
