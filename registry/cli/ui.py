"""``modelshelf ui``: serve the web interface of :mod:`registry.ui` on this machine.

Starlette, Jinja2 and uvicorn (``pip install 'modelshelf[ui]'``) are
imported only when the command runs, so the rest of the command line
starts without them.
"""

from __future__ import annotations

import json

import click

from registry.cli.app import cli, json_option, open_registry, wants_json

#: The modules of the ``ui`` extra, by the distribution that installs them: an ImportError naming one of
#: these (or a submodule) means the extra is missing; any other is a bug, and is not hidden.
UI_EXTRA = {
    "starlette": "starlette",
    "jinja2": "jinja2",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "python_multipart": "python-multipart",
}


def _missing_extra(exc: ImportError) -> str | None:
    """The distribution of the ``ui`` extra that ``exc`` says is missing, or ``None`` (then it is re-raised).

    >>> _missing_extra(ImportError("no", name="jinja2.ext")), _missing_extra(ImportError("no"))
    ('jinja2', None)
    """
    return UI_EXTRA.get((exc.name or "").partition(".")[0])


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--allow-writes", is_flag=True, help="Allow moving aliases and changing tags from the browser.")
@click.option(
    "--allowed-host",
    "allowed_host",
    multiple=True,
    metavar="NAME",
    help="Also answer requests addressed to NAME (a host name or address; repeatable).",
)
@json_option
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, allow_writes: bool, allowed_host: tuple[str, ...]) -> None:
    """Serve a web interface to the registry: models, versions, metrics, aliases, audit log.

    Read-only unless --allow-writes; listens on 127.0.0.1 (this machine
    only) unless --host says otherwise. Only requests addressed to this
    machine are answered: the loopback names, its host name and addresses,
    the --host address, and each --allowed-host (so another site cannot
    reach it through a DNS-rebinding name). Writes on every interface
    (--host 0.0.0.0) need --allowed-host naming how browsers reach it.
    With --json, one line of JSON on stdout says where it listens (url,
    host, port, allow_writes, catalog) once it listens; stderr always says
    so in words.

    \b
    Example:
      modelshelf --home models ui --port 8765
    """
    try:
        from registry.ui.server import ANY_INTERFACE, allowed_hosts, serve, url_of
    except ImportError as exc:
        missing = _missing_extra(exc)
        if missing is None:
            raise
        raise click.UsageError(f"the web UI needs {missing}: pip install 'modelshelf[ui]'") from None
    if allow_writes and ctx.obj["read_only"]:
        raise click.UsageError("--allow-writes and --read-only contradict each other: give one of them")
    if allow_writes and host in ANY_INTERFACE and not allowed_host:
        raise click.UsageError(
            f"--allow-writes on every interface (--host {host or repr(host)}) needs --allowed-host NAME, "
            "the name or address browsers use to reach this machine"
        )
    try:
        allowed_hosts(host, allowed_host)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allowed-host") from None
    if not allow_writes:  # the registry itself refuses writes too, not only the web app
        ctx.obj["read_only"] = True
    with open_registry(ctx) as reg:

        def listening(bound: int) -> None:
            if wants_json(ctx):
                where = {
                    "url": url_of(host, bound),
                    "host": host,
                    "port": bound,
                    "allow_writes": allow_writes,
                    "catalog": reg.catalog_location,
                }
                click.echo(json.dumps(where, sort_keys=True))

        try:
            serve(
                reg,
                host=host,
                port=port,
                allow_writes=allow_writes,
                extra_hosts=allowed_host,
                announce=lambda line: click.echo(line, err=True),
                on_listen=listening,
            )
        except SystemExit as exc:  # uvicorn could not listen (the port is taken…): it logged why just above
            if exc.code in (0, None):
                raise
            raise OSError(f"could not listen on {url_of(host, port)}: uvicorn says why above") from None
