"""Changing responses on their way out: the live-reload script and cache headers."""

from __future__ import annotations

import html
import re
from importlib.resources import files

_CLOSING = (re.compile(rb"</body\s*>", re.IGNORECASE), re.compile(rb"</html\s*>", re.IGNORECASE))


def client_script(events_path: str) -> bytes:
    """The ``<script>`` element injected into HTML pages."""
    code = files(__package__).joinpath("client.js").read_text(encoding="utf-8")
    # Inline, so pages need no extra request; the stream's path rides on a data attribute.
    path = html.escape(events_path, quote=True)
    return f'<script data-hotmod data-events="{path}">\n{code}</script>'.encode()


def inject(body: bytes, snippet: bytes) -> bytes:
    """``body`` with ``snippet`` before its last ``</body>`` (or ``</html>``, or at the end)."""
    for closing in _CLOSING:
        matches = list(closing.finditer(body))
        if matches:
            at = matches[-1].start()
            return body[:at] + snippet + body[at:]
    return body + snippet


def is_html(content_type: str | None, content_encoding: str | None) -> bool:
    """An HTML body we can edit: not compressed, not some other type."""
    if content_encoding not in (None, "", "identity"):
        return False
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == "text/html"


NO_CACHE = "no-cache"
