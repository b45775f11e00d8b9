"""Running the UI: uvicorn on one interface, loopback unless told otherwise.

Whatever the interface, the server answers only requests whose ``Host``
names this machine (:func:`allowed_hosts`): a DNS-rebinding page on
another site reaches the server under its own name, so it is refused,
writes included, even when the server listens on every interface.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

import python_multipart  # noqa: F401  # the write forms need it; Starlette would say so only at the first write
import uvicorn
from starlette.applications import Starlette

from registry.errors import InvalidArgument
from registry.facade import Registry
from registry.ui.routes import LOOPBACK_HOSTS, app

#: Addresses that mean "every interface": any host name may then reach the server.
ANY_INTERFACE = ("0.0.0.0", "::", "")


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


def build_app(
    registry: Registry, *, host: str, allow_writes: bool = False, extra_hosts: Sequence[str] = ()
) -> Starlette:
    """The application :func:`serve` runs for a bind address: the one the ``ui`` command serves."""
    return app(registry, allow_writes=allow_writes, allowed_hosts=allowed_hosts(host, extra_hosts))


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_listen`` with the bound port once it listens (not before)."""

    def __init__(self, config: uvicorn.Config, on_listen: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_listen = on_listen

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # a port already taken exits here, after uvicorn says why
        if self.started and not self.should_exit:
            self._on_listen(int(self.servers[0].sockets[0].getsockname()[1]))


def serve(
    registry: Registry,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_writes: bool = False,
    extra_hosts: Sequence[str] = (),
    announce: Callable[[str], None] = print,
    on_listen: Callable[[int], None] | None = None,
) -> None:
    """Serve :func:`registry.ui.app` until interrupted; once listening, say where and in which mode.

    Bound to 127.0.0.1 the UI answers only this machine; bound to every
    interface it answers other machines too, but only under this
    machine's names (:func:`allowed_hosts`), and ``announce`` says so.
    ``on_listen`` gets the port actually bound (``port=0`` picks a free
    one) once the socket listens; if the port is taken, uvicorn logs why
    and raises ``SystemExit`` before anything is announced.
    """
    application = build_app(registry, host=host, allow_writes=allow_writes, extra_hosts=extra_hosts)
    if is_loopback(host):
        reach = "reachable from this machine only"
    else:  # the names another machine may use: the loopback ones are of no use to it
        names = [name for name in allowed_hosts(host, extra_hosts) if not is_loopback(name.strip("[]"))]
        reach = f"reachable from other machines as {', '.join(names)}"

    def listening(bound: int) -> None:
        announce(
            f"modelshelf ui: serving {registry.catalog_location} at {url_of(host, bound)} - bound to {host or '*'}, "
            f"{reach}; {'writes allowed (--allow-writes)' if allow_writes else 'read-only'}. Ctrl+C stops it."
        )
        if on_listen is not None:
            on_listen(bound)

    config = uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False)
    _Server(config, listening).run()
