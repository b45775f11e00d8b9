"""Which ``Host`` a local web server answers: shared by ``modelshelf ui`` and ``modelshelf serve``.

A page on another site can rebind its own DNS name to this machine's
address; the browser then sends that page's name in ``Host``. Answering
only the names of this machine (:func:`allowed_hosts`) means such a page
reads nothing, on the loopback interface or on every one. The middleware
here is plain ASGI (no web framework is imported), so both servers use
the same check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from registry.errors import InvalidArgument

#: Host names a server bound to the loopback interface answers to (a DNS-rebinding page sends its own).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Addresses that mean "every interface": any host name may then reach the server.
ANY_INTERFACE = ("0.0.0.0", "::", "")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def url_of(host: str, port: int) -> str:
    """The address a browser on this machine opens (``[::1]`` for IPv6, loopback for every interface)."""
    if host in ANY_INTERFACE:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``: the only names that stay on this machine.

    >>> is_loopback("127.0.0.2"), is_loopback("::1"), is_loopback("127.evil.example"), is_loopback("0.0.0.0")
    (True, True, False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def _as_host_header(name: str) -> str:
    """How ``name`` appears in a ``Host`` header: lower case, an IPv6 address in brackets."""
    name = name.strip().lower()
    return f"[{name}]" if ":" in name and not name.startswith("[") else name


def _addresses_of(name: str) -> list[str]:
    """The addresses ``name`` resolves to on this machine (none if it does not resolve)."""
    try:
        found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]).split("%")[0] for info in found]


def allowed_hosts(host: str, extra: Sequence[str] = ()) -> list[str]:
    """The ``Host`` names the server answers when bound to ``host``: never ``"*"``.

    The loopback names, the bind address itself (unless it is every
    interface), this machine's host name and fully qualified name and the
    addresses they resolve to, and ``extra`` (``--allowed-host``). A name
    with a ``*`` is refused: it would let a rebinding page's name through.
    """
    for name in extra:
        if "*" in name or not name.strip() or "/" in name:
            raise InvalidArgument(f"allowed host {name!r} must be one host name or address, without '*'")
    names = [*LOOPBACK_HOSTS]
    if host not in ANY_INTERFACE:
        names.append(host)
    mine = [socket.gethostname(), socket.getfqdn()]
    for name in mine:
        names += [name, *_addresses_of(name)]
    names += extra
    return list(dict.fromkeys(_as_host_header(name) for name in names if name))


def host_of(header: str) -> str:
    """The host part of a ``Host`` header, lower case: ``[::1]:8765`` → ``[::1]``, ``Example:80`` → ``example``.

    >>> host_of("[::1]:8765"), host_of("Box.LAN:80"), host_of("127.0.0.1")
    ('[::1]', 'box.lan', '127.0.0.1')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rpartition(":")[0] if ":" in header else header


class AllowedHosts:
    """ASGI middleware answering only requests whose ``Host`` is one of ``hosts`` (exact names, no wildcard).

    A DNS-rebinding page reaches the server under its own name; refused
    here, it can neither read a page (and its form token) nor write. The
    refusal names the host and the option that admits it (``command``:
    ``modelshelf ui``), not the names that are admitted (the page refused
    could read them).
    """

    def __init__(self, app: ASGIApp, hosts: Sequence[str], command: str = "modelshelf ui") -> None:
        self.app = app
        self.hosts = frozenset(host.lower() for host in hosts)
        self.command = command

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), "")
        host = host_of(header)
        if host in self.hosts:
            await self.app(scope, receive, send)
            return
        message = (
            f"refused: this server does not answer requests addressed to {host!r}; "
            f"if that name is this machine, start it with `{self.command} --allowed-host NAME`"
        ).encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(message)).encode())]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": message})
