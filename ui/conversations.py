"""Conversations kept server-side in SQLite, each message with its own citations.

`Conversations(path)` opens (or creates) the database under isnad's data folder. A conversation
has an id, a title and its turns in order; each turn is stored whole: the answer as
`Answer.to_json` writes it (citations with their spans) and the articles it cites or points to
as they were when it was answered, so an earlier answer's sources open exactly as shown even
after the index is rebuilt or the server restarts (RAGFlow #9232 paired reloaded messages with
the wrong references: here a message and its references are one row).

With logins on, each conversation belongs to the user who started it: every call takes the
logged-in `user`, and a user lists, opens, renames, exports, continues and deletes only their own,
plus the conversations started before logins were configured (no owner: shared by every user).
A conversation of another user is, to this user, one that does not exist. `user=None` (no login)
sees every conversation, as before logins.

Every call opens its own connection (SQLite serialises writers; WAL lets readers go on), so one
`Conversations` can be shared by Gradio's worker threads.

What this module does NOT do: answer (ui/live.py), render (ui/render.py), or log anyone in
(ui/auth.py: the user name comes from Gradio's session).
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
    id text primary key, title text not null, created real not null, updated real not null,
    owner text);
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


GONE = "this conversation no longer exists; start a new one"


def _mine(user: str | None) -> tuple[str, tuple]:
    """The SQL condition (on table alias c) for the conversations `user` may see."""
    if user is None:
        return "1 = 1", ()
    return "(c.owner = ? or c.owner is null)", (user,)


class Conversations:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("pragma journal_mode=wal")
            db.executescript(SCHEMA)
            columns = [r[1] for r in db.execute("pragma table_info(conversations)")]
            if "owner" not in columns:  # a database from before logins: its conversations stay
                db.execute("alter table conversations add column owner text")  # everyone's

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("pragma foreign_keys=on")
            with db:  # one transaction: committed, or rolled back on error
                yield db
        finally:
            db.close()

    def create(self, title: str = "", user: str | None = None) -> str:
        """A new conversation, `user`'s (None: no login, visible to every user)."""
        cid = secrets.token_hex(8)
        now = time.time()
        with self._db() as db:
            db.execute(
                "insert into conversations values (?, ?, ?, ?, ?)",
                (cid, _title(title), now, now, user),
            )
        return cid

    def list(self, user: str | None = None) -> list[Summary]:
        """The conversations `user` may see, the most recently used first."""
        where, args = _mine(user)
        with self._db() as db:
            rows = db.execute(
                "select c.id, c.title, c.updated, count(m.position) from conversations c "
                f"left join messages m on m.conversation = c.id where {where} group by c.id "
                "order by c.updated desc, c.created desc",
                args,
            ).fetchall()
        return [Summary(*r) for r in rows]

    def exists(self, cid: str | None, user: str | None = None) -> bool:
        """Whether conversation `cid` exists and `user` may see it."""
        if not cid:
            return False
        with self._db() as db:
            return self._visible(db, cid, user)

    @staticmethod
    def _visible(db: sqlite3.Connection, cid: str, user: str | None) -> bool:
        where, args = _mine(user)
        sql = f"select 1 from conversations c where c.id = ? and {where}"
        return db.execute(sql, (cid, *args)).fetchone() is not None

    def title(self, cid: str, user: str | None = None) -> str:
        where, args = _mine(user)
        with self._db() as db:
            row = db.execute(
                f"select c.title from conversations c where c.id = ? and {where}", (cid, *args)
            ).fetchone()
        if row is None:
            raise ConversationError(GONE)
        return row[0]

    def rename(self, cid: str, title: str, user: str | None = None) -> None:
        with self._db() as db:
            if not self._visible(db, cid, user):
                raise ConversationError(GONE)
            db.execute("update conversations set title = ? where id = ?", (_title(title), cid))

    def delete(self, cid: str, user: str | None = None) -> None:
        """Delete `cid` if `user` may see it (else nothing happens)."""
        with self._db() as db:
            if self._visible(db, cid, user):
                db.execute("delete from conversations where id = ?", (cid,))

    def append(self, cid: str, turn: Turn, user: str | None = None) -> None:
        """Store one more turn at the end of the conversation."""
        articles = [
            {"id": a.id, "title": a.title, "text": a.text, "meta": dict(a.meta)}
            for a in turn.articles.values()
        ]
        with self._db() as db:
            if not self._visible(db, cid, user):
                raise ConversationError(GONE)
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

    def turns(self, cid: str, user: str | None = None) -> list[Turn]:
        """The conversation's turns in order, each with the articles as they were answered
        (none for a conversation `user` may not see)."""
        with self._db() as db:
            if not self._visible(db, cid, user):
                return []
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
