"""``modelshelf preflight`` and ``modelshelf migrate``: before and after upgrading scikit-learn or numpy."""

from __future__ import annotations

import sys

import click

from registry.cli.app import EXIT_INTEGRITY, cli, json_option, open_registry, wants_json
from registry.cli.canary import loading_options, print_report, tolerance_options, trust_option
from registry.cli.output import emit_json, emit_table, plural
from registry.domain import PreflightReport, PreflightResult
from registry.errors import CanaryMismatch

#: Characters of a warning or error shown in a table cell (``--json`` has them whole).
DETAIL_WIDTH = 160


@cli.command()
@click.argument("refs", nargs=-1, metavar="[REF...]")
@click.option(
    "--python",
    "python",
    required=True,
    metavar="PATH",
    help="The other environment's interpreter, such as ../next-venv/bin/python.",
)
@click.option("--aliased", "selection", flag_value="aliased", default=True, help="The aliased versions (default).")
@click.option("--all", "selection", flag_value="all", help="Every version of every model.")
@click.option(
    "--timeout", type=float, default=300.0, show_default=True, help="Seconds each version may take over there."
)
@tolerance_options
@trust_option("A type a skops artifact may hold beyond skops' defaults (repeatable).")
@json_option
@click.pass_context
def preflight(
    ctx: click.Context,
    refs: tuple[str, ...],
    python: str,
    selection: str,
    timeout: float,
    rtol: float,
    atol: float,
    trusted: tuple[str, ...],
) -> None:
    """Would these versions load, and predict the same, under another interpreter? Exit 3 if one would break.

    Each version's bytes are verified here and handed to PATH in a
    subprocess with its prediction canary; it loads them there (it needs
    scikit-learn and joblib, not modelshelf) and answers the canary. The
    table says, per version: loads, warns (and the warning), fails (and the
    error) or changed (its predictions differ), and how the environments
    differ. Exit 3 when an aliased version (with REF..., a named one) would
    fail or predict otherwise: run it in CI before upgrading a serving image.

    \b
    Examples:
      modelshelf preflight --python ../next/bin/python
      modelshelf preflight --python ../next/bin/python --all --json
      modelshelf preflight --python ../next/bin/python iris-knn:3
    """
    if refs and selection == "all":
        raise click.UsageError("give REF... or --all, not both")
    with open_registry(ctx) as reg:
        report = reg.preflight(
            python,
            list(refs) if refs else None,
            all_versions=selection == "all",
            timeout=timeout,
            rtol=rtol,
            atol=atol,
            trusted=trusted or None,
        )
    breaking = report.breaking if refs else report.aliased_breaking
    if wants_json(ctx):
        emit_json(report.to_json())
    else:
        _print_preflight(report, breaking)
    if breaking:
        sys.exit(EXIT_INTEGRITY)


def _print_preflight(report: PreflightReport, breaking: tuple[PreflightResult, ...]) -> None:
    there = ", ".join(f"{key} {value}" for key, value in report.environment.items() if value)
    click.echo(f"pre-flight in {report.python} ({there})")
    if not report.results:
        click.echo("no versions to check (no aliases: name REF... or use --all)")
        return
    rows = [
        (
            result.ref,
            ", ".join(result.aliases),
            result.status.upper() if result.breaks else result.status,
            result.canary,
            _detail(result),
        )
        for result in report.results
    ]
    emit_table("pre-flight", ("version", "aliases", "load", "canary", "detail"), rows)
    if breaking:
        which = ", ".join(result.ref for result in breaking)
        click.echo(f"{plural(len(breaking), 'version')} would break there: {which}", err=True)
    else:
        click.echo("nothing would break there")


def _detail(result: PreflightResult) -> str:
    """The one thing to read about a version: its error, what changed, its warning, or how the environments differ."""
    if result.error:
        text = result.error
    elif result.report is not None and result.report.changed:
        text = result.report.summary
    elif result.warnings:
        text = "; ".join(result.warnings)
    elif result.canary_note:
        text = result.canary_note
    else:
        text = "; ".join(result.environment) or "same environment"
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 1] + "…"


@cli.command()
@click.argument("ref", metavar="REF")
@click.option("--alias-follow", is_flag=True, help="Move the old version's aliases to the new one (through gates).")
@loading_options
@tolerance_options
@json_option
@click.pass_context
def migrate(
    ctx: click.Context,
    ref: str,
    alias_follow: bool,
    safe: bool,
    trusted: tuple[str, ...],
    rtol: float,
    atol: float,
) -> None:
    """Re-save REF under this environment as a new version, only if its canary passes here (else exit 3).

    The new version keeps REF's params, metrics, tags and input signature,
    has REF as its parent and the tag modelshelf.migrated-from; nothing is
    written when any canary output changed (the rows are printed).

    \b
    Examples:
      modelshelf migrate iris-knn@production --alias-follow
    """
    from registry.cli.output import version_json

    with open_registry(ctx) as reg:
        try:
            new = reg.migrate(ref, alias_follow=alias_follow, safe=safe, trusted=trusted or None, rtol=rtol, atol=atol)
        except CanaryMismatch as exc:
            if wants_json(ctx):
                emit_json({"migrated": None, "report": exc.report.to_json()})
            else:
                click.echo(f"error: {exc}", err=True)
                print_report(exc.report)
            sys.exit(EXIT_INTEGRITY)
    if wants_json(ctx):
        emit_json({"migrated": version_json(new), "report": None})
        return
    moved = (
        f"; {', '.join(new.aliases)} now {'point' if len(new.aliases) > 1 else 'points'} at it" if alias_follow else ""
    )
    click.echo(f"{new.ref}: migrated from {new.lineage.parent if new.lineage else ref}{moved}")
