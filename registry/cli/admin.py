"""Administration commands: verify, repair, gc, db upgrade/current, demo."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from registry.cli.app import EXIT_INTEGRITY, cli, json_option, open_registry, wants_json
from registry.cli.output import console, emit_json, emit_table, plural, point_json, version_json
from registry.maintenance import parse_sample


def _sample(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_sample(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("--sample takes "), param_hint="--sample") from None


@cli.command()
@click.option("--quick", is_flag=True, help="Check presence and sizes only; do not re-hash the blobs.")
@click.option(
    "--sample",
    metavar="I/N",
    callback=_sample,
    help="Re-hash only the I-th of N fixed slices of the blobs (run I=1..N on N nights to scrub everything).",
)
@click.option(
    "--max-duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop re-hashing after this many seconds; the report says what was not reached.",
)
@json_option
@click.pass_context
def verify(ctx: click.Context, quick: bool, sample: tuple[int, int] | None, max_duration: float | None) -> None:
    """Check every version's artifact and the catalog; exit 3 if anything is damaged.

    \b
    Examples:
      modelshelf --home models verify --quick
      modelshelf --home models verify --sample 3/7 --max-duration 600
    """
    if sample is not None and quick:
        raise click.UsageError("--sample picks the blobs to re-hash; it cannot be combined with --quick")
    with open_registry(ctx) as reg:
        report = reg.verify(deep=not quick, sample=sample, max_duration=max_duration)
    slice_text = f"{sample[0]}/{sample[1]}" if sample else None
    if wants_json(ctx):
        emit_json(
            {
                "ok": report.ok,
                "deep": report.deep,
                "versions_checked": report.versions_checked,
                "sample": slice_text,
                "hashed": len(report.hashed),
                "stopped_early": report.stopped_early,
                "not_reached": report.not_reached,
                "problems": [{"kind": p.kind, "ref": p.ref, "detail": p.detail} for p in report.problems],
            }
        )
    else:
        for problem in report.problems:
            where = f" {problem.ref}" if problem.ref else ""
            click.echo(f"{problem.kind}{where}: {problem.detail}")
        mode = "quick check" if quick else "deep check"
        if slice_text:
            mode = f"deep check of slice {slice_text}: {plural(len(report.hashed), 'blob')} re-hashed"
        if report.stopped_early:
            reached = ", ".join(report.not_reached)
            click.echo(
                f"stopped early after --max-duration {max_duration:g} s: {plural(len(report.hashed), 'blob')} "
                f"re-hashed, {plural(len(report.not_reached), 'version')} not reached (sizes checked only): {reached}"
            )
        if report.ok:
            waste = (
                f", {plural(len(report.problems), 'item')} of waste (run `modelshelf gc`)" if report.problems else ""
            )
            click.echo(f"ok: {plural(report.versions_checked, 'version')} intact ({mode}){waste}")
        else:
            fatal = sum(problem.fatal for problem in report.problems)
            click.echo(
                f"NOT OK: {plural(fatal, 'problem')} in {plural(report.versions_checked, 'version')} ({mode})",
                err=True,
            )
    if not report.ok:
        sys.exit(EXIT_INTEGRITY)


@cli.command()
@click.option("--dry-run", is_flag=True, help="List what would be quarantined, marked and healed; change nothing.")
@click.option(
    "--from",
    "source",
    metavar="OTHER_STORE",
    default=None,
    help="Another store (a directory or URL) to copy damaged or missing blobs back from, verified by hash.",
)
@json_option
@click.pass_context
def repair(ctx: click.Context, dry_run: bool, source: str | None) -> None:
    """Quarantine damaged blobs, mark their versions damaged, heal what comes back; exit 3 if any stay damaged.

    Nothing is deleted: damaged bytes move into quarantine/ under the store.
    A damaged version heals when the same bytes return: re-register them,
    import a bundle holding them, or give --from a store that has them.

    \b
    Examples:
      modelshelf --home models repair --dry-run
      modelshelf --home models repair --from s3://backups/models
    """
    with open_registry(ctx) as reg:
        report = reg.repair(dry_run=dry_run, source=source)
    if wants_json(ctx):
        emit_json(
            {
                "ok": report.ok,
                "dry_run": report.dry_run,
                "quarantined": [{"blob": blob, "to": where} for blob, where in report.quarantined],
                "marked": [{"ref": ref, "detail": detail} for ref, detail in report.marked],
                "healed": [{"ref": ref, "detail": detail} for ref, detail in report.healed],
                "unhealed": [{"ref": ref, "detail": detail} for ref, detail in report.unhealed],
            }
        )
    else:
        for blob, where in report.quarantined:
            click.echo(f"quarantined {blob} -> {where}")
        for label, items in (("marked damaged", report.marked), ("healed", report.healed)):
            for ref, detail in items:
                click.echo(f"{label} {ref}: {detail}")
        for ref, detail in report.unhealed:
            click.echo(f"still damaged {ref}: {detail}", err=True)
        prefix = "dry run: " if dry_run else ""
        click.echo(
            f"{prefix}{plural(len(report.quarantined), 'blob')} quarantined, "
            f"{plural(len(report.marked), 'version')} marked, {len(report.healed)} healed, "
            f"{len(report.unhealed)} still damaged"
        )
    if not report.ok:
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
@json_option
@click.pass_context
def gc(ctx: click.Context, dry_run: bool, min_age: float) -> None:
    """Remove artifacts no version uses any more, and stale temporary files.

    \b
    Example:
      modelshelf --home models gc --dry-run
    """
    with open_registry(ctx) as reg:
        report = reg.gc(dry_run=dry_run, min_age=min_age)
    if wants_json(ctx):
        kept = [{"item": item, "why": why} for item, why in report.kept]
        emit_json(
            {"removed": report.removed, "freed_bytes": report.freed_bytes, "dry_run": report.dry_run, "kept": kept}
        )
        return
    for item in report.removed:
        click.echo(item)
    for item, why in report.kept:
        click.echo(f"kept {item}: {why}")
    verb = "would free" if dry_run else "freed"
    click.echo(f"{plural(len(report.removed), 'file')}, {verb} {plural(report.freed_bytes, 'byte')}")


@cli.command()
@click.option(
    "--dir",
    "directory",
    default=None,
    help="Registry directory for the demo [default: --home, else ./modelshelf-demo].",
)
@json_option
@click.pass_context
def demo(ctx: click.Context, directory: str | None) -> None:
    """Train iris models, register, promote and load them, and print the accuracy history.

    \b
    Example:
      modelshelf demo --dir /tmp/iris-registry
    """
    from registry.demo import run_demo

    home = directory or ctx.obj["home"] or "modelshelf-demo"
    if wants_json(ctx):  # the story goes to stderr, the data to stdout
        result = run_demo(home, say=Console(stderr=True, highlight=False).print)
        emit_json(
            {
                "home": str(home),
                "registered": [version_json(mv) for mv in result.registered],
                "production": None if result.production is None else result.production.ref,
                "checks": result.checks,
                "history": [point_json(point) for point in result.history],
            }
        )
        return
    out = console()
    result = run_demo(home, say=out.print)
    aliases = {mv.version: ", ".join(mv.aliases) for mv in ([result.production] if result.production else [])}
    rows = [
        (point.version, "-" if point.step is None else point.step, f"{point.value:.3f}", aliases.get(point.version, ""))
        for point in result.history
    ]
    if not out.is_terminal:
        out.print("accuracy across versions of iris-knn:")
    emit_table("accuracy across versions of iris-knn", ("version", "step", "accuracy", "aliases"), rows)
    out.print(f"Explore it: modelshelf --home {home} versions iris-knn")


@cli.group()
def db() -> None:
    """Create, upgrade and inspect the catalog's schema.

    \b
    Example:
      modelshelf --home models db upgrade
    """


@db.command("upgrade")
@click.option("--catalog", "catalog_option", default=None, help="Catalog database URL (overrides the global option).")
@json_option
@click.pass_context
def db_upgrade(ctx: click.Context, catalog_option: str | None) -> None:
    """Create the catalog or upgrade its schema to this version of modelshelf.

    \b
    Example:
      modelshelf db upgrade --catalog postgresql+psycopg://me@dbhost/models
    """
    from registry.errors import ReadOnlyRegistry
    from registry.facade import upgrade_catalog

    if ctx.obj["read_only"]:
        raise ReadOnlyRegistry(
            "db upgrade changes the catalog, and --read-only (or MODELSHELF_READ_ONLY) was given: nothing was "
            "changed; run it without --read-only",
            operation="db upgrade",
        )
    before, after = upgrade_catalog(ctx.obj["home"], catalog=catalog_option or ctx.obj["catalog"])
    if wants_json(ctx):
        emit_json({"before": before, "revision": after, "upgraded": before != after})
    elif before == after:
        click.echo(f"catalog already at revision {after}")
    else:
        click.echo(f"catalog upgraded from {before or 'empty'} to {after}")


@db.command("current")
@click.option("--catalog", "catalog_option", default=None, help="Catalog database URL (overrides the global option).")
@json_option
@click.pass_context
def db_current(ctx: click.Context, catalog_option: str | None) -> None:
    """Print the catalog's schema revision and whether it is up to date.

    \b
    Example:
      modelshelf --home models db current
    """
    from registry.facade import catalog_revisions, is_older_revision

    current, head = catalog_revisions(ctx.obj["home"], catalog=catalog_option or ctx.obj["catalog"])
    if wants_json(ctx):
        emit_json({"revision": current, "head": head, "up_to_date": current == head})
    elif current is None:
        click.echo(f"no catalog yet (this modelshelf creates revision {head}; run `modelshelf db upgrade`)")
    elif current == head:
        click.echo(f"{current} (head, up to date)")
    elif is_older_revision(current):
        click.echo(f"{current} (older than this modelshelf's {head}: run `modelshelf db upgrade`)")
    else:
        click.echo(f"{current} (newer than this modelshelf's {head}: upgrade modelshelf)")


@cli.group()
def cache() -> None:
    """Inspect or empty the local cache of blobs downloaded from object stores.

    \b
    Example:
      modelshelf cache info
    """


@cache.command("info")
@json_option
@click.pass_context
def cache_info(ctx: click.Context) -> None:
    """Print where the cache is ($MODELSHELF_CACHE), how many blobs it holds and their size.

    \b
    Example:
      MODELSHELF_CACHE=/scratch/modelshelf modelshelf cache info
    """
    from registry.store import cache_links, cache_usage

    root, count, size = cache_usage()
    if wants_json(ctx):
        emit_json({"path": str(root), "blobs": count, "bytes": size})
    else:
        click.echo(f"{root}: {plural(count, 'blob')}, {plural(size, 'byte')}")
    for link in cache_links():
        click.echo(f"the cache holds the symbolic link {link} (never followed): remove it by hand", err=True)


@cache.command("clear")
@json_option
@click.pass_context
def cache_clear(ctx: click.Context) -> None:
    """Remove every cached blob; they are downloaded (and verified) again when next loaded.

    \b
    Example:
      modelshelf cache clear
    """
    from registry.store import cache_links, clear_cache

    count, freed = clear_cache()
    if wants_json(ctx):
        emit_json({"removed_files": count, "freed_bytes": freed})
    else:
        click.echo(f"removed {plural(count, 'file')}, {plural(freed, 'byte')}")
    for link in cache_links():
        click.echo(f"left the symbolic link {link} (never followed): remove it by hand", err=True)
