"""Who may use the web UI and the JSON API when a login is configured, and how guessing is slowed.

`logins(env, file)` reads logins from `ISNAD_AUTH` ("user:secret") and an auth file (one
`user:secret` a line; blank lines and `#` comments ignored), where a secret is a password hash
written by `hash_password` (`user:scrypt$...`, what `isnad auth add USER` writes) or a plain
password (kept working; `warn` is told about each one). `check_host(host, logins)` refuses a
non-loopback host without a login.

`Gate(logins)` judges a login attempt for both doors, the UI's login form (ui/guard.py) and the
API's HTTP Basic (ui/api.py): every check costs one scrypt, for an unknown user too, and every
refusal waits the same delay and reads the same; after MAX_FAILURES failed logins for one user
or from one address within WINDOW_S seconds, the next attempts get 429 for LOCK_S seconds
without being checked. Each refusal is logged (logger "isnad.auth") with the user and the
address, never the password.

What this module does NOT do: speak HTTP (ui/guard.py, ui/api.py), provide TLS (put a reverse
proxy in front; behind one every client has the proxy's address, so the per-address limit then
counts them together), keep counts across restarts, or store sessions (Gradio keeps the UI's;
the API checks every call).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MB and tens of ms a check: slow to guess, quick to use
MAX_FAILURES = 5
WINDOW_S = 300.0
LOCK_S = 300.0
FAIL_DELAY_S = 0.5  # every refused login waits this long, whoever it named
REFUSED = "wrong user or password"
LOG = logging.getLogger("isnad.auth")


class AuthError(Exception):
    """A login that cannot be used, or a host that needs one; the message says what to do."""


def logins(
    env: str | None = None, file: Path | None = None, warn: Callable[[str], None] | None = None
) -> list[tuple[str, str]]:
    """[(user, secret)] from ISNAD_AUTH's value and/or an auth file; AuthError if malformed.
    `warn(message)` hears of each plain-text password."""
    out: list[tuple[str, str]] = []
    if env:
        out.append(_pair(env, "ISNAD_AUTH", warn))
    if file is not None:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read the auth file {file} ({exc}); check the path") from exc
        for n, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(_pair(line.strip(), f"{file} line {n}", warn))
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


def _pair(text: str, where: str, warn: Callable[[str], None] | None) -> tuple[str, str]:
    user, sep, secret = text.partition(":")
    if not sep or not user.strip() or not secret:
        raise AuthError(f'{where}: expected "user:password", with both parts non-empty')
    if secret.startswith("scrypt$"):
        _parse_hash(secret, where)
    elif warn is not None:
        warn(
            f"{where} holds a plain-text password for {user.strip()!r}; store a hash instead "
            f"with `isnad auth add {user.strip()}`"
        )
    return user.strip(), secret


# --- password hashes ------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash` (salt and hash base64) of `password`, with a fresh salt."""
    salt = secrets.token_bytes(16)
    n, r, p = SCRYPT["n"], SCRYPT["r"], SCRYPT["p"]
    digest = _scrypt(password, salt, n, r, p)
    salt64, digest64 = (base64.b64encode(x).decode() for x in (salt, digest))
    return f"scrypt${n}${r}${p}${salt64}${digest64}"


def _parse_hash(secret: str, where: str = "a login") -> tuple[int, int, int, bytes, bytes]:
    try:
        _, n, r, p, salt, digest = secret.split("$")
        return int(n), int(r), int(p), base64.b64decode(salt), base64.b64decode(digest)
    except ValueError as exc:
        raise AuthError(
            f"{where}: the password hash is malformed; write it again with `isnad auth add USER`"
        ) from exc


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**26
    )


def add_login(file: Path, user: str, password: str) -> bool:
    """Write `user:<hash of password>` into the auth file (created readable by its owner only),
    replacing the user's line if there is one; True if it replaced one. Atomic."""
    if not user or ":" in user or user != user.strip() or any(c.isspace() for c in user):
        raise AuthError(f"user {user!r}: a user name has no spaces and no ':'")
    if not password:
        raise AuthError("the password is empty; choose one")
    file = Path(file)
    lines = file.read_text(encoding="utf-8").splitlines() if file.exists() else []
    line = f"{user}:{hash_password(password)}"
    mine = [i for i, x in enumerate(lines) if x.strip().partition(":")[0].strip() == user]
    if mine:
        lines[mine[0]] = line
        lines = [x for i, x in enumerate(lines) if i not in mine[1:]]
    else:
        lines.append(line)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{secrets.token_hex(4)}.tmp")
    tmp.touch(mode=0o600)
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(file)
    return bool(mine)


# --- checking, counting, refusing -----------------------------------------------------------


class TooManyAttempts(Exception):
    """Logins refused for a while after repeated failures; `retry_after` seconds are left."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        minutes = max(1, round(self.retry_after / 60))
        super().__init__(
            f"too many failed logins; try again in {minutes} minute{'s' if minutes > 1 else ''}"
        )


class Gate:
    """The configured logins, checked at equal cost, with failures counted per user and per
    client address (thread-safe; one per server)."""

    def __init__(
        self,
        users: list[tuple[str, str]],
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_S,
        lock: float = LOCK_S,
        fail_delay: float = FAIL_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = dict(users)
        self.max_failures, self.window, self.lock_s = max_failures, window, lock
        self.fail_delay, self.clock = fail_delay, clock
        self._failures: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}
        self._mutex = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()  # keyed digests of logins that passed, not passwords
        n, r, p = SCRYPT["n"], SCRYPT["r"], SCRYPT["p"]
        self._dummy = (n, r, p, b"\0" * 16, b"\0" * 32)

    def __bool__(self) -> bool:
        return bool(self.users)

    def verify(self, user: str, password: str) -> bool:
        """Whether `user` and `password` make a login. One scrypt for every call (an unknown
        user and a plain-text password too), except a login that passed before."""
        mark = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if mark in self._verified:
            return True
        secret = self.users.get(user)
        if secret is not None and secret.startswith("scrypt$"):
            n, r, p, salt, digest = _parse_hash(secret)
        else:
            n, r, p, salt, digest = self._dummy
        ok = hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)
        if secret is not None and not secret.startswith("scrypt$"):
            ok = hmac.compare_digest(password.encode("utf-8"), secret.encode("utf-8"))
        if ok and secret is not None:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified.add(mark)
            return True
        return False

    def check_open(self, user: str, address: str) -> None:
        """TooManyAttempts (and a log line) while `user` or `address` is locked."""
        now = self.clock()
        with self._mutex:
            until = max(self._locked.get(f"u:{user}", 0.0), self._locked.get(f"a:{address}", 0.0))
        if until > now:
            LOG.warning(
                "login refused: user %r from %s: locked after repeated failures (%.0f s left)",
                user, address, until - now,
            )  # fmt: skip
            raise TooManyAttempts(until - now)

    def failed(self, user: str, address: str) -> None:
        """Count a failed login for `user` and for `address`; the fifth within the window locks
        both keys for the lock time."""
        now = self.clock()
        LOG.warning("login refused: user %r from %s: %s", user, address, REFUSED)
        with self._mutex:
            if len(self._failures) > 50_000:  # a spray of names: forget the quiet ones
                self._forget(now)
            for key in (f"u:{user}", f"a:{address}"):
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] <= now - self.window:
                    times.popleft()
                if len(times) >= self.max_failures:
                    self._locked[key] = now + self.lock_s
                    times.clear()

    def succeeded(self, user: str) -> None:
        with self._mutex:
            self._failures.pop(f"u:{user}", None)

    def _forget(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= now - self.window]:
            del self._failures[key]
        for key in [k for k, until in self._locked.items() if until <= now]:
            del self._locked[key]

    async def login(self, user: str, password: str, address: str) -> bool:
        """The whole check of one attempt: TooManyAttempts while locked; else the password
        (off the event loop), then, if wrong, the failure counted and the refusal delayed."""
        self.check_open(user, address)
        if await asyncio.to_thread(self.verify, user, password):
            self.succeeded(user)
            return True
        self.failed(user, address)
        await asyncio.sleep(self.fail_delay)
        return False
