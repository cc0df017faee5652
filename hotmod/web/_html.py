"""Changing responses on their way out: the live-reload script and cache headers.

Nothing here holds a body. The script goes in while the page streams through: chunks
pass on as they come, and only the few bytes that could be the start of the insertion
point (``</body``) wait for the next chunk. The headers are decided once, from the
response start and its first bytes, and say exactly what the body will be: the length
grows by the script's length (``HEAD`` reports the same), the ``ETag`` of the original
body goes, and a page that cannot take the script (another charset, a partial or empty
response, a Content-Security-Policy without a nonce) is left alone.
"""

from __future__ import annotations

import codecs
import html
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.resources import files

__all__ = [
    "Headers",
    "Injector",
    "Rewrite",
    "Skips",
    "cache_control",
    "charset_problem",
    "client_script",
    "csp_nonce",
    "header",
    "is_html",
    "may_inject",
    "rewrite",
    "with_no_cache",
]

logger = logging.getLogger("hotmod.web")

Headers = list[tuple[str, str]]

# Headers that describe the exact bytes of the original body.
_BODY_DIGESTS = frozenset({"etag", "content-md5", "digest", "content-digest", "repr-digest"})
# Cache-Control directives that let a cache serve a response without asking again.
_FRESHNESS = frozenset({"max-age", "s-maxage", "immutable", "stale-while-revalidate", "stale-if-error"})
# Elements whose content is text to the HTML parser: a "</body>" inside is not a tag.
_RAW_TEXT = frozenset(
    {b"script", b"style", b"textarea", b"title", b"xmp", b"iframe", b"noembed", b"noframes"}
)
_CLOSING = frozenset({b"body", b"html"})
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9]*)")
_DELIMITER = b" \t\n\r\f/>"
_HOLD = 16  # longest undecided tail: "</noframes" and a delimiter, with room
_STATEFUL = ("utf-7", "iso2022", "hz")
_ASCII_PROBE = "<>/=\"' !-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;:.,(){}[]"


def client_script(events_path: str, nonce: str | None = None) -> bytes:
    """The ``<script>`` element injected into HTML pages (ASCII, so any ASCII-based charset takes it)."""
    code = files(__package__).joinpath("client.js").read_text(encoding="utf-8")
    # Inline, so pages need no extra request; the stream's path rides on a data attribute.
    path = html.escape(events_path, quote=True)
    nonce_attr = f' nonce="{html.escape(nonce, quote=True)}"' if nonce is not None else ""
    return f'<script{nonce_attr} data-hotmod data-events="{path}">\n{code}</script>'.encode("ascii")


class Injector:
    """Streams a page through, putting ``snippet`` before its first ``</body>`` (or
    ``</html>``) outside comments, scripts and other raw-text elements, or at its end."""

    def __init__(self, snippet: bytes) -> None:
        self.snippet = snippet
        self.injected = False
        self._seen = False
        self._pending = b""
        self._state = "data"  # "data" | "comment" | "tag" (inside a start tag) | "raw"
        self._raw = b""  # the raw-text element we are in
        self._quote = 0  # the quote open in a start tag, or 0

    def feed(self, chunk: bytes) -> bytes:
        """What can be sent now of ``chunk`` (and of what was held back before it)."""
        if self.injected:
            return chunk
        if chunk:
            self._seen = True
        buf = self._pending + chunk
        keep = self._scan(buf)
        self._pending = buf[keep:]
        if self.injected:
            return buf[:keep] + self.snippet + self._pending_and_clear()
        return buf[:keep]

    def finish(self) -> bytes:
        """The end of the page: what was held back, and the snippet if no place was found."""
        rest = self._pending_and_clear()
        if self.injected or not self._seen:
            return rest
        self.injected = True
        return rest + self.snippet

    def _pending_and_clear(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def _scan(self, buf: bytes) -> int:
        """Advance over ``buf``; returns how much of it is decided (sent as is).

        On finding the insertion point, sets ``injected`` and returns its offset; the
        caller sends ``buf[:offset]``, the snippet, then the rest.
        """
        i = 0
        n = len(buf)
        while i < n:
            if self._state == "data":
                j = buf.find(b"<", i)
                if j < 0:
                    return n
                if buf.startswith(b"<!--", j):
                    self._state, i = "comment", j + 4
                    continue
                if b"<!--".startswith(buf[j : j + 4]) and n - j < 4:
                    return j  # perhaps a comment: wait for more
                match = _TAG.match(buf, j)
                if match is None:
                    if n - j < 3:
                        return j  # "<" or "</" at the end: the name comes next
                    i = j + 1
                    continue
                end = match.end()
                if end == n:
                    if n - j < _HOLD:
                        return j  # the name may go on in the next chunk
                    i = end
                    continue
                if buf[end] not in _DELIMITER:
                    i = end
                    continue
                name = match.group(2).lower()
                if match.group(1):
                    if name in _CLOSING:
                        self.injected = True
                        return j
                    i = end
                else:  # a start tag: its quoted attribute values are not markup
                    self._raw = name if name in _RAW_TEXT else b""
                    self._state, self._quote, i = "tag", 0, end
            elif self._state == "comment":
                j = buf.find(b"-->", i)
                if j < 0:
                    return max(i, n - 2)
                self._state, i = "data", j + 3
            elif self._state == "tag":
                while i < n:
                    c = buf[i]
                    if self._quote:
                        if c == self._quote:
                            self._quote = 0
                    elif c in b"\"'":
                        self._quote = c
                    elif c == ord(">"):
                        self._state = "raw" if self._raw else "data"
                        break
                    i += 1
                i += 1
            else:  # raw text: only its own end tag ends it
                end_tag = re.compile(rb"</" + re.escape(self._raw) + rb"[ \t\n\r\f/>]", re.IGNORECASE)
                match = end_tag.search(buf, i)
                if match is None:
                    return max(i, n - len(self._raw) - 3)
                self._state, i = "data", match.end() - 1
        return n


def is_html(content_type: str | None, content_encoding: str | None) -> bool:
    """An HTML body we can edit: not compressed, not some other type."""
    if content_encoding not in (None, "", "identity"):
        return False
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "text/html"


def header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def charset_problem(content_type: str, first: bytes) -> str | None:
    """Why the script cannot go into a page in this charset, or None when it can."""
    charset = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    if first.startswith((b"\xfe\xff", b"\xff\xfe")):
        return "the page is UTF-16 (it starts with a byte-order mark)"
    if charset is None:
        return None
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return f"its charset {charset!r} is unknown"
    if name.startswith(_STATEFUL) or _ASCII_PROBE.encode(name, "replace") != _ASCII_PROBE.encode("ascii"):
        return f"its charset {charset} does not write ASCII as ASCII"
    return None


def cache_control(values: list[str]) -> str | None:
    """``no-cache`` merged into these Cache-Control values; None to leave them as they are.

    Never weaker than what the app said: ``no-store`` stays as it is, ``private`` and
    the other directives stay; only the ones that would let a cache skip asking again
    (``max-age``, ``immutable``...) give way to ``no-cache``.
    """
    directives = [d.strip() for value in values for d in value.split(",") if d.strip()]
    names = [d.split("=", 1)[0].strip().lower() for d in directives]
    if "no-store" in names or (names == ["no-cache"]):
        return None
    kept = [d for d, n in zip(directives, names, strict=True) if n not in _FRESHNESS and n != "no-cache"]
    return ", ".join([*kept, "no-cache"])


def with_no_cache(headers: Headers) -> Headers:
    merged = cache_control([v for k, v in headers if k.lower() == "cache-control"])
    if merged is None:
        return headers
    return [(k, v) for k, v in headers if k.lower() != "cache-control"] + [("Cache-Control", merged)]


# -- Content-Security-Policy ---------------------------------------------------------------


def _directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            found.setdefault(tokens[0].lower(), tokens[1:])  # the first one counts
    return found


def csp_nonce(policies: list[str]) -> tuple[bool, str | None, str]:
    """(may inject, nonce to use, why not). Every policy must let our script run."""
    nonce: str | None = None
    for policy in policies:
        directives = _directives(policy)
        script = next(
            (directives[d] for d in ("script-src-elem", "script-src", "default-src") if d in directives), None
        )
        if script is not None:
            lowered = [t.lower() for t in script]
            nonces = [t[7:-1] for t in script if t.lower().startswith("'nonce-") and t.endswith("'")]
            hashed = any(t.startswith(("'sha256-", "'sha384-", "'sha512-")) for t in lowered)
            if nonces:
                if nonce is None:
                    nonce = nonces[0]
                elif nonce not in nonces:
                    return False, None, "its Content-Security-Policy headers ask for different nonces"
            elif "'unsafe-inline'" not in lowered or hashed or "'strict-dynamic'" in lowered:
                return (
                    False,
                    None,
                    "its Content-Security-Policy allows no inline script (give script-src a "
                    "'nonce-...' and hotmod reuses it)",
                )
        connect = next((directives[d] for d in ("connect-src", "default-src") if d in directives), None)
        if connect is not None and not ({"'self'", "*", "http:", "https:"} & {t.lower() for t in connect}):
            return False, None, "its Content-Security-Policy connect-src does not allow the event stream"
    return True, nonce, ""


# -- the decision, made once per response ------------------------------------------------------


@dataclass
class Rewrite:
    headers: Headers
    injector: Injector | None = None


def may_inject(status: int, headers: Headers) -> bool:
    """Worth holding the response start for: an HTML body with content to edit."""
    if status in (204, 205, 206, 304) or status < 200 or 300 <= status < 400:
        return False
    if header(headers, "content-range") is not None:
        return False
    return is_html(header(headers, "content-type"), header(headers, "content-encoding"))


class Skips:
    """Logs once per reason why a page got no script."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._said: set[str] = set()

    def __call__(self, path: str, reason: str) -> None:
        with self._lock:
            if reason in self._said or len(self._said) > 64:
                return
            self._said.add(reason)
        logger.info("hotmod.web: no live reload on %s: %s", path, reason)


def rewrite(
    status: int,
    headers: Headers,
    *,
    head: bool,
    inject: bool,
    no_cache: bool,
    script: Callable[[str | None], bytes],
    first: bytes,
    path: str,
    skipped: Callable[[str, str], None],
) -> Rewrite:
    """The headers to send and the injector for the body (None: the body passes as is)."""
    if no_cache:
        headers = with_no_cache(headers)
    if not inject or not may_inject(status, headers):
        return Rewrite(headers)
    problem = charset_problem(header(headers, "content-type") or "", first)
    allowed, nonce, why = csp_nonce([v for k, v in headers if k.lower() == "content-security-policy"])
    if problem is None and not allowed:
        problem = why
    length_value = header(headers, "content-length")
    length: int | None = None
    if problem is None and length_value is not None:
        try:
            length = int(length_value.strip())
        except ValueError:
            problem = f"its Content-Length {length_value!r} is not a number"
        else:
            if length <= 0:
                return Rewrite(headers)  # nothing to put the script in
    if problem is not None:
        skipped(path, problem)
        return Rewrite(headers)
    snippet = script(nonce)
    changed = [(k, v) for k, v in headers if k.lower() not in _BODY_DIGESTS and k.lower() != "content-length"]
    if length is not None:
        changed.append(("Content-Length", str(length + len(snippet))))
    return Rewrite(changed, None if head else Injector(snippet))
