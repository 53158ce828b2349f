"""Logins: serve refuses a public host without one; with one, every API says 401 without it;
passwords stored as salted scrypt hashes (`isnad auth add`); guessing slowed and then refused
with 429, for the login form and the JSON API alike."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import app
from index.build import build_index
from tests.test_api import call, launched
from tests.test_app import QUESTIONS, free_port, write_corpus
from tests.test_cli import run
from ui.auth import (
    AuthError,
    Gate,
    TooManyAttempts,
    add_login,
    check_host,
    hash_password,
    is_loopback,
    logins,
)


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


# --- hashed passwords -----------------------------------------------------------------------


def run_with(*args, input: str):
    from click.testing import CliRunner

    import cli

    return CliRunner().invoke(cli.main, list(args), input=input)


def test_auth_add_writes_a_salted_hash_and_replaces_a_users_line(tmp_path, monkeypatch):
    f = tmp_path / "auth"
    f.write_text("# the desk\nmona:old-plain\nsami:pw\n", encoding="utf-8")
    out = run_with("auth", "add", "mona", "--auth-file", str(f), input="s3cret كلمة\ns3cret كلمة\n")
    assert out.exit_code == 0, out.output
    assert f"changed the password of mona in {f}" in out.stdout
    lines = f.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# the desk" and lines[2] == "sami:pw" and len(lines) == 3
    assert lines[1].startswith("mona:scrypt$16384$8$1$") and "s3cret" not in lines[1]
    gate = Gate(logins(None, f))
    assert gate.verify("mona", "s3cret كلمة") and not gate.verify("mona", "old-plain")
    # a new user, into the default file (created readable by its owner only)
    monkeypatch.setenv("ISNAD_AUTH_FILE", str(tmp_path / "new" / "auth"))
    out = run_with("auth", "add", "ed", input="pw\npw\n")
    assert out.exit_code == 0 and "added ed" in out.stdout
    assert (tmp_path / "new" / "auth").stat().st_mode & 0o777 == 0o600
    assert Gate(logins(None, tmp_path / "new" / "auth")).verify("ed", "pw")
    out = run_with("auth", "add", "bad name", "--auth-file", str(f), input="pw\npw\n")
    assert out.exit_code == 1 and "a user name has no spaces" in out.stderr
    # two hashes of one password differ (salted)
    assert hash_password("pw") != hash_password("pw")


def test_plain_passwords_keep_working_with_a_warning(tmp_path):
    f = tmp_path / "auth"
    f.write_text(f"mona:{hash_password('x')}\nsami:pw\n", encoding="utf-8")
    warnings: list[str] = []
    users = logins("ed:pw2", f, warnings.append)
    assert warnings == [
        "ISNAD_AUTH holds a plain-text password for 'ed'; store a hash instead with "
        "`isnad auth add ed`",
        f"{f} line 2 holds a plain-text password for 'sami'; store a hash instead with "
        "`isnad auth add sami`",
    ]
    gate = Gate(users)
    assert gate.verify("sami", "pw") and gate.verify("ed", "pw2") and gate.verify("mona", "x")
    assert not gate.verify("sami", "PW") and not gate.verify("nobody", "pw")
    f.write_text("mona:scrypt$not-a-hash\n", encoding="utf-8")
    with pytest.raises(AuthError, match="line 1: the password hash is malformed"):
        logins(None, f)


def test_serve_reads_the_default_auth_file_and_warns_of_plain_passwords(monkeypatch, tmp_path):
    monkeypatch.delenv("ISNAD_AUTH", raising=False)
    monkeypatch.setenv("ISNAD_AUTH_FILE", str(tmp_path / "auth"))
    (tmp_path / "auth").write_text("ed:pw\n", encoding="utf-8")
    seen = {}
    monkeypatch.setattr(app, "main", lambda **kwargs: seen.update(kwargs))
    out = run("serve", "--host", "0.0.0.0")  # allowed: the default file has a login
    assert out.exit_code == 0, out.output
    assert seen["auth"] == [("ed", "pw")] and seen["host"] == "0.0.0.0"
    assert "isnad: warning: " in out.stderr and "plain-text password for 'ed'" in out.stderr


# --- guessing, slowed -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attempt(gate, user, password, address="203.0.113.9"):
    return asyncio.run(gate.login(user, password, address))


def test_five_failures_for_a_user_lock_them_out_for_five_minutes(caplog):
    clock = Clock()
    gate = Gate([("ed", hash_password("right"))], fail_delay=0, clock=clock)
    caplog.set_level(logging.WARNING, logger="isnad.auth")
    for n in range(5):
        assert attempt(gate, "ed", f"guess-{n}", f"198.51.100.{n}") is False  # five addresses
    with pytest.raises(TooManyAttempts) as e:
        attempt(gate, "ed", "right", "192.0.2.1")  # even the right password, from anywhere
    assert str(e.value) == "too many failed logins; try again in 5 minutes"
    assert e.value.retry_after == 300
    clock.now += 299
    with pytest.raises(TooManyAttempts, match="1 minute$"):
        attempt(gate, "ed", "right")
    clock.now += 2
    assert attempt(gate, "ed", "right") is True
    logged = [r.getMessage() for r in caplog.records]
    assert "login refused: user 'ed' from 198.51.100.0: wrong user or password" in logged
    assert any("user 'ed' from 192.0.2.1: locked" in m for m in logged)
    assert not any("guess" in m or "right" in m for m in logged)  # never a password


def test_five_failures_from_one_address_lock_it_and_old_failures_expire():
    clock = Clock()
    gate = Gate([("ed", "pw")], fail_delay=0, clock=clock)
    for n in range(4):
        attempt(gate, f"user{n}", "x")
    clock.now += 301  # the first four are out of the window
    for n in range(4):
        attempt(gate, f"other{n}", "x")
    assert attempt(gate, "ed", "pw") is True  # eight failures, never five in five minutes
    attempt(gate, "nobody", "x")
    with pytest.raises(TooManyAttempts):
        attempt(gate, "ed", "pw")  # the address is locked
    assert attempt(gate, "ed", "pw", "192.0.2.50") is True  # ed from elsewhere is not


def test_an_unknown_user_costs_and_reads_the_same_as_a_wrong_password(monkeypatch):
    import ui.auth as auth

    calls = []
    real = auth._scrypt
    monkeypatch.setattr(auth, "_scrypt", lambda *a: calls.append(a[2:]) or real(*a))
    gate = Gate([("mona", hash_password("right")), ("sami", "plain")], fail_delay=0.2)
    calls.clear()
    timings = {}
    for user in ("mona", "sami", "nobody"):
        started = time.perf_counter()
        assert attempt(gate, user, "wrong") is False
        timings[user] = time.perf_counter() - started
    assert calls == [(2**14, 8, 1)] * 3  # one scrypt each, known, plain or unknown
    assert all(t >= 0.2 for t in timings.values())
    assert max(timings.values()) - min(timings.values()) < 0.15


def test_the_login_form_and_the_api_refuse_with_429_after_five_failures(tmp_path, caplog):
    f = tmp_path / "auth"
    add_login(f, "ed", "right")
    add_login(f, "mona", "hers")
    caplog.set_level(logging.WARNING, logger="isnad.auth")
    with launched(tmp_path, auth=logins(None, f)) as (base, _):
        api = f"{base}/api/v1/articles"
        assert call("GET", api)[0] == 401
        status, body, headers = call("GET", api, user=("ed", "wrong"))
        assert (status, body) == (401, {"error": "wrong user or password"})
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert call("GET", api, user=("nobody", "wrong"))[:2] == (401, body)  # the same
        assert call("GET", api, user=("ed", "right"))[0] == 200
        assert call("GET", api, user=("ed", "right"))[0] == 200  # again: not a failure

        def form(user, password):
            data = urllib.parse.urlencode({"username": user, "password": password}).encode()
            req = urllib.request.Request(f"{base}/login", data=data)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        assert form("ed", "right")[0] == 200  # the page's login form takes the hash's password
        for n in range(3):  # with the API's two: five failures from this address
            assert form("ed", f"guess{n}")[0] == 400
        status, text = form("ed", "right")
        assert status == 429 and b"too many failed logins" in text
        status, body, headers = call("GET", api, user=("ed", "right"))
        assert status == 429 and headers["Retry-After"] and "try again in" in body["error"]
        # mona, from the same address, waits as well
        assert call("GET", api, user=("mona", "hers"))[0] == 429
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "user 'ed' from 127.0.0.1" in logged and "guess" not in logged and "right" not in logged
