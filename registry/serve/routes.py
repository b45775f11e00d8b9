"""The prediction server's ASGI application: explicit routes, plain endpoint functions, one model handed in.

``app(registry, "iris@production")`` loads the version the alias points at
(verified, its canary re-run) before it returns, so a server never
listens with nothing to serve; its lifespan then polls the alias every
``poll`` seconds (:class:`~registry.serve.follower.Follower`). Endpoints:

* ``POST /predict``, ``/predict_proba``, ``/transform``: the model's method
  (404 naming the served version where it has none); ``POST /invocations``
  is ``/predict`` as MLflow's scoring server spells it.
* ``GET /metadata``, ``/healthz``, ``/readyz``, ``/metrics``; ``GET /ping``,
  ``/health`` and ``/version`` as MLflow's server answers them.

Every prediction names the version that made it (``"model": "name:7"`` and
a ``modelshelf-model`` header). Errors are JSON in MLflow's shape,
``{"error_code": …, "message": …}``: 4xx for anything the client sent,
and a 500 only for a model that fails on input it accepted, never with a
traceback in the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import __version__
from registry.errors import InvalidArgument, RegistryError
from registry.facade import Registry
from registry.hosts import LOOPBACK_HOSTS, AllowedHosts
from registry.names import parse_ref
from registry.serve import answers, metrics, payloads
from registry.serve.follower import Follower
from registry.serve.payloads import RequestRefused
from registry.serve.served import METHODS, SwapRefused, load_served

if TYPE_CHECKING:  # a SQLite catalog is followed without SQLAlchemy, which the catalog's notices import
    from registry.catalog.notices import AliasNotice, AliasWatch

log = logging.getLogger("modelshelf.serve")

#: The largest request body taken, in bytes: a 1,000-row request of 100 features is about 1 MiB of JSON.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Seconds between two reads of the followed alias.
DEFAULT_POLL = 5.0
#: Seconds at least between two reads that notices trigger (a notice is a hint, and anyone may send one).
NOTICE_READ_GAP = 0.25
MODEL_HEADER = "modelshelf-model"
_JSON = "application/json"
_ERROR_KEY = "modelshelf.error"
_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


def _error(status: int, code: str, message: str) -> Response:
    return Response(answers.encode({"error_code": code, "message": message}), status, media_type=_JSON)


class Counted:
    """ASGI middleware counting each request in :class:`~registry.serve.metrics.Metrics` with its latency."""

    def __init__(self, app: ASGIApp, metrics: metrics.Metrics, paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            path = scope["path"] if scope["path"] in self.paths else "other"
            error = scope.get(_ERROR_KEY) or (_CODES.get(status, "INTERNAL") if status >= 400 else None)
            self.metrics.request(path, status, time.perf_counter() - started, error)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = RequestRefused(
        413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes: send fewer rows per request"
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _poll_seconds(poll: float) -> float:
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not math.isfinite(poll) or poll <= 0:
        raise InvalidArgument(f"poll must be a positive number of seconds, not {poll!r}")
    return float(poll)


def app(
    registry: Registry,
    ref: str,
    *,
    pin: bool = False,
    poll: float = DEFAULT_POLL,
    safe: bool = False,
    max_body: int = MAX_BODY_BYTES,
    allowed_hosts: Sequence[str] | None = None,
    mmap: bool = False,
) -> Starlette:
    """A prediction server for ``ref`` (``NAME@ALIAS`` follows the alias; ``NAME:3`` or ``NAME`` is fixed).

    >>> from starlette.testclient import TestClient                      # doctest: +SKIP
    >>> server = app(Registry("models"), "iris-knn@production")         # doctest: +SKIP
    >>> client = TestClient(server, base_url="http://127.0.0.1")         # doctest: +SKIP
    >>> client.post("/predict", json={"inputs": [[5.1, 3.5, 1.4, 0.2]]}).json()  # doctest: +SKIP
    {'predictions': [0], 'model': 'iris-knn:2'}

    The version is loaded here, before this returns (``safe`` loads it with
    the restricted unpickler); a version that fails to load or its canary
    raises that error. ``pin`` serves the alias's version of now and never
    moves. The alias is followed while the application's lifespan runs (any
    ASGI server runs it; Starlette's ``Mount`` does not, so mount it with its
    lifespan, or poll ``application.state.follower`` yourself).
    ``allowed_hosts`` lists the ``Host`` headers answered (default: the
    loopback names), as for :func:`registry.ui.app`. ``mmap`` loads each
    version memory-mapped where it can be (``load(..., mmap=True)``), so
    that processes serving it share one copy of its arrays.
    """
    parsed = parse_ref(ref)
    seconds = _poll_seconds(poll)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise InvalidArgument(f"max_body must be a positive number of bytes, not {max_body!r}")
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    if any("*" in host for host in hosts):
        raise InvalidArgument(f"allowed_hosts must name hosts, without '*' (it would answer any site): {hosts!r}")
    if not isinstance(mmap, bool):
        raise InvalidArgument(f"mmap must be True or False, not {mmap!r}")
    try:
        served = load_served(registry, registry.get(ref), safe=bool(safe), mmap=mmap)
    except SwapRefused as refusal:  # at startup, the error itself: a CanaryMismatch exits 3 as `check` does
        if isinstance(refusal.__cause__, Exception):
            raise refusal.__cause__ from None
        raise InvalidArgument(f"{ref} cannot be served: {refusal.message}") from None
    for note in served.notes:
        log.warning("%s: %s", served.ref, note)
    counts = metrics.Metrics()
    alias = parsed.alias if parsed.alias is not None and not pin else None
    follower = Follower(registry, served, alias, safe=bool(safe), metrics=counts, mmap=mmap)

    watch: list[AliasWatch] = []  # the running watch, while the lifespan runs on a catalog that notifies

    async def follow(woken: asyncio.Event) -> None:
        last_read = 0.0
        while True:
            try:
                await asyncio.wait_for(woken.wait(), seconds)
                trigger = "notice"
                # Any database role may NOTIFY: a flood of notices reads the alias at most this often.
                await asyncio.sleep(max(0.0, last_read + NOTICE_READ_GAP - time.monotonic()))
            except TimeoutError:
                trigger = "timer"
            woken.clear()  # a notice arriving during the read below sets it again: one more read, none lost
            last_read = time.monotonic()
            try:
                await run_in_threadpool(follower.poll, trigger)  # it may load a model: never on the event loop
            except Exception:  # a bug must not stop the following for good: say so and poll again
                log.exception("polling %s failed", ref)

    def start_watch(woken: asyncio.Event) -> None:
        """Listen for alias notices where the catalog sends them; each one wakes ``follow`` early."""
        assert alias is not None
        loop = asyncio.get_running_loop()
        name = follower.name
        lost: list[str | None] = [None]  # the last loss logged, until the watch listens again

        def wake(notice: AliasNotice) -> None:  # in the watch's thread
            if notice.concerns(name, alias):
                if not notice.reconnected:
                    counts.noticed()
                with contextlib.suppress(RuntimeError):  # the loop closed as the server stopped
                    loop.call_soon_threadsafe(woken.set)

        def on_state(state: str, error: str | None) -> None:
            if state == "listening":
                counts.listening(True)
                lost[0] = None
                log.info("listening for moves of %s@%s in the catalog (polling every %gs too)", name, alias, seconds)
            elif state == "reconnecting":
                counts.listening(False)
                if error == lost[0]:  # once per kind of failure, not once per attempt
                    return
                lost[0] = error
                log.warning(
                    "the catalog connection that listens for alias moves failed (%s): reconnecting, polling every %gs "
                    "meanwhile",
                    error,
                    seconds,
                )

        try:
            found = registry.watch_aliases(wake, on_state)
        except Exception as exc:  # notices are an optimization: polling alone still follows the alias
            log.warning("cannot listen for moves of %s@%s (%s): polling every %gs", name, alias, exc, seconds)
            return
        if found is not None:
            counts.can_listen()  # not listening(False): the watch's thread may have reported "listening" already
            watch.append(found)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if alias is not None:
            woken = asyncio.Event()
            start_watch(woken)
            task = asyncio.create_task(follow(woken))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            while watch:
                await run_in_threadpool(watch.pop().stop)

    def method_endpoint(method: str) -> Any:
        async def endpoint(request: Request) -> Response:
            current = follower.current
            if method not in current.methods:
                served_methods = ", ".join(f"/{m}" for m in METHODS if m in current.methods)
                raise RequestRefused(404, "NOT_FOUND", f"{current.ref} has no {method}; it serves {served_methods}")
            kind = payloads.media_type(request.headers.get("content-type"))
            body = await _body(request, max_body)
            content = await run_in_threadpool(answers.answer, current, method, kind, body)
            return Response(content, media_type=_JSON, headers={MODEL_HEADER: current.ref})

        return endpoint

    def metadata(request: Request) -> Response:
        current = follower.current
        mv = current.mv
        document = {
            "name": mv.name,
            "version": mv.version,
            "ref": mv.ref,
            "digest": mv.checksum,
            "size": mv.size,
            "format": mv.format,
            "created_at": mv.created_at.isoformat(),
            "aliases": list(mv.aliases),
            "signed": mv.hmac is not None,
            "input_signature": None if mv.input_signature is None else mv.input_signature.to_json(),
            "environment": mv.environment,
            "methods": [m for m in METHODS if m in current.methods],
            "canary": current.canary,
            "loaded_at": datetime.fromtimestamp(current.loaded_at, UTC).isoformat(),
            "following": None if alias is None else f"{mv.name}@{alias}",
            "poll_seconds": None if alias is None else seconds,
            "safe": bool(safe),
            "mapped": current.mapped,
            "modelshelf": __version__,
        }
        return Response(answers.encode(document), media_type=_JSON, headers={MODEL_HEADER: mv.ref})

    def healthz(request: Request) -> Response:
        return Response(answers.encode({"status": "ok"}), media_type=_JSON)

    def readyz(request: Request) -> Response:
        current = follower.current
        document = {
            "ready": True,
            "model": current.ref,
            "following": None if alias is None else f"{current.mv.name}@{alias}",
            "last_poll_error": follower.last_error,
            "polls": follower.polls,
            "served_since_poll": follower.served_since_poll,
            "swaps": counts.count("swaps"),
            "refused": counts.count("refused"),
            "served_on": follower.served_on,
            "reads": dict(follower.reads),
            "notices": watch[0].status() if watch else None,
        }
        return Response(answers.encode(document), media_type=_JSON, headers={MODEL_HEADER: current.ref})

    def ping(request: Request) -> Response:  # MLflow's answer: 200 and a newline, once a model is loaded
        return Response("\n", media_type=_JSON)

    def version(request: Request) -> Response:
        return Response(__version__, media_type=_JSON)

    def metrics_page(request: Request) -> Response:
        return Response(counts.render(), media_type=metrics.CONTENT_TYPE)

    def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRefused)
        request.scope[_ERROR_KEY] = exc.code
        return _error(exc.status, exc.code, exc.message)

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _CODES.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL")
        request.scope[_ERROR_KEY] = code
        response = _error(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    def registry_error(request: Request, exc: Exception) -> Response:
        request.scope[_ERROR_KEY] = "INTERNAL"
        log.error("%s: %s", type(exc).__name__, exc)
        return _error(500, "INTERNAL", f"{type(exc).__name__} on the server; its log has more")

    predict = method_endpoint("predict")
    routes = [Route(f"/{method}", method_endpoint(method), methods=["POST"]) for method in METHODS]
    routes += [
        Route("/invocations", predict, methods=["POST"]),
        Route("/metadata", metadata),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_page),
        Route("/ping", ping),
        Route("/health", ping),
        Route("/version", version),
    ]
    paths = frozenset(route.path for route in routes)
    application = Starlette(
        routes=routes,
        middleware=[
            Middleware(Counted, metrics=counts, paths=paths),
            Middleware(AllowedHosts, hosts=hosts, command="modelshelf serve"),
        ],
        exception_handlers={
            RequestRefused: refused,
            HTTPException: http_error,
            RegistryError: registry_error,
        },
        lifespan=lifespan,
    )
    application.state.follower = follower
    application.state.metrics = counts
    return application


def describe(application: Starlette) -> dict[str, Any]:
    """What an application serves, for a startup line: ``ref``, ``digest``, ``following``, ``canary``."""
    follower: Follower = application.state.follower
    current = follower.current
    following = None if follower.alias is None else f"{current.mv.name}@{follower.alias}"
    return {
        "ref": current.ref,
        "digest": current.mv.checksum,
        "following": following,
        "canary": current.canary,
        "mapped": current.mapped,
    }


__all__ = ["DEFAULT_POLL", "MAX_BODY_BYTES", "app", "describe"]
