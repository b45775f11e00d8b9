"""Running the UI: uvicorn on one interface, loopback unless told otherwise.

Whatever the interface, the server answers only requests whose ``Host``
names this machine (:func:`allowed_hosts`): a DNS-rebinding page on
another site reaches the server under its own name, so it is refused,
writes included, even when the server listens on every interface.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence

import python_multipart  # noqa: F401  # the write forms need it; Starlette would say so only at the first write
import uvicorn
from starlette.applications import Starlette

from registry.facade import Registry
from registry.hosts import ANY_INTERFACE, allowed_hosts, is_loopback, url_of
from registry.ui.routes import app

__all__ = ["ANY_INTERFACE", "allowed_hosts", "build_app", "is_loopback", "serve", "url_of"]


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
