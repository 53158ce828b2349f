"""Conversations kept server-side in SQLite, each message with its own citations.

`Conversations(path)` opens (or creates) the database under isnad's data folder. A conversation
has an id, a title and its turns in order; each turn is stored whole: the answer as
`Answer.to_json` writes it (citations with their spans) and the articles it cites or points to
as they were when it was answered, so an earlier answer's sources open exactly as shown even
after the index is rebuilt or the server restarts (RAGFlow #9232 paired reloaded messages with
the wrong references: here a message and its references are one row).

Every call opens its own connection (SQLite serialises writers; WAL lets readers go on), so one
`Conversations` can be shared by Gradio's worker threads.

What this module does NOT do: answer (ui/live.py) or render (ui/render.py).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from index.articles import Article
from qa.records import answer_from_json
from ui.render import Turn

SCHEMA = """
create table if not exists conversations (
    id text primary key, title text not null, created real not null, updated real not null);
create table if not exists messages (
    conversation text not null references conversations(id) on delete cascade,
    position integer not null, answer text not null, articles text not null,
    primary key (conversation, position));
"""
TITLE_CHARS = 60


class ConversationError(Exception):
    """A conversation that is not there (deleted elsewhere, a stale link); the message says so."""


@dataclass(frozen=True)
class Summary:
    id: str
    title: str
    updated: float
    turns: int


class Conversations:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("pragma journal_mode=wal")
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("pragma foreign_keys=on")
            with db:  # one transaction: committed, or rolled back on error
                yield db
        finally:
            db.close()

    def create(self, title: str = "") -> str:
        cid = secrets.token_hex(8)
        now = time.time()
        with self._db() as db:
            db.execute(
                "insert into conversations values (?, ?, ?, ?)", (cid, _title(title), now, now)
            )
        return cid

    def list(self) -> list[Summary]:
        """Every conversation, the most recently used first."""
        with self._db() as db:
            rows = db.execute(
                "select c.id, c.title, c.updated, count(m.position) from conversations c "
                "left join messages m on m.conversation = c.id group by c.id "
                "order by c.updated desc, c.created desc"
            ).fetchall()
        return [Summary(*r) for r in rows]

    def exists(self, cid: str | None) -> bool:
        if not cid:
            return False
        with self._db() as db:
            return (
                db.execute("select 1 from conversations where id = ?", (cid,)).fetchone()
                is not None
            )

    def title(self, cid: str) -> str:
        with self._db() as db:
            row = db.execute("select title from conversations where id = ?", (cid,)).fetchone()
        if row is None:
            raise ConversationError("this conversation no longer exists; start a new one")
        return row[0]

    def rename(self, cid: str, title: str) -> None:
        with self._db() as db:
            n = db.execute(
                "update conversations set title = ? where id = ?", (_title(title), cid)
            ).rowcount
        if not n:
            raise ConversationError("this conversation no longer exists; start a new one")

    def delete(self, cid: str) -> None:
        with self._db() as db:
            db.execute("delete from conversations where id = ?", (cid,))

    def append(self, cid: str, turn: Turn) -> None:
        """Store one more turn at the end of the conversation."""
        articles = [
            {"id": a.id, "title": a.title, "text": a.text, "meta": dict(a.meta)}
            for a in turn.articles.values()
        ]
        with self._db() as db:
            if db.execute("select 1 from conversations where id = ?", (cid,)).fetchone() is None:
                raise ConversationError("this conversation no longer exists; start a new one")
            (n,) = db.execute(
                "select count(*) from messages where conversation = ?", (cid,)
            ).fetchone()
            db.execute(
                "insert into messages values (?, ?, ?, ?)",
                (
                    cid,
                    n,
                    json.dumps(turn.answer.to_json(), ensure_ascii=False),
                    json.dumps(articles, ensure_ascii=False),
                ),
            )
            db.execute("update conversations set updated = ? where id = ?", (time.time(), cid))

    def turns(self, cid: str) -> list[Turn]:
        """The conversation's turns in order, each with the articles as they were answered."""
        with self._db() as db:
            rows = db.execute(
                "select answer, articles from messages where conversation = ? order by position",
                (cid,),
            ).fetchall()
        out = []
        for answer, articles in rows:
            arts = {
                a["id"]: Article(a["id"], a["title"], a["text"], a["meta"])
                for a in json.loads(articles)
            }
            out.append(Turn(answer_from_json(json.loads(answer)), arts))
        return out


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"
