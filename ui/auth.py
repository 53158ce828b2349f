"""Who may use the web UI when it is served beyond this machine.

`logins(env, file)` reads logins from `ISNAD_AUTH` ("user:password") and an auth file (one
`user:password` a line; blank lines and `#` comments ignored) and returns [(user, password)];
`check_host(host, logins)` refuses a non-loopback host without a login. On loopback no login is
needed unless one is given. Gradio enforces the login (app.launch passes it as `auth`): the page
shows a login form and every API route answers 401 without the session cookie.

What this module does NOT do: hash or store passwords (the file is the user's, and should be
readable by them only), rate-limit attempts, or provide TLS (put a reverse proxy in front for
that).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path


class AuthError(Exception):
    """A login that cannot be used, or a host that needs one; the message says what to do."""


def logins(env: str | None = None, file: Path | None = None) -> list[tuple[str, str]]:
    """[(user, password)] from ISNAD_AUTH's value and/or an auth file; AuthError if malformed."""
    out: list[tuple[str, str]] = []
    if env:
        out.append(_pair(env, "ISNAD_AUTH"))
    if file is not None:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read the auth file {file} ({exc}); check the path") from exc
        for n, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(_pair(line.strip(), f"{file} line {n}"))
        if not out:
            raise AuthError(f"the auth file {file} has no user:password line")
    return out


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def check_host(host: str, users: list[tuple[str, str]]) -> None:
    """AuthError when `host` is reachable from other machines and no login is configured."""
    if not users and not is_loopback(host):
        raise AuthError(
            f"serving on {host} would put the archive and its upload form on the network with "
            'no login; set ISNAD_AUTH="user:password" or pass --auth-file FILE'
        )


def _pair(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise AuthError(f'{where}: expected "user:password", with both parts non-empty')
    return user.strip(), password
