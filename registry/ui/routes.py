"""The web application: explicit routes, plain endpoint functions, one registry handed in.

``app(registry)`` builds a Starlette application that reads ``registry``
through its public API; nothing is global, so a test can build as many
as it likes. Pages are rendered on the server (Jinja2, autoescape on for
every template); htmx, vendored under ``static/``, only swaps in the
table that a search box or a pager asks for, and every page also works
without it. Every response carries a Content-Security-Policy that allows
scripts and styles from this server only, so even a string that escaped
escaping could not run.

Writes (moving an alias, setting or removing a tag) exist only with
``allow_writes=True``; they go through :meth:`Registry.set_alias` and
:meth:`Registry.set_tags`, so they are checked and recorded in the audit
trail as any other change, and each needs the CSRF token of
:mod:`registry.ui.csrf`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry import __version__
from registry.domain import EVENT_ACTIONS
from registry.errors import InvalidArgument, InvalidInput, InvalidQuery, NotFound, RegistryError
from registry.facade import Registry
from registry.hosts import LOOPBACK_HOSTS, AllowedHosts
from registry.humanize import human_size
from registry.limits import MAX_INT64, MAX_VERSION
from registry.ui import svg, views
from registry.ui.csrf import COOKIE, FIELD, CsrfGuard, same_origin
from registry.validation import validate_moment

HERE = Path(__file__).parent

#: Scripts, styles and images from this server only; no inline script, no inline style, no framing.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template, whatever its file name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["FOLD_AT"] = views.FOLD_AT
    environment.globals["version_of_modelshelf"] = __version__
    environment.filters["when"] = _when
    environment.filters["size"] = human_size
    environment.filters["number"] = _number
    environment.filters["show"] = views.show_value
    return Jinja2Templates(env=environment)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def _whole(raw: str, high: int) -> int | None:
    """``raw`` as a number from 0 to ``high``, or ``None``: ASCII digits only.

    ``str.isdigit`` also accepts digits ``int`` refuses ("²"), and a number
    past the database's 64-bit integers overflows its driver: either would
    be a 500 instead of a message.

    >>> _whole("42", 100), _whole("²", 100), _whole("101", 100), _whole("-1", 100)
    (42, None, None, None)
    """
    if not raw.isascii() or not raw.isdecimal() or len(raw) > len(str(high)):
        return None
    number = int(raw)
    return number if number <= high else None


def _int(request: Request, key: str, default: int, low: int = 1, high: int = MAX_INT64) -> int:
    """A whole-number query parameter; a bad one is a 400 naming it, not a silent default."""
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    number = _whole(raw, high)
    if number is None or number < low:
        raise InvalidInput(f"query parameter {key}={raw!r} must be a whole number from {low} to {high}")
    return number


def _partial(request: Request) -> bool:
    """Whether htmx asked for the table alone (not when it restores a page from history: then the whole page)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def _version(request: Request) -> int:
    raw = request.path_params["version"]
    number = _whole(raw, MAX_VERSION)
    if number is None or number < 1:  # no version has that number: not found, as any other missing page
        raise HTTPException(404, f"{raw!r} is not a version number (1 to {MAX_VERSION})")
    return number


def app(
    registry: Registry,
    *,
    allow_writes: bool = False,
    allowed_hosts: Sequence[str] | None = None,
) -> Starlette:
    """The web UI over ``registry``: read-only unless ``allow_writes``.

    >>> from starlette.testclient import TestClient                      # doctest: +SKIP
    >>> client = TestClient(app(Registry("models")), base_url="http://127.0.0.1")  # doctest: +SKIP
    >>> client.get("/").status_code                                       # doctest: +SKIP
    200

    ``allowed_hosts`` lists the ``Host`` headers answered (default: the
    loopback names), so a page on another site that rebinds its own DNS
    name to 127.0.0.1 cannot read the registry through the browser. A
    ``*`` is refused (``InvalidArgument``): it would let any name through,
    the rebinding page's included.
    """
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    if any("*" in host for host in hosts):
        raise InvalidArgument(f"allowed_hosts must name hosts, without '*' (it would answer any site): {hosts!r}")
    templates = _templates()
    guard = CsrfGuard()

    def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        cookie = request.cookies.get(COOKIE)
        token = cookie if cookie is not None and guard.signed(cookie) else guard.new_token()
        context = {
            "allow_writes": allow_writes,
            "csrf_field": FIELD,
            "csrf_token": token,
            "request_path": request.url.path,
            **context,
        }
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
        response.headers["vary"] = "HX-Request"
        if allow_writes and cookie != token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return response

    def models_page(request: Request) -> Response:
        where = request.query_params.get("q", "").strip()
        error = None
        rows: list[views.ModelRow] = []
        try:
            rows = views.models(registry, where or None)
        except InvalidQuery as exc:
            error = views.query_error(exc)
        # htmx swaps in only 2xx answers: a partial with the error marked inline comes as 200
        template, status = ("models_table.html", 200) if _partial(request) else ("models.html", 400 if error else 200)
        return render(request, template, {"rows": rows, "q": where, "error": error}, status)

    def versions_page(request: Request) -> Response:
        name = request.path_params["name"]
        sort = request.query_params.get("sort", "version")
        descending = request.query_params.get("dir", "desc" if sort == "version" else "asc") == "desc"
        where = request.query_params.get("q", "").strip()
        error = None
        per = _int(request, "per", views.PAGE_SIZES[0])
        if per not in views.PAGE_SIZES:
            raise InvalidInput(f"query parameter per={per} must be one of {', '.join(map(str, views.PAGE_SIZES))}")
        number = _int(request, "page", 1, high=MAX_INT64 // per)  # the offset it asks for fits the database
        after = request.query_params.get("after") or None  # a cursor: refused with InvalidArgument (400) if forged
        try:
            table = views.versions_table(
                registry,
                name,
                number=number,
                per=per,
                sort=sort,
                descending=descending,
                metrics=[m for m in request.query_params.getlist("m") if m],
                where=where or None,
                after=after,
                back=[cursor for cursor in request.query_params.getlist("back") if cursor],
            )
        except InvalidQuery as exc:
            error = views.query_error(exc)
            table = views.versions_table(
                registry,
                name,
                number=1,
                per=views.PAGE_SIZES[0],
                sort="version",
                descending=True,
                metrics=[],
                where=None,
            )

        def link(**changes: Any) -> str:
            query: dict[str, Any] = {
                "page": table.number,
                "per": table.per,
                "sort": table.sort,
                "dir": "desc" if table.descending else "asc",
                "m": table.metrics,
                "q": table.where or "",
                **changes,
            }
            return f"/models/{name}?" + urlencode(query, doseq=True)

        partial = _partial(request)
        template, status = ("versions_table.html", 200) if partial else ("versions.html", 400 if error else 200)
        links = views.pager_links(table)
        pager = {kind: link(**links[kind]) if kind in links else None for kind in ("first", "previous", "next", "last")}
        context = {"name": name, "table": table, "link": link, "pager": pager, "error": error, "q": where}
        return render(request, template, context, status)

    checks: dict[str, views.Check] = {}  # the last artifact check of each version, made by this process

    def version_page(request: Request) -> Response:
        name = request.path_params["name"]
        detail = views.version_detail(registry, name, _version(request))
        graph = svg.lineage_graph(detail.chain, link={ref: _ref_url(ref) for ref in detail.chain})
        context = {"name": name, "d": detail, "mv": detail.mv, "graph": graph, "check": checks.get(detail.mv.ref)}
        return render(request, "version.html", context)

    def verify_version(request: Request) -> Response:
        """Re-hash one artifact (a read: nothing changes in the registry), then show the version again."""
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            raise HTTPException(403, "refused: the request came from another site (its Origin is not this server)")
        name = request.path_params["name"]
        mv = registry.get(name, version=_version(request))
        checks[mv.ref] = views.check_artifact(registry, mv.ref)
        return RedirectResponse(f"/models/{name}/versions/{mv.version}#trust", status_code=303)

    def metrics_page(request: Request) -> Response:
        name = request.path_params["name"]
        known = registry.metric_names(name)  # of every live version: the newest may have none yet
        chosen = [m for m in request.query_params.getlist("m") if m] or known
        marks = views.alias_marks(registry, name, registry.alias_names(name))
        series = registry.metric_series(name, chosen)
        panels = [svg.metric_panel(key, series[key], marks=marks, link=f"/models/{name}/versions/") for key in chosen]
        available = sorted(set(known) | set(chosen))
        context = {"name": name, "panels": panels, "chosen": chosen, "available": available, "marks": marks}
        return render(request, "metrics.html", context)

    def compare_page(request: Request) -> Response:
        refs = [ref for ref in request.query_params.getlist("ref") if ref]
        if len(refs) < 2:
            raise InvalidInput("compare needs at least two versions: /compare?ref=NAME:1&ref=NAME:2")
        versions = [registry.get(ref) for ref in refs]
        sections = views.compare(versions)
        only_changed = request.query_params.get("changed") == "1"
        if only_changed:
            sections = {title: [row for row in rows if row.changed] for title, rows in sections.items()}
        query = urlencode([("ref", ref) for ref in refs] + ([] if only_changed else [("changed", "1")]))
        context = {"versions": versions, "sections": sections, "only_changed": only_changed, "toggle": query}
        return render(request, "compare.html", context)

    def aliases_page(request: Request) -> Response:
        name = request.path_params["name"]
        raw = request.query_params.get("as_of", "").strip()
        as_of = validate_moment(raw, "as_of") if raw else None
        tl = views.timeline(registry, name, as_of)
        return render(request, "aliases.html", {"name": name, "tl": tl, "as_of_text": raw})

    def audit_page(request: Request) -> Response:
        model = request.query_params.get("model", "").strip()
        alias = request.query_params.get("alias", "").strip()
        action = request.query_params.get("action", "").strip()
        if action and action not in EVENT_ACTIONS:
            raise InvalidInput(f"action {action!r} is not one of {', '.join(EVENT_ACTIONS)}")
        events = views.audit(registry, model or None, alias or None, action or None)
        context = {
            "events": events,
            "model": model,
            "alias": alias,
            "action": action,
            "actions": EVENT_ACTIONS,
            "models": registry.models(),
            "limit": views.AUDIT_LIMIT,
        }
        return render(request, "audit.html", context)

    async def checked_form(request: Request) -> dict[str, str]:
        """The form of a write, after the write, origin and CSRF checks (each a 403 naming what to do)."""
        if not allow_writes:
            raise HTTPException(403, "this UI is read-only: start it with `modelshelf ui --allow-writes` to change")
        if not same_origin(request.headers.get("origin"), request.headers.get("host")):
            raise HTTPException(403, "refused: the request came from another site (its Origin is not this server)")
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        if not guard.valid(request.cookies.get(COOKIE), fields.get(FIELD)):
            raise HTTPException(403, "refused: missing or stale form token; reload the page and submit again")
        return fields

    async def move_alias(request: Request) -> Response:
        name = request.path_params["name"]
        form = await checked_form(request)
        raw = form.get("version", "")
        version = _whole(raw, MAX_VERSION)
        if version is None or version < 1:
            raise InvalidInput(f"form field version={raw!r} must be a version number from 1 to {MAX_VERSION}")
        # In a worker thread: a protected alias may run a canary gate, which loads the model.
        await run_in_threadpool(registry.set_alias, name, form.get("alias", ""), version)
        return RedirectResponse(f"/models/{name}/aliases", status_code=303)

    async def change_tags(request: Request) -> Response:
        name = request.path_params["name"]
        version = _version(request)
        form = await checked_form(request)
        key = form.get("key", "")
        if form.get("action") == "remove":
            await run_in_threadpool(registry.set_tags, name, version, remove=[key])
        else:
            await run_in_threadpool(registry.set_tags, name, version, {key: form.get("value", "")})
        return RedirectResponse(f"/models/{name}/versions/{version}", status_code=303)

    def not_found(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 404, "message": str(exc)}, 404)

    def bad_input(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 400, "message": str(exc)}, 400)

    def refused(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 409, "message": str(exc)}, 409)

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return render(request, "error.html", {"status": exc.status_code, "message": exc.detail}, exc.status_code)

    routes = [
        Route("/", models_page),
        Route("/models/{name}", versions_page),
        Route("/models/{name}/versions/{version}", version_page),
        Route("/models/{name}/versions/{version}/tags", change_tags, methods=["POST"]),
        Route("/models/{name}/versions/{version}/verify", verify_version, methods=["POST"]),
        Route("/models/{name}/metrics", metrics_page),
        Route("/models/{name}/aliases", aliases_page),
        Route("/models/{name}/aliases", move_alias, methods=["POST"]),
        Route("/compare", compare_page),
        Route("/audit", audit_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(AllowedHosts, hosts=hosts)],
        exception_handlers={
            NotFound: not_found,
            InvalidInput: bad_input,
            RegistryError: refused,
            HTTPException: http_error,
        },
    )


def _ref_url(ref: str) -> str:
    """The version page of a pinned reference ``name:3``."""
    name, _, version = ref.rpartition(":")
    return f"/models/{name}/versions/{version}"
