"""The JSON API (ui/api.py) through real HTTP against the served app on 127.0.0.1: the answer the
UI gives, the archive listed, opened, removed and added to, its OpenAPI description, and every
refusal as one line with its status."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest

import app
import ui.api as ui_api
from index.build import build_index
from tests.conftest import FakeEncoder, fixed_model
from tests.test_app import free_port
from tests.test_archive import FIRE, NEWEST_FIRST, write_records

Q_FIRE = "كم هكتارا أتت عليها النيران في غابة جندوبة؟"


@contextmanager
def launched(tmp_path, auth=None, encoder=None):
    """(base url, the Gradio app) of the app over test_archive's articles, served on a free
    loopback port; its answers cite whenever there is something to cite."""
    encoder = encoder or FakeEncoder()
    corpus = write_records(tmp_path / "corpus")
    build_index([corpus], tmp_path / "ix", encoder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("qa.answer.load_abstain_model", lambda: fixed_model(0.0))
        demo = app.create_app(
            tmp_path / "ix",
            [corpus],
            tmp_path / "uploads",
            encoder=encoder,
            conversations_db=tmp_path / "c.sqlite3",
        )
        port = free_port()
        app.launch(demo, port=port, auth=auth, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}", demo
        finally:
            demo.close()


def call(method, url, body=None, user=None, headers=None):
    """(status, JSON body, headers) of one request; `body` a dict (JSON) or bytes."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if isinstance(body, dict):
        req.add_header("Content-Type", "application/json")
    if user:
        req.add_header(
            "Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode()
        )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with launched(tmp_path_factory.mktemp("api")) as (base, demo):
        yield base + "/api/v1", demo


def test_the_answer_is_the_one_the_ui_gives(served):
    api, _ = served
    status, body, _ = call("POST", f"{api}/answer", {"question": Q_FIRE})
    assert status == 200
    assert body["question"] == Q_FIRE and body["mode"] == "answer" and not body["abstained"]
    cited = {c["article_id"] for c in body["citations"]}
    assert cited & {"fire-1", "fire-2"}
    for c in body["citations"]:
        text = FIRE if c["article_id"] == "fire-1" else FIRE.replace("اليوم", "مساء الأحد")
        assert text[c["start"] : c["end"]] == c["text"]
    # the filters narrow it as they do in the chat
    status, body, _ = call(
        "POST", f"{api}/answer", {"question": Q_FIRE, "source": ["Jawhara FM"], "until": "2016"}
    )
    assert status == 200 and {c["article_id"] for c in body["citations"]} == {"fire-1"}
    # a timeline is asked for, or refused, by its mode
    status, body, _ = call("POST", f"{api}/answer", {"question": Q_FIRE, "mode": "answer"})
    assert status == 200 and body["mode"] == "answer" and "timeline" not in body
    status, body, _ = call("POST", f"{api}/answer", {"question": Q_FIRE, "mode": "timeline"})
    assert status == 200 and body["mode"] in ("timeline", "answer")
    if body["mode"] == "answer":  # too few dated articles: it says so
        assert body["note"].startswith("لا خط زمني")
    assert [c for e in body.get("timeline", []) for c in e["citations"]] == (
        body["citations"] if body["mode"] == "timeline" else []
    )


@pytest.mark.parametrize(
    "body, message",
    [
        ({"question": "  "}, "the question is empty"),
        ({"question": Q_FIRE, "since": "2017-02-30"}, "--since '2017-02-30' is not a date"),
        ({"question": Q_FIRE, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({}, "question: Field required"),
        ({"question": 5}, "question: Input should be a valid string"),
        ({"question": Q_FIRE, "mode": "story"}, "mode: Input should be 'auto', 'timeline'"),
    ],
)
def test_a_bad_question_is_400_with_one_line(served, body, message):
    api, _ = served
    status, out, _ = call("POST", f"{api}/answer", body)
    assert status == 400 and list(out) == ["error"] and message in out["error"]
    assert "\n" not in out["error"]


def test_a_body_that_is_not_json_is_400(served):
    api, _ = served
    status, out, _ = call(
        "POST", f"{api}/answer", b"{not json", headers={"Content-Type": "application/json"}
    )
    assert status == 400 and "JSON" in out["error"]


def test_the_articles_are_listed_newest_first_with_total_and_filters(served):
    api, _ = served
    status, body, _ = call("GET", f"{api}/articles")
    assert status == 200 and body["total"] == 6
    assert [a["id"] for a in body["articles"]] == NEWEST_FIRST
    assert set(body["articles"][0]) == {
        "id", "title", "published", "source", "category", "url", "chunks", "copies"
    }  # fmt: skip
    q = "query=%D8%AD%D8%B1%D9%8A%D9%82&source=Jawhara+FM&source=Mosaique+FM&since=2016-07"
    status, body, _ = call("GET", f"{api}/articles?{q}")
    assert (body["total"], [a["id"] for a in body["articles"]]) == (1, ["fire-1"])
    status, body, _ = call("GET", f"{api}/articles?limit=2&offset=1")
    assert body["total"] == 6 and [a["id"] for a in body["articles"]] == NEWEST_FIRST[1:3]
    status, body, _ = call("GET", f"{api}/articles?offset=600")  # past the end: empty, not 404
    assert status == 200 and body == {"total": 6, "articles": []}


@pytest.mark.parametrize(
    "query, message",
    [
        ("query=%D9%81%D9%8A+%D9%85%D9%86", "has only common words"),  # «في من»
        ("limit=0", "limit must be 1 to 1000"),
        ("limit=ten", "limit: Input should be a valid integer"),
        ("until=yesterday", "--until 'yesterday' is not a date"),
    ],
)
def test_a_bad_listing_is_400_with_one_line(served, query, message):
    api, _ = served
    status, out, _ = call("GET", f"{api}/articles?{query}")
    assert status == 400 and message in out["error"]


def test_an_article_opens_whole_and_an_unknown_one_is_404(served):
    api, _ = served
    status, body, _ = call("GET", f"{api}/articles/fire-1")
    assert status == 200 and body["text"] == FIRE and body["copies"] == 1
    assert [c["id"] for c in body["wire_copies"]] == ["fire-2"]
    assert body["permalink"].startswith(api.removesuffix("/api/v1") + "/?article=fire-1&start=0")
    status, body, _ = call("GET", f"{api}/articles/no-such-id")
    assert status == 404 and body == {
        "error": "no article 'no-such-id' in the index (never added, or removed since); "
        "list them with `isnad articles list`"
    }


def test_the_openapi_description_names_every_route(served):
    api, _ = served
    status, spec, _ = call("GET", f"{api}/openapi.json")
    assert status == 200 and spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {"/answer", "/articles", "/articles/{article_id}"}
    assert set(spec["paths"]["/articles"]) == {"get", "post"}
    assert set(spec["paths"]["/articles/{article_id}"]) == {"get", "delete"}
    fields = spec["components"]["schemas"]["AnswerRequest"]["properties"]
    assert set(fields) == {"question", "since", "until", "source", "category", "mode"}


# --- changes (each test on its own server: they change the index) --------------------------


def test_articles_posted_as_jsonl_are_added_by_id_and_answered_at_once(tmp_path):
    late = {
        "id": "late",
        "title": "قافلة طبية",
        "text": "وصلت قافلة طبية إلى مدينة تطاوين "
        "لتقديم فحوص مجانية لسكان القرى الجبلية طيلة أسبوع كامل.",
        "published": "2018-01-02",
    }
    changed = {
        "id": "farm",
        "title": "وزراء الزراعة",
        "text": "عقد وزراء الزراعة العرب اجتماعا طارئا في مدينة المهدية لبحث أزمة الجفاف.",
        "published": "2016-03-01",
    }
    with launched(tmp_path) as (base, _):  # fmt: skip
        body = "\n".join(json.dumps(r, ensure_ascii=False) for r in (late, changed)).encode()
        status, out, _ = call("POST", f"{base}/api/v1/articles", body)
        assert status == 200, out
        assert (out["added"], out["changed"], out["articles"]) == (["late"], ["farm"], 7)
        status, page, _ = call("GET", f"{base}/api/v1/articles?limit=1")
        assert page["articles"][0]["id"] == "late"
        status, answer, _ = call(
            "POST", f"{base}/api/v1/answer", {"question": "إلى أي مدينة وصلت القافلة الطبية؟"}
        )
        assert answer["citations"][0]["article_id"] == "late"
        status, art, _ = call("GET", f"{base}/api/v1/articles/farm")
        assert "المهدية" in art["text"]
        kept = list((tmp_path / "uploads").glob("api-*.jsonl"))  # kept where a rebuild reads
        assert len(kept) == 1 and kept[0].read_bytes() == body


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"id": "a", "text": "fine text here"}\n{"id": "b", "text": \n', "line 2: "),
        (b'{"id": "a", "text": "fine text here"}\n[1, 2]\n', "line 2: "),
        (b'{"id": "a"}\n', "line 1: "),
        (b"\n \n", "the body has no article"),
        (b"\xff\xfe{}", "line 1: "),
    ],
)
def test_a_malformed_jsonl_body_is_400_naming_the_line_and_adds_nothing(served, body, message):
    api, _ = served
    status, out, _ = call("POST", f"{api}/articles", body)
    assert status == 400 and out["error"].startswith(message), out
    assert "\n" not in out["error"]
    assert call("GET", f"{api}/articles")[1]["total"] == 6


def test_an_oversized_body_is_413(served, monkeypatch):
    api, _ = served
    monkeypatch.setattr(ui_api, "MAX_UPLOAD_BYTES", 1000)
    big = b'{"id": "big", "text": "' + "كلمة ".encode() * 400 + b'"}\n'
    status, out, _ = call("POST", f"{api}/articles", big)
    assert status == 413 and out == {
        "error": "the body is 4 KB; the limit is 1000 bytes: send less in each call"
    }
    status, out, _ = call("POST", f"{api}/answer", {"question": "x" * 70_000})
    assert status == 413 and "the limit is 64 KB" in out["error"]
    assert call("GET", f"{api}/articles")[1]["total"] == 6


def test_delete_removes_by_id_and_two_deletes_at_once_give_one_404(tmp_path):
    with launched(tmp_path) as (base, _):
        api = f"{base}/api/v1"
        status, out, _ = call("DELETE", f"{api}/articles/fire-1")
        assert status == 200 and out == {"removed": "fire-1", "articles": 5}
        answer = call("POST", f"{api}/answer", {"question": Q_FIRE})[1]
        assert "fire-1" not in {c["article_id"] for c in answer["citations"]}
        status, out, _ = call("DELETE", f"{api}/articles/fire-1")
        assert status == 404 and "no article 'fire-1'" in out["error"]
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(call("DELETE", f"{api}/articles/fest")))
            for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(s for s, _, _ in results) == [200, 404]
        assert call("GET", f"{api}/articles")[1]["total"] == 4


def test_without_a_login_only_loopback_may_call(served, monkeypatch):
    """Served on loopback without a login, a caller from another address (a proxy in front,
    say) is refused; the check is on the request's client address."""
    api, demo = served
    from starlette.testclient import TestClient

    client = TestClient(demo.isnad_api, client=("192.0.2.7", 5000))
    response = client.get("/articles")
    assert (
        response.status_code == 403 and "answers only on this machine" in response.json()["error"]
    )
    local = TestClient(demo.isnad_api, client=("127.0.0.1", 5000))
    assert local.get("/articles").status_code == 200
