"""``modelshelf serve``: an HTTP prediction server for one version, following its alias (:mod:`registry.serve`).

Starlette and uvicorn (``pip install 'modelshelf[serve]'``) are imported
only when the command runs, so the rest of the command line starts
without them.
"""

from __future__ import annotations

import json
from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, wants_json

#: The modules of the ``serve`` extra, by the distribution that installs them.
SERVE_EXTRA = {"starlette": "starlette", "uvicorn": "uvicorn"}


@cli.command()
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Worker processes (they share one memory-mapped copy where the version allows: see --mmap).",
)
@click.option(
    "--mmap/--no-mmap",
    "mmap",
    default=None,
    help="Load versions memory-mapped where they allow it, so workers share their arrays "
    "[default: with --workers above 1].",
)
@click.option(
    "--poll",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.05, 86400),
    metavar="SECONDS",
    help="Seconds between two reads of the alias.",
)
@click.option("--pin", is_flag=True, help="Serve the version the alias points at now, and never move.")
@click.option("--safe", is_flag=True, help="Load with the restricted unpickler (see `modelshelf policy`).")
@click.option(
    "--max-body",
    default=16 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1),
    metavar="BYTES",
    help="Largest request body taken (413 above it).",
)
@click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    metavar="NAME",
    help="Also answer requests addressed to NAME, such as a load balancer's name (repeatable).",
)
@click.option(
    "--read-only",
    "read_only",
    is_flag=True,
    help="Open the registry read-only (as the global --read-only): refusals are then only logged.",
)
@click.option("--no-access-log", is_flag=True, help="Do not log one line per request.")
@json_option
@click.pass_context
def serve(
    ctx: click.Context,
    ref: str,
    host: str,
    port: int,
    workers: int,
    poll: float,
    pin: bool,
    safe: bool,
    max_body: int,
    allowed_host: tuple[str, ...],
    read_only: bool,
    no_access_log: bool,
    mmap: bool | None,
) -> None:
    """Serve predictions of REF over HTTP; with NAME@ALIAS, follow the alias as it moves.

    The version is loaded through the verified path and its canary re-run
    before the server listens. Every --poll seconds the alias is read
    (on PostgreSQL also as soon as a move commits: NOTIFY/LISTEN);
    when it has moved, the new version is loaded, its canary re-run and its
    input signature compared with the served one's, and only then swapped
    in (no request fails). A version that fails any of these is not served:
    the log and /metrics say why, and the audit trail gets a
    serve.swap_refused event (not with --read-only, which opens the
    registry read-only). POST /predict, /predict_proba, /transform and
    MLflow's /invocations; GET /metadata, /healthz, /readyz, /metrics,
    /ping, /health. With --json, one line of JSON on stdout says where it
    listens and what it serves once it listens; stderr always says so in
    words.

    \b
    Example:
      modelshelf --home models serve iris-knn@production --port 8080
    """
    try:
        from registry.hosts import url_of
        from registry.serve.server import serve as run
    except ImportError as exc:
        missing = SERVE_EXTRA.get((exc.name or "").partition(".")[0])
        if missing is None:
            raise
        raise click.UsageError(f"the prediction server needs {missing}: pip install 'modelshelf[serve]'") from None
    if read_only:
        ctx.obj["read_only"] = True
    location = {key: ctx.obj[key] for key in ("home", "catalog", "store", "read_only")}
    with open_registry(ctx) as reg:

        def listening(bound: int, served: dict[str, Any]) -> None:
            if wants_json(ctx):
                where = {
                    "url": url_of(host, bound),
                    "host": host,
                    "port": bound,
                    "ref": served["ref"],
                    "digest": served["digest"],
                    "following": served["following"],
                    "canary": served["canary"],
                    "mapped": served["mapped"],
                    "workers": workers,
                    "catalog": reg.catalog_location,
                }
                click.echo(json.dumps(where, sort_keys=True))

        try:
            run(
                reg,
                ref,
                host=host,
                port=port,
                workers=workers,
                poll=poll,
                pin=pin,
                safe=safe,
                max_body=max_body,
                extra_hosts=allowed_host,
                access_log=not no_access_log,
                location=location,
                announce=lambda line: click.echo(line, err=True),
                on_listen=listening,
                mmap=mmap,
            )
        except SystemExit as exc:  # uvicorn could not listen (the port is taken…): it logged why just above
            if exc.code in (0, None):
                raise
            raise OSError(f"could not listen on {url_of(host, port)}: uvicorn says why above") from None
