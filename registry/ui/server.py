"""Running the UI: uvicorn on one interface, loopback unless told otherwise."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

from registry.facade import Registry
from registry.ui.routes import LOOPBACK_HOSTS, app

#: Addresses that mean "every interface": any host name may then reach the server.
ANY_INTERFACE = ("0.0.0.0", "::", "")


def url_of(host: str, port: int) -> str:
    """The address a browser on this machine opens (``[::1]`` for IPv6, loopback for every interface)."""
    if host in ANY_INTERFACE:
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(
    registry: Registry,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    allow_writes: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve :func:`registry.ui.app` until interrupted, after saying where and in which mode.

    Bound to 127.0.0.1 the UI answers only this machine, and only requests
    that name a loopback host (a DNS-rebinding page names its own); bound
    to every interface it answers any host name, and ``announce`` says so.
    """
    hosts = ["*"] if host in ANY_INTERFACE else [host, *LOOPBACK_HOSTS]
    application = app(registry, allow_writes=allow_writes, allowed_hosts=hosts)
    local = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    announce(
        f"modelshelf ui: serving {registry.catalog_location} at {url_of(host, port)} - bound to {host or '*'}, "
        f"{'reachable from this machine only' if local else 'reachable from other machines too'}; "
        f"{'writes allowed (--allow-writes)' if allow_writes else 'read-only'}. Ctrl+C stops it."
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
