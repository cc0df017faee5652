"""Who may use live reload: loopback clients and loopback names, unless told otherwise.

The event stream tells whoever reads it where a failed reload broke (paths, lines,
messages), and the injected script follows it; neither belongs on a public address,
nor in a page that another site got the browser to load under its own name (DNS
rebinding). So by default:

- the ``Host`` a request names must be ``localhost``, a ``*.localhost`` name or a
  loopback address, or be listed in ``allowed_hosts`` (``"*"`` lists everything,
  ``".example.test"`` a domain and its subdomains);
- a client that is not on loopback is served only under a name listed in
  ``allowed_hosts``, never under a loopback name (which only a proxy would send);
- the event stream also checks ``Origin`` when a browser sends one: it must be the
  origin the ``Host`` names, or a listed name;
- failure details (paths, lines, messages) go to loopback clients only; others hear
  that a reload failed and nothing more.

Requests that fail these rules are passed to the app untouched: no script, no header
changes; the event stream answers 403.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Access", "Verdict", "is_loopback_address", "is_loopback_name", "public_listeners", "split_host"]

logger = logging.getLogger("hotmod.web")

_LOGGED_LIMIT = 64  # distinct refusals logged; an attacker must not fill the log


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    #: failure details (paths, lines, messages) may be sent to this client
    private: bool = False
    reason: str = ""


def split_host(value: str | None) -> str | None:
    """The host name of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), lowercased."""
    if not value:
        return None
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return host
    host, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None
    host = host.rstrip(".")
    return host or None


def is_loopback_address(address: str | None) -> bool:
    """``address`` is an IP address on loopback (``127.0.0.0/8``, ``::1``, v4-mapped)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def is_loopback_name(host: str) -> bool:
    # RFC 6761: browsers resolve every *.localhost name to loopback themselves.
    return host == "localhost" or host.endswith(".localhost") or is_loopback_address(host)


class Access:
    """The rules above, for one middleware."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts takes a list of host names, not one string")
        names: list[str] = []
        for entry in allowed_hosts:
            name = entry.strip().lower()
            host = name if name == "*" or name.startswith(".") else split_host(name)
            if not host or host == ".":
                raise ValueError(f"allowed_hosts: {entry!r} is not a host name")
            names.append(host)
        self.allowed_hosts = tuple(names)
        self._lock = threading.Lock()
        self._logged: set[str] = set()

    def listed(self, host: str) -> bool:
        for name in self.allowed_hosts:
            if name in ("*", host):
                return True
            if name.startswith(".") and (host == name[1:] or host.endswith(name)):
                return True
        return False

    def check(
        self, host_header: str | None, client: str | None, origin: str | None = None, *, stream: bool = False
    ) -> Verdict:
        """May this request get live reload? ``client`` None: a Unix socket or in-process."""
        local = client is None or client == "" or is_loopback_address(client)
        host = split_host(host_header)
        if host is None:
            return self._refuse("the request names no valid Host", host_header, client)
        if is_loopback_name(host):
            if not local:
                return self._refuse(
                    f"a client at {client} used the loopback name {host!r}", host_header, client
                )
        elif not self.listed(host):
            return self._refuse(
                f"Host {host!r} is not allowed (pass allowed_hosts=[{host!r}] to serve it)",
                host_header,
                client,
            )
        if stream and origin is not None:
            problem = self._origin_problem(origin, host_header or "")
            if problem is not None:
                return self._refuse(problem, host_header, client)
        return Verdict(True, private=local)

    def _origin_problem(self, origin: str, host_header: str) -> str | None:
        if origin.strip().lower() == "null":
            return "the page has an opaque origin ('null')"
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return f"Origin {origin!r} is not a web origin"
        if parts.netloc.lower() == host_header.strip().lower():
            return None  # the page's own origin
        host = split_host(parts.netloc)
        if host is not None and self.listed(host):
            return None
        return f"Origin {origin!r} is another site than {host_header!r}"

    def _refuse(self, reason: str, host_header: str | None, client: str | None) -> Verdict:
        with self._lock:
            first = reason not in self._logged and len(self._logged) < _LOGGED_LIMIT
            if first:
                self._logged.add(reason)
        if first:
            logger.warning(
                "hotmod.web: no live reload for a request from %s: %s", client or "a local socket", reason
            )
        return Verdict(False, reason=reason)


def public_listeners() -> list[str]:
    """``host:port`` of every TCP socket of this process listening beyond loopback."""
    found: list[str] = []
    for fd in _descriptors():
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with sock:
            try:
                if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                    continue
                accepting = getattr(socket, "SO_ACCEPTCONN", None)
                if accepting is None or not sock.getsockopt(socket.SOL_SOCKET, accepting):
                    continue
                address = sock.getsockname()
            except OSError:
                continue
        host, port = str(address[0]), int(address[1])
        if not is_loopback_address(host):
            found.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return sorted(set(found))


def _descriptors() -> Iterable[int]:
    for listing in ("/proc/self/fd", "/dev/fd"):
        if sys.platform.startswith(("linux", "darwin", "freebsd")) and os.path.isdir(listing):
            try:
                return sorted(int(n) for n in os.listdir(listing) if n.isdigit())
            except OSError:
                continue
    return range(256)
