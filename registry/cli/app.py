"""The ``modelshelf`` group: global options, error handling, and helpers the commands share.

Errors from the library become one line on stderr saying what went wrong
and what to do, and an exit code chosen by the error's family
(:data:`EXIT_CODES`): 0 success, 1 not found (``NotFound``, or another
failure), 2 usage error (``InvalidInput``), 3 integrity or trust failure
(``TrustError``: a damaged artifact, an unsafe or untrusted one; and a
bundle refused by ``import``: not a bundle, damaged, malformed or
unsigned), 4 refused by a promotion gate or a protected alias
(``PromotionRefused``), 130 interrupted (Ctrl-C). Every error is one line, even a
driver's message of several; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from registry import __version__
from registry.errors import (
    InvalidBundle,
    InvalidInput,
    NotFound,
    PromotionRefused,
    RegistryError,
    RegistryNotFound,
    SerializationError,
    TrustError,
)

if TYPE_CHECKING:  # the facade is imported when a command runs, not when the CLI starts
    from registry.facade import Registry

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3
#: A promotion gate or a protected alias said no (``PromotionRefused``): nothing moved.
EXIT_REFUSED = 4
#: Ctrl-C (SIGINT), as shells report a command killed by it: 128 + 2.
EXIT_INTERRUPTED = 130

#: Error family → exit code, most specific first; the first matching entry wins.
#: A refused bundle is invalid input to ``import`` but reported as a trust
#: failure, so it comes before its family. ``ValueError`` stays for the ones
#: a third-party library raises inside a command (a model that does not load); ``OSError`` for a
#: path no library call turned into a ``StoreError`` (a failure: 1, on one line like the rest).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (InvalidBundle, EXIT_INTEGRITY),
    (TrustError, EXIT_INTEGRITY),
    (NotFound, EXIT_NOT_FOUND),
    (InvalidInput, EXIT_USAGE),
    (SerializationError, EXIT_USAGE),
    (ValueError, EXIT_USAGE),
    (PromotionRefused, EXIT_REFUSED),  # a PermissionError, so before OSError
    (OSError, EXIT_NOT_FOUND),
    (RegistryError, EXIT_NOT_FOUND),
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` as one line on stderr and exit with its family's code; re-raise what has no code."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            click.echo(f"error: {one_line(_message(exc))}", err=True)
            sys.exit(code)
    raise exc


def one_line(text: str) -> str:
    r"""``text`` on one line: a driver's message (libpq's, for one) may span several, indented.

    >>> one_line("connection failed\n\tIs the server running?")
    'connection failed Is the server running?'
    """
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _message(exc: BaseException) -> str:
    """What to print for ``exc``: an operating-system error (a path that cannot be used) by its path and cause."""
    if isinstance(exc, OSError) and not isinstance(exc, RegistryError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        return f"{where}{exc.strerror}"
    return str(exc)


class _Group(click.Group):
    """A click group that turns library errors into one line and an exit code, and Ctrl-C into exit 130.

    An ``OSError`` that reaches here (a path no library call turned into a
    :class:`~registry.errors.StoreError`) is one line too: a traceback is
    what ``--debug`` is for. A reader that closed the pipe early ends the
    command quietly.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `modelshelf versions m | head -1`: the reader has all it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exiting flushes nowhere
            sys.exit(1)  # as Python's signal documentation suggests; no message: nobody is reading
        except (RegistryError, ValueError, OSError) as exc:
            if ctx.find_root().params.get("debug"):
                raise
            fail(exc)
        except KeyboardInterrupt:
            if ctx.find_root().params.get("debug"):
                raise
            click.echo("error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.Abort as exc:  # a prompt turns Ctrl-C into Abort ("Aborted!", exit 1): it is still Ctrl-C
            if not isinstance(exc.__context__, KeyboardInterrupt):
                raise
            click.echo("error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", envvar="MODELSHELF_HOME", help="Registry directory [env MODELSHELF_HOME; default ./.modelshelf]."
)
@click.option("--catalog", envvar="MODELSHELF_CATALOG", help="Catalog database URL [env MODELSHELF_CATALOG].")
@click.option("--store", envvar="MODELSHELF_STORE", help="Blob store directory [env MODELSHELF_STORE].")
@click.option(
    "--read-only",
    is_flag=True,
    envvar="MODELSHELF_READ_ONLY",
    help="Open the registry read-only (a read-only mount): reads work, writes are refused [env MODELSHELF_READ_ONLY].",
)
@click.option("--json", "as_json", is_flag=True, help="Print data as JSON (also accepted after each command).")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="modelshelf")
@click.pass_context
def cli(
    ctx: click.Context,
    home: str | None,
    catalog: str | None,
    store: str | None,
    read_only: bool,
    as_json: bool,
    debug: bool,
) -> None:
    """modelshelf: a versioned model registry.

    \b
    Examples:
      modelshelf demo                          # train, register and load iris models
      modelshelf --home models versions iris-knn
      modelshelf show iris-knn@production --json
      modelshelf diff iris-knn:2 iris-knn:3
    """
    ctx.obj = {"home": home, "catalog": catalog, "store": store, "json": as_json, "read_only": read_only}


def open_registry(ctx: click.Context, *, create: bool = False) -> Registry:
    """The registry the global options name; only a command that adds versions (``create``) may make it.

    Every other command, reads and changes of what exists alike, opens it
    with ``create=False``: a mistyped ``--home`` then says "no registry at
    PATH" instead of leaving an empty registry there. When one is created,
    stderr says where, as ``git init`` does.
    """
    from registry.cli.output import progress_bars
    from registry.facade import Registry

    options: dict[str, Any] = {
        "catalog": ctx.obj["catalog"],
        "store": ctx.obj["store"],
        "read_only": ctx.obj["read_only"],
    }
    try:
        return Registry(ctx.obj["home"], create=False, progress=progress_bars(), **options)
    except RegistryNotFound:
        if not create or ctx.obj["read_only"]:
            raise
    reg = Registry(ctx.obj["home"], create=True, progress=progress_bars(), **options)
    click.echo(f"created a new registry: catalog {reg.catalog_location}, store {reg.store_location}", err=True)
    return reg


def json_option(command: F) -> F:
    """Add ``--json`` to a command; the global ``--json`` works too."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.find_object(dict)["json"] = True  # type: ignore[index]
        return value

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=remember, help="Print the data as JSON."
    )(command)


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.obj.get("json"))


def parse_pairs(
    pairs: tuple[str, ...], what: str, convert: Callable[[str, str], Any] = lambda k, v: v
) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` arguments into a dict, or a usage error naming the bad one."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=what)
        result[key] = convert(key, value)
    return result


def to_float(key: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"metric {key!r}: {value!r} is not a number", param_hint="--metric") from None


def to_json_value(_key: str, value: str) -> Any:
    """A param value: JSON when it parses (3, 0.5, true, [1,2]), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value
