"""http(s) URLs of pages and feeds -> their bytes, with a timeout and a size limit.

`fetch(url)` returns a `Fetched(url, data, kind)` where kind is "html" or "feed" (from the
Content-Type, else from the first bytes), or raises `FetchError` with one line that says what
went wrong and what to do. Only http and https are fetched; redirects are followed (urllib's
limit); a response longer than `max_bytes` is refused rather than cut.

What this module does NOT do: parse what it fetched (index.webformats), retry, or cache.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

TIMEOUT_S = 20.0
MAX_BYTES = 20 * 1024 * 1024
USER_AGENT = "isnad/0.1 (+https://github.com/isnad; news question answering)"
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/xml", "text/xml")


class FetchError(Exception):
    """A URL that could not be fetched; the message says why and what to do."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    kind: str  # "html" or "feed"


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def fetch(url: str, *, timeout: float | None = None, max_bytes: int | None = None) -> Fetched:
    """GET `url`; FetchError on a bad scheme, an HTTP error, a timeout or a body too large.
    The limits default to TIMEOUT_S and MAX_BYTES."""
    timeout = TIMEOUT_S if timeout is None else timeout
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    if not is_url(url):
        raise FetchError(f"{url}: only http:// and https:// URLs can be fetched")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(max_bytes + 1)
            final_url = response.geturl()
            content_type = response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}; check the address") from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"{url}: cannot fetch ({reason}); check the address and network") from exc
    if len(data) > max_bytes:
        raise FetchError(f"{url}: larger than {_size(max_bytes)}; save the page and index the file")
    return Fetched(final_url, data, _kind(content_type, data))


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n / 2**10:g} KB"


def _kind(content_type: str, data: bytes) -> str:
    if content_type in FEED_TYPES:
        return "feed"
    if content_type == "text/html":
        return "html"
    head = data[:1024].lstrip().lower()
    return "feed" if head.startswith(b"<?xml") or b"<rss" in head or b"<feed" in head else "html"
