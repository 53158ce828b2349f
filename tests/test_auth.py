"""A login beyond loopback: serve refuses a public host without one; with one, the API says 401."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

import app
from index.build import build_index
from tests.test_app import QUESTIONS, free_port, write_corpus
from tests.test_cli import run
from ui.auth import AuthError, check_host, is_loopback, logins


def test_logins_come_from_the_environment_and_a_file(tmp_path):
    f = tmp_path / "auth"
    f.write_text("# the desk\nmona:s3cret:with:colons\n\n  sami:pa ss  \n", encoding="utf-8")
    assert logins("ed:pw", f) == [("ed", "pw"), ("mona", "s3cret:with:colons"), ("sami", "pa ss")]
    assert logins(None, None) == []


@pytest.mark.parametrize("line", ["nocolon", ":pw", "user:", "  :  "])
def test_a_malformed_login_names_its_line(tmp_path, line):
    f = tmp_path / "auth"
    f.write_text(f"ok:pw\n{line}\n", encoding="utf-8")
    with pytest.raises(AuthError, match=f"{f} line 2: expected"):
        logins(None, f)
    with pytest.raises(AuthError, match="ISNAD_AUTH: expected"):
        logins(line)


def test_only_loopback_is_served_without_a_login():
    for host in ("127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host)
        check_host(host, [])
    for host in ("0.0.0.0", "192.168.1.5", "::", "news.example.org"):
        assert not is_loopback(host)
        with pytest.raises(AuthError, match=f"serving on {host} would put the archive"):
            check_host(host, [])
        check_host(host, [("ed", "pw")])


def test_serve_on_all_interfaces_without_a_login_is_refused_in_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("ISNAD_AUTH", raising=False)
    out = run("serve", "--host", "0.0.0.0", "--index", str(tmp_path / "ix"))
    assert out.exit_code == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "isnad: error: serving on 0.0.0.0 would put the archive and its upload form on the "
        'network with no login; set ISNAD_AUTH="user:password" or pass --auth-file FILE'
    ]
    assert not (tmp_path / "ix").exists()  # refused before anything was built
    bad = tmp_path / "auth"
    bad.write_text("no-colon\n", encoding="utf-8")
    out = run("serve", "--host", "0.0.0.0", "--auth-file", str(bad))
    assert out.exit_code == 1 and "line 1: expected" in out.stderr


def test_with_a_login_anonymous_api_calls_get_401(tmp_path, fake_encoder):
    from gradio_client import Client

    corpus = write_corpus(tmp_path / "corpus")
    build_index([corpus], tmp_path / "ix", fake_encoder)
    demo = app.create_app(tmp_path / "ix", [corpus], tmp_path / "up", encoder=fake_encoder)
    port = free_port()
    app.launch(demo, port=port, auth=[("ed", "pw")], prevent_thread_lock=True, quiet=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for path, body in [("/config", None), ("/gradio_api/info", None),
                           ("/gradio_api/call/answer", b'{"data": ["x"]}'),
                           ("/gradio_api/upload", b"x")]:  # fmt: skip
            req = urllib.request.Request(base + path, data=body)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 401, path
        with pytest.raises(Exception, match="credentials"):
            Client(base + "/", verbose=False)
        client = Client(base + "/", auth=("ed", "pw"), verbose=False)
        result = client.predict(QUESTIONS[2], api_name="/answer")
        result = json.loads(result) if isinstance(result, str) else result
        assert result["question"] == QUESTIONS[2]
    finally:
        demo.close()
