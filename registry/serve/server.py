"""Running the prediction server: uvicorn, one process or several, loopback unless told otherwise.

One worker serves the application built here. With ``workers > 1``
uvicorn starts each worker as a new interpreter, which builds its own
application from :data:`SPEC_VARIABLE` (:func:`worker_app`): every worker
loads and checks the version itself and follows the alias on its own. They
load it memory-mapped where it can be (an uncompressed joblib file in a
local store), so N workers share one copy of its large arrays in the page
cache; otherwise N workers hold N copies. The parent loads and checks the
version once before any worker starts, so a version that cannot be served
fails the command instead of a worker restarted in a loop.

Logs are uvicorn's (its format, its access log), with the server's own
lines (swaps, refusals) under the ``modelshelf.serve`` logger beside them.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from registry.facade import Registry
from registry.hosts import allowed_hosts, is_loopback, url_of
from registry.serve.routes import DEFAULT_POLL, MAX_BODY_BYTES, app, describe

log = logging.getLogger("modelshelf.serve")

#: The environment variable through which a worker process learns what to serve (JSON of :func:`serve`'s options).
SPEC_VARIABLE = "MODELSHELF_SERVE_SPEC"
#: Seconds a stopping server waits for requests in flight before it closes their connections.
GRACEFUL_SECONDS = 30


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with ``modelshelf.serve`` logging through its ``default`` handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["modelshelf.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_listen`` with the bound port once it listens (not before)."""

    def __init__(self, config: uvicorn.Config, on_listen: Callable[[int], None]) -> None:
        super().__init__(config)
        self._on_listen = on_listen

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, except that the signal is not raised again once stopped: a stop is this command's normal end.

        uvicorn re-raises SIGTERM after its graceful shutdown, so the process
        dies of it (status -15); a supervisor would take that for a crash.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # a port already taken exits here, after uvicorn says why
        if self.started and not self.should_exit:
            self._on_listen(int(self.servers[0].sockets[0].getsockname()[1]))


def worker_app() -> Starlette:
    """The application of one worker process, from :data:`SPEC_VARIABLE` (uvicorn calls it: ``factory=True``)."""
    spec = json.loads(os.environ[SPEC_VARIABLE])
    registry = Registry(spec["home"], catalog=spec["catalog"], store=spec["store"], read_only=spec["read_only"])
    application = app(
        registry,
        spec["ref"],
        pin=spec["pin"],
        poll=spec["poll"],
        safe=spec["safe"],
        max_body=spec["max_body"],
        allowed_hosts=spec["hosts"],
        mmap=spec["mmap"],
    )
    log.info("worker %d serving %s", os.getpid(), describe(application)["ref"])
    return application


def serve(
    registry: Registry,
    ref: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    poll: float = DEFAULT_POLL,
    pin: bool = False,
    safe: bool = False,
    max_body: int = MAX_BODY_BYTES,
    extra_hosts: Sequence[str] = (),
    access_log: bool = True,
    location: dict[str, Any] | None = None,
    announce: Callable[[str], None] = print,
    on_listen: Callable[[int, dict[str, Any]], None] | None = None,
    mmap: bool | None = None,
) -> None:
    """Serve ``ref`` until interrupted; once listening, say what is served, where, and which version.

    ``on_listen`` gets the port bound (``port=0`` picks one) and what is
    served (:func:`~registry.serve.routes.describe`). ``location`` is how a
    worker process opens the registry (``home``, ``catalog``, ``store``,
    ``read_only``: the command line's options); it is needed for
    ``workers > 1``. On SIGINT or SIGTERM uvicorn stops accepting
    connections and lets requests in flight finish (up to
    :data:`GRACEFUL_SECONDS`). ``mmap`` (default: when ``workers > 1``)
    loads memory-mapped where the version allows, so workers share its arrays.
    """
    hosts = allowed_hosts(host, extra_hosts)
    mapped = workers > 1 if mmap is None else mmap
    application = app(registry, ref, pin=pin, poll=poll, safe=safe, max_body=max_body, allowed_hosts=hosts, mmap=mapped)
    served = describe(application)
    if is_loopback(host):
        reach = "reachable from this machine only"
    else:
        names = [name for name in hosts if not is_loopback(name.strip("[]"))]
        reach = f"reachable from other machines as {', '.join(names)}"
    following = f"following {served['following']} every {poll:g}s" if served["following"] else "pinned"

    def listening(bound: int) -> None:
        announce(
            f"modelshelf serve: serving {served['ref']} ({served['digest'][:19]}, canary {served['canary']}) at "
            f"{url_of(host, bound)} - {following}; {workers} worker{'s' if workers != 1 else ''}"
            f"{', memory-mapped' if served['mapped'] else ''}; bound to "
            f"{host or '*'}, {reach}. Ctrl+C stops it."
        )
        if on_listen is not None:
            on_listen(bound, served)

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": log_config(),
        "access_log": access_log,
        "timeout_graceful_shutdown": GRACEFUL_SECONDS,
    }
    if workers == 1:
        _Server(uvicorn.Config(application, **options), listening).run()
        announce(f"modelshelf serve: stopped; it last served {describe(application)['ref']}")
        return
    if location is None:
        raise ValueError("workers > 1 needs location= (how each worker opens the registry)")
    # Every worker serves the version checked here when pinned; following, each reads the alias itself.
    pinned = served["ref"] if pin or served["following"] is None else ref
    del application  # each worker loads its own copy; this process only supervises them
    spec = {
        **location,
        **{"ref": pinned, "pin": pin, "poll": poll, "safe": safe, "max_body": max_body, "hosts": hosts},
        "mmap": mapped,
    }
    os.environ[SPEC_VARIABLE] = json.dumps(spec)
    config = uvicorn.Config("registry.serve.server:worker_app", factory=True, workers=workers, **options)
    sock = config.bind_socket()
    sock.listen(config.backlog)  # connections wait in the kernel's queue until a worker has loaded its copy
    listening(int(sock.getsockname()[1]))
    from uvicorn.supervisors import Multiprocess

    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn before 0.36 took the server's run
        Multiprocess(config, target=uvicorn.Server(config).run, sockets=[sock]).run()  # type: ignore[call-arg]
    else:
        Multiprocess(config, sockets=[sock]).run()
