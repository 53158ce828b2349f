"""The web layer around Gradio's login form: refusals of locked logins before Gradio sees them,
and a login page that says why.

`LoginGuard(app, gate)`, an ASGI middleware app.launch installs, stands in front of Gradio's
`POST /login`: a user or address the `Gate` (ui/auth.py) has locked gets 429 and the reason; a
refused attempt is counted and delayed. The password itself is checked by Gradio calling
`gate_auth(gate)`. Gradio's login page shows nothing for a status other than 400 and 200, so the
guard adds LOGIN_PAGE_HEAD to the page, which shows a 429's reason under the form.
`basic_credentials` reads an HTTP Basic header (the JSON API's login).

What this module does NOT do: judge a password or count failures (ui/auth.Gate), or keep
sessions (Gradio does).
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qs

from ui.auth import Gate, TooManyAttempts


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an `Authorization: Basic ...` header, or None."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except ValueError:
        return None
    return (user, password) if sep else None


class LoginGuard:
    """ASGI middleware in front of Gradio's login form (POST /login): a locked user or address
    gets 429 before Gradio sees the attempt; a refused attempt is counted and delayed. The
    page itself (GET /) gets LOGIN_PAGE_HEAD."""

    def __init__(self, app, gate: Gate) -> None:
        self.app, self.gate = app, gate

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.gate:
            return await self.app(scope, receive, send)
        if scope["method"] == "GET" and scope["path"] in ("", "/"):
            return await self.app(scope, receive, _with_head(send))
        if not (scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/login")):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        form = parse_qs(body.decode("utf-8", "replace"))
        user = (form.get("username") or [""])[0].strip()
        address = (scope.get("client") or ("unknown", 0))[0]
        try:
            self.gate.check_open(user, address)
        except TooManyAttempts as exc:
            return await _send_json(send, 429, {"detail": str(exc)}, exc.retry_after)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = {}

        async def watch(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                if message["status"] == 400:  # Gradio's "Incorrect credentials."
                    self.gate.failed(user, address)
                    await asyncio.sleep(self.gate.fail_delay)
                elif message["status"] == 200:
                    self.gate.succeeded(user)
            await send(message)

        await self.app(scope, replay, watch)


def _with_head(send):
    """`send` for the page: LOGIN_PAGE_HEAD put before </head> of an HTML response."""
    start: dict = {}
    chunks: list[bytes] = []

    async def inject(message):
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers", []))
            if not headers.get(b"content-type", b"").startswith(b"text/html") or headers.get(
                b"content-encoding"
            ):
                start["pass"] = True
                return await send(message)
            start["message"] = message
            return None
        if start.get("pass") or message["type"] != "http.response.body":
            return await send(message)
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return None
        page = b"".join(chunks).replace(b"</head>", LOGIN_PAGE_HEAD.encode() + b"</head>", 1)
        first = start["message"]
        headers = [(k, v) for k, v in first.get("headers", []) if k != b"content-length"]
        headers.append((b"content-length", str(len(page)).encode()))
        await send({**first, "headers": headers})
        await send({"type": "http.response.body", "body": page})

    return inject


def gate_auth(gate: Gate):
    """The `auth` callable Gradio's login form calls: the password checked off the event loop."""

    async def auth(user: str, password: str) -> bool:
        return await asyncio.to_thread(gate.verify, user, password)

    return auth


async def _send_json(send, status: int, body: dict, retry_after: float | None = None) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(int(retry_after)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# Gradio's login page shows nothing for a status other than 400 and 200: this script, put in the
# page's <head> by LoginGuard, shows a 429's reason under the form.
LOGIN_PAGE_HEAD = """<script>
(() => {
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const response = await fetch0(...args);
    const url = String(args[0] && args[0].url ? args[0].url : args[0]);
    if (response.status === 429 && /\\/login\\/?$/.test(url)) {
      const body = await response.clone().json().catch(() => ({}));
      const form = document.querySelector('form') || document.body;
      let note = document.getElementById('isnad-login-note');
      if (!note) {
        note = document.createElement('p');
        note.id = 'isnad-login-note';
        note.style.color = '#b91c1c';
        form.appendChild(note);
      }
      note.textContent = body.detail || 'too many failed logins; try again later';
    }
    return response;
  };
})();
</script>"""
