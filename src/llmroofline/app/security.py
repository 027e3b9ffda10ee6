"""Who may talk to the server: the Host header of every request must name this server (loopback,
the address it was bound to by name, or a name allowed with `llmroofline app --allow-host`), so a
page elsewhere cannot reach a local app through DNS rebinding."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from ..errors import clean_name

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY_ADDRESS = ("0.0.0.0", "::", "")  # binding these listens on every interface


def host_name(header: str) -> str:
    """The host of a Host header (or of an address), lower-cased, without port, brackets or a
    trailing dot: '[::1]:8050' -> '::1', 'LocalHost.:80' -> 'localhost'."""
    h = str(header or "").strip().lower()
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else ""
    if h.count(":") == 1:  # name:port (an IPv6 address has more colons and no port without brackets)
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def allowed_hosts(bind: str | None = "127.0.0.1", extra: tuple[str, ...] | list[str] = ()) -> set[str]:
    """Host names the server answers to: loopback, the address it was bound to by name, and
    `extra` (`llmroofline app --allow-host`)."""
    names = set(LOOPBACK_HOSTS)
    if bind is not None and bind not in ANY_ADDRESS:
        names.add(host_name(bind))
    names |= {host_name(e) for e in extra if host_name(e)}
    return names


def host_allowed(header: str | None, allowed: set[str], *, any_address: bool = False) -> bool:
    """Whether a request's Host header names this server. A page on another site that rebinds its
    own DNS name to this machine (DNS rebinding) still sends its own name: refused. When the server
    listens on every interface, a bare IP address is accepted too (no DNS is involved in it)."""
    name = host_name(header or "")
    if not name:
        return False
    if name in allowed:
        return True
    if any_address:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True
    return False


def check_host_header(server: Any, allowed: set[str], any_address: bool) -> None:
    """Answer 400 to any request whose Host header is not an allowed name."""
    from flask import request

    @server.before_request
    def check_host() -> Any:
        if not host_allowed(request.headers.get("Host"), allowed, any_address=any_address):
            log.warning("refused a request for another host (Host header %r)", clean_name(request.headers.get("Host"), 80))
            return ("Bad Request: this server does not answer to that host name (add it with "
                    "`llmroofline app --allow-host NAME`)\n", 400, {"Content-Type": "text/plain; charset=utf-8"})
        return None

