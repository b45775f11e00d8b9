"""The ``modelshelf`` command line (click for parsing, rich for output).

This is the only module that imports click or rich. Errors from the library
become one line on stderr saying what went wrong and what to do, and an exit
code: 1 not found or failed, 2 usage error, 3 integrity failure. ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

from registry.errors import (
    AliasNotFound,
    CorruptedArtifact,
    InvalidName,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)

EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_INTEGRITY = 3

#: Exception type → exit code; the first matching entry wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (CorruptedArtifact, EXIT_INTEGRITY),
    (ModelNotFound, EXIT_NOT_FOUND),
    (VersionNotFound, EXIT_NOT_FOUND),
    (AliasNotFound, EXIT_NOT_FOUND),
    (InvalidName, EXIT_USAGE),
    (ValueError, EXIT_USAGE),
    (RegistryError, EXIT_NOT_FOUND),
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("modelshelf")
    except PackageNotFoundError:
        return "unknown"


def _fail(exc: BaseException) -> NoReturn:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            click.echo(f"error: {exc}", err=True)
            sys.exit(code)
    raise exc


class _Group(click.Group):
    """A click group that turns library errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (RegistryError, ValueError) as exc:
            if ctx.find_root().params.get("debug"):
                raise
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home", envvar="MODELSHELF_HOME", help="Registry directory [env MODELSHELF_HOME; default ./.modelshelf]."
)
@click.option("--catalog", envvar="MODELSHELF_CATALOG", help="Catalog database URL [env MODELSHELF_CATALOG].")
@click.option("--store", envvar="MODELSHELF_STORE", help="Blob store directory [env MODELSHELF_STORE].")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(_version(), prog_name="modelshelf")
@click.pass_context
def cli(ctx: click.Context, home: str | None, catalog: str | None, store: str | None, debug: bool) -> None:
    """modelshelf: a versioned model registry.

    \b
    Examples:
      modelshelf demo                       # train, register and load iris models
      modelshelf --home models db current   # the catalog's schema revision
      modelshelf db upgrade --catalog sqlite:///models/catalog.db
    """
    ctx.obj = {"home": home, "catalog": catalog, "store": store}


@cli.command()
@click.option(
    "--dir",
    "directory",
    default=None,
    help="Registry directory for the demo [default: --home, else ./modelshelf-demo].",
)
@click.pass_context
def demo(ctx: click.Context, directory: str | None) -> None:
    """Train iris models, register, promote and load them, and print the accuracy history.

    \b
    Example:
      modelshelf demo --dir /tmp/iris-registry
    """
    from rich.console import Console
    from rich.table import Table

    from registry.demo import run_demo

    home = directory or ctx.obj["home"] or "modelshelf-demo"
    console = Console(highlight=False)
    result = run_demo(home, say=console.print)

    table = Table(title="accuracy across versions of iris-knn")
    for column in ("version", "step", "accuracy", "aliases"):
        table.add_column(column, justify="right" if column != "aliases" else "left")
    aliases = {mv.version: ", ".join(mv.aliases) for mv in ([result.production] if result.production else [])}
    for point in result.history:
        table.add_row(
            str(point.version),
            "-" if point.step is None else str(point.step),
            f"{point.value:.3f}",
            aliases.get(point.version, ""),
        )
    console.print(table)
    console.print(f"Explore it: modelshelf --home {home} db current")


def _open(ctx: click.Context) -> Any:
    from registry.facade import Registry

    return Registry(ctx.obj["home"], catalog=ctx.obj["catalog"], store=ctx.obj["store"])


@cli.command()
@click.option("--quick", is_flag=True, help="Check presence and sizes only; do not re-hash the blobs.")
@click.pass_context
def verify(ctx: click.Context, quick: bool) -> None:
    """Check every version's artifact and the catalog; exit 3 if anything is damaged.

    \b
    Example:
      modelshelf --home models verify --quick
    """
    with _open(ctx) as reg:
        report = reg.verify(deep=not quick)
    for problem in report.problems:
        where = f" {problem.ref}" if problem.ref else ""
        click.echo(f"{problem.kind}{where}: {problem.detail}")
    mode = "quick" if quick else "deep"
    if report.ok:
        waste = f", {len(report.problems)} items of waste (run `modelshelf gc`)" if report.problems else ""
        click.echo(f"ok: {report.versions_checked} versions intact ({mode} check){waste}")
    else:
        fatal = sum(problem.fatal for problem in report.problems)
        click.echo(f"NOT OK: {fatal} problems in {report.versions_checked} versions ({mode} check)", err=True)
        sys.exit(EXIT_INTEGRITY)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option(
    "--min-age",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Leave files younger than this many seconds alone.",
)
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, min_age: float) -> None:
    """Remove artifacts no version uses any more, and stale temporary files.

    \b
    Example:
      modelshelf --home models gc --dry-run
    """
    with _open(ctx) as reg:
        report = reg.gc(dry_run=dry_run, min_age=min_age)
    for item in report.removed:
        click.echo(item)
    verb = "would free" if dry_run else "freed"
    click.echo(f"{len(report.removed)} files, {verb} {report.freed_bytes} bytes")


@cli.group()
def db() -> None:
    """Create, upgrade and inspect the catalog's schema.

    \b
    Example:
      modelshelf --home models db upgrade
    """


@db.command("upgrade")
@click.option("--catalog", "catalog_option", default=None, help="Catalog database URL (overrides the global option).")
@click.pass_context
def db_upgrade(ctx: click.Context, catalog_option: str | None) -> None:
    """Create the catalog or upgrade its schema to this version of modelshelf.

    \b
    Example:
      modelshelf db upgrade --catalog postgresql+psycopg://me@dbhost/models
    """
    from registry.facade import upgrade_catalog

    before, after = upgrade_catalog(ctx.obj["home"], catalog=catalog_option or ctx.obj["catalog"])
    if before == after:
        click.echo(f"catalog already at revision {after}")
    else:
        click.echo(f"catalog upgraded from {before or 'empty'} to {after}")


@db.command("current")
@click.option("--catalog", "catalog_option", default=None, help="Catalog database URL (overrides the global option).")
@click.pass_context
def db_current(ctx: click.Context, catalog_option: str | None) -> None:
    """Print the catalog's schema revision and whether it is up to date.

    \b
    Example:
      modelshelf --home models db current
    """
    from registry.facade import catalog_revisions

    current, head = catalog_revisions(ctx.obj["home"], catalog=catalog_option or ctx.obj["catalog"])
    if current is None:
        click.echo(f"no catalog yet (this modelshelf creates revision {head}; run `modelshelf db upgrade`)")
    elif current == head:
        click.echo(f"{current} (head, up to date)")
    else:
        click.echo(f"{current} (this modelshelf expects {head}: run `modelshelf db upgrade`)")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="modelshelf")


if __name__ == "__main__":
    main()
