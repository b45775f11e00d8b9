"""``modelshelf ui``: serve the web interface of :mod:`registry.ui` on this machine.

Starlette, Jinja2 and uvicorn (``pip install 'modelshelf[ui]'``) are
imported only when the command runs, so the rest of the command line
starts without them.
"""

from __future__ import annotations

import json

import click

from registry.cli.app import cli, json_option, open_registry, wants_json


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--allow-writes", is_flag=True, help="Allow moving aliases and changing tags from the browser.")
@json_option
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, allow_writes: bool) -> None:
    """Serve a web interface to the registry: models, versions, metrics, aliases, audit log.

    Read-only unless --allow-writes; listens on 127.0.0.1 (this machine
    only) unless --host says otherwise. With --json, one line of JSON on
    stdout says where it listens (url, host, port, allow_writes, catalog)
    once it starts; stderr always says so in words.

    \b
    Example:
      modelshelf --home models ui --port 8765
    """
    try:
        from registry.ui.server import serve, url_of
    except ImportError as exc:
        raise click.UsageError(f"the web UI needs {exc.name}: pip install 'modelshelf[ui]'") from None
    if allow_writes and ctx.obj["read_only"]:
        raise click.UsageError("--allow-writes and --read-only contradict each other: give one of them")
    if not allow_writes:  # the registry itself refuses writes too, not only the web app
        ctx.obj["read_only"] = True
    with open_registry(ctx) as reg:
        if wants_json(ctx):
            where = {
                "url": url_of(host, port),
                "host": host,
                "port": port,
                "allow_writes": allow_writes,
                "catalog": reg.catalog_location,
            }
            click.echo(json.dumps(where, sort_keys=True))
        serve(reg, host=host, port=port, allow_writes=allow_writes, announce=lambda line: click.echo(line, err=True))
