"""The JSON API for newsroom tools, served beside the UI on the same port, outside Gradio's queue.

`create_api(live, upload_dir)` returns a FastAPI app that app.launch mounts at /api/v1:

    POST   /answer          {"question", "since", "until", "source", "category"} -> the answer
                            JSON of `isnad ask --json` (the same Answerer the chat uses)
    GET    /articles        ?query&since&until&source&category&limit&offset -> {"total", "articles"}
    GET    /articles/{id}   one article: the list's fields plus "text", "wire_copies", "permalink"
    DELETE /articles/{id}   removed by id, as `isnad index remove` (404 if the index lacks it)
    POST   /articles        a JSONL body, one article a line, added by id as `isnad index add`
    GET    /openapi.json    this description

Every call passes `require_login`: with logins configured (`api.state.gate`, set by app.launch)
HTTP Basic with a valid one (401 without, 429 while locked: ui/auth.Gate); without, loopback
callers only. Errors are `{"error": "one line"}` with 400 (bad input, naming the JSONL line),
401, 403, 404, 413 (a body over its limit), 429 or 503 (no index yet).

What this module does NOT do: answer, list or change the index itself (ui/live.py,
index/listing.py), keep conversations (the UI's), or serve the Gradio app.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from index.articles import load_articles
from index.listing import ListingError, NoSuchArticle
from index.store import IndexError_, IndexMissing
from qa.answer import QuestionError
from qa.export import permalink
from qa.filters import FilterError, parse_filters
from ui.auth import REFUSED, Gate, TooManyAttempts, is_loopback
from ui.guard import basic_credentials
from ui.live import LiveIndex
from ui.uploads import MAX_UPLOAD_BYTES

MAX_JSON_BYTES = 64 * 1024  # a question and its filters
FILTERS = ("since", "until", "source", "category")


class AnswerRequest(BaseModel):
    """POST /answer's body. A field other than the question and the filters is passed on to
    `Answerer.ask` by name: a new option is one line here."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(description="The question, Arabic or any other language.")
    since: str | None = Field(None, description="Only articles published on or after YYYY-MM-DD.")
    until: str | None = Field(None, description="Only articles published on or before it.")
    source: str | list[str] | None = Field(None, description="Only this source (or these).")
    category: str | list[str] | None = Field(None, description="Only this category (or these).")
    mode: Literal["auto", "timeline", "answer"] | None = Field(
        None,
        description='"timeline" tells the question as a dated timeline of the story\'s events, '
        '"answer" never does, "auto" (the default) when it asks how something developed.',
    )

    def options(self) -> dict:
        """The fields `Answerer.ask` takes by name (those set)."""
        rest = self.model_dump(exclude={"question", *FILTERS})
        return {k: v for k, v in rest.items() if v is not None}


class ApiError(HTTPException):
    """A refusal with its status and one-line reason (and headers, e.g. Retry-After)."""


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def require_login(request: Request) -> str | None:
    """The caller's user name (None without logins); ApiError 401/403/429 otherwise."""
    gate: Gate | None = getattr(request.app.state, "gate", None)
    address = request.client.host if request.client else "unknown"
    if not gate:
        if not is_loopback(address):
            raise ApiError(
                403,
                "this server has no login, so its API answers only on this machine; serve "
                "with ISNAD_AUTH or --auth-file to open it to others",
            )
        return None
    challenge = {"WWW-Authenticate": 'Basic realm="isnad", charset="UTF-8"'}
    credentials = basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise ApiError(401, "log in: send HTTP Basic with a user and password", challenge)
    user, password = credentials
    try:
        if await gate.login(user, password, address):
            return user
    except TooManyAttempts as exc:
        raise ApiError(429, str(exc), {"Retry-After": str(exc.retry_after)}) from exc
    raise ApiError(401, REFUSED, challenge)


class BodyLimit:
    """ASGI middleware: a request body over its route's limit gets 413 before anything reads
    it (POST /articles: the upload limit; any other: MAX_JSON_BYTES)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        articles = scope["path"].rstrip("/").endswith("/articles")
        limit = MAX_UPLOAD_BYTES if articles else MAX_JSON_BYTES
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _too_large(scope, send, int(length), limit)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await _too_large(scope, send, None, limit)
        done = False

        async def replay():
            nonlocal done
            if done:
                return await receive()
            done = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(scope, send, size: int | None, limit: int) -> None:
    what = f"{_mb(size)}" if size is not None else f"over {_mb(limit)}"
    response = json_response(
        {"error": f"the body is {what}; the limit is {_mb(limit)}: send less in each call"}, 413
    )
    await response(scope, None, send)


def _mb(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.1f} MB"
    return f"{n / 2**10:.0f} KB" if n >= 2**10 else f"{n} bytes"


def create_api(live: LiveIndex, upload_dir: Path, answer_slots: int = 2) -> FastAPI:
    """The API over `live`; articles POSTed are kept as JSONL files in `upload_dir` (a source
    of the index, so a rebuild keeps them). At most `answer_slots` answers run at once."""
    api = FastAPI(
        title="isnad API",
        version="1",
        description="Answers citing exact spans of news articles, and the archive behind them.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(require_login)],
    )
    api.state.gate = None
    api.add_middleware(BodyLimit)
    slots = asyncio.Semaphore(answer_slots)

    @api.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        return json_response({"error": str(exc.detail)}, exc.status_code, exc.headers)

    @api.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError):
        e = exc.errors()[0]
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        return json_response({"error": f"{where}: {e.get('msg', 'invalid')}"}, 400)

    @api.get("/openapi.json", include_in_schema=False)
    def openapi():
        return json_response(api.openapi())

    @api.post("/answer", summary="Answer a question, citing exact spans")
    async def answer(body: AnswerRequest):
        def work():
            filters = parse_filters(body.since, body.until, body.source, body.category)
            return live.snapshot()[1].ask(body.question, filters=filters, **body.options())

        async with slots:
            result = await _run(work)
        return json_response(result.to_json())

    @api.get("/articles", summary="List or search the articles, newest first")
    async def articles(
        query: Annotated[str, Query(description="Words of the title or text (all of them).")] = "",
        since: Annotated[str, Query(description="Published on or after YYYY-MM-DD.")] = "",
        until: Annotated[str, Query(description="Published on or before YYYY-MM-DD.")] = "",
        source: Annotated[list[str] | None, Query(description="Only these sources.")] = None,
        category: Annotated[list[str] | None, Query(description="Only these categories.")] = None,
        limit: Annotated[int, Query(description="Rows to return, 1 to 1000.")] = 100,
        offset: Annotated[int, Query(description="Rows to skip.")] = 0,
    ):
        def work():
            f = parse_filters(since, until, source, category)
            page = live.listing().page(query, f.since, f.until, f.sources, f.categories,
                                       limit, offset)  # fmt: skip
            return page.to_json()

        return json_response(await _run(work))

    @api.get("/articles/{article_id:path}", summary="One article whole")
    async def article(article_id: str, request: Request):
        def work():
            view = live.listing().article(article_id)
            base = str(request.base_url).removesuffix("/").removesuffix("/api/v1")
            return {**view.to_json(), "permalink": permalink(base, article_id, *view.lead())}

        return json_response(await _run(work))

    @api.delete("/articles/{article_id:path}", summary="Remove an article by id")
    async def delete(article_id: str):
        def work():
            report = live.remove([article_id])
            return {"removed": article_id, "articles": report.articles}

        return json_response(await _run(work))

    @api.post(
        "/articles",
        summary="Add articles by id (new ids added, known ones replaced)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": 'One JSON object a line: "id", "text", and optional "title", '
                '"url", "published", "source", "category".',
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            }
        },
    )
    async def add(request: Request):
        data = await request.body()
        return json_response(await _run(lambda: _add_jsonl(live, upload_dir, data)))

    return api


async def _run(work):
    """`work()` in a worker thread, its expected failures as one-line refusals."""
    try:
        return await run_in_threadpool(work)
    except NoSuchArticle as exc:
        raise ApiError(404, str(exc)) from exc
    except IndexMissing as exc:
        raise ApiError(503, str(exc)) from exc
    except (QuestionError, FilterError, ListingError, IndexError_) as exc:
        raise ApiError(400, str(exc).splitlines()[0]) from exc


def _add_jsonl(live: LiveIndex, upload_dir: Path, data: bytes) -> dict:
    """Check every line of a JSONL body, keep it in `upload_dir`, add its articles by id."""
    if not data.strip():
        raise ApiError(400, 'the body has no article; send one JSON object a line: {"id", "text"}')
    with tempfile.TemporaryDirectory(prefix="isnad-api-") as tmp:
        probe = Path(tmp) / "body.jsonl"
        probe.write_bytes(data)
        articles, skipped = load_articles([probe])
    if skipped:
        where = skipped[0].source.replace(str(probe) + ":", "line ").replace(str(probe), "body")
        raise ApiError(400, f"{where}: {skipped[0].reason}; nothing was added")
    upload_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    saved = upload_dir / f"api-{stamp}-{secrets.token_hex(3)}.jsonl"
    tmp = saved.with_name(f".{saved.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(saved)
    report = live.add([saved])
    return {
        "added": report.added,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "skipped": [
            {"source": s.source.replace(str(saved) + ":", "line "), "reason": s.reason}
            for s in report.skipped
        ],
        "articles": report.articles,
    }
