"""``modelshelf check``: re-run the prediction canaries of versions and say what changed (exit 3 if anything did)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from registry.cli.app import EXIT_INTEGRITY, cli, json_option, open_registry, wants_json
from registry.cli.output import emit_json, number, plural
from registry.domain import CheckReport, MethodCheck

#: Changed cells printed per method in text (``--json`` has all that the report keeps).
SHOWN_CELLS = 10

F = TypeVar("F", bound=Callable[..., Any])


def tolerance_options(command: F) -> F:
    """``--rtol`` and ``--atol``, as every command comparing canary outputs takes them."""
    command = click.option(
        "--atol", type=float, default=1e-9, show_default=True, help="Absolute tolerance for float outputs."
    )(command)
    return click.option(
        "--rtol", type=float, default=1e-6, show_default=True, help="Relative tolerance for float outputs."
    )(command)


def trust_option(help: str) -> Callable[[F], F]:
    """``--trust MODULE.NAME`` (repeatable), into the parameter ``trusted``."""
    return click.option("--trust", "trusted", multiple=True, metavar="MODULE.NAME", help=help)


def loading_options(command: F) -> F:
    """``--safe`` and ``--trust``, as every command that loads a version here takes them."""
    command = trust_option("A global the safe loader may import beyond the policy (repeatable).")(command)
    return click.option("--safe", is_flag=True, help="Load through the safe unpickler (see `modelshelf policy`).")(
        command
    )


@cli.command()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@loading_options
@tolerance_options
@json_option
@click.pass_context
def check(
    ctx: click.Context, refs: tuple[str, ...], safe: bool, trusted: tuple[str, ...], rtol: float, atol: float
) -> None:
    """Load each version (verified) and re-run its prediction canary: exit 3 if any output changed.

    A canary is the rows and outputs kept at registration (from
    input_example= or data=). Floats pass within --rtol/--atol; labels must
    be equal. A version with no canary (registered before canaries, or
    without an input) is reported as "no canary" and does not fail the
    command: there is nothing to compare. Loading runs the model's code,
    as loading it in Python does; --safe uses the safe unpickler.

    \b
    Examples:
      modelshelf check iris-knn@production
      modelshelf check iris-knn:3 iris-knn:4 --json
    """
    reports = []
    with open_registry(ctx) as reg:
        for ref in refs:
            reports.append(reg.check(ref, safe=safe, trusted=trusted or None, rtol=rtol, atol=atol))
    if wants_json(ctx):
        emit_json([report.to_json() for report in reports])
    else:
        for report in reports:
            print_report(report)
    if any(report.changed for report in reports):
        sys.exit(EXIT_INTEGRITY)


def print_report(report: CheckReport) -> None:
    if report.status == "no canary":
        click.echo(f"{report.ref}: no canary, nothing to compare ({report.note})")
        return
    summary = ", ".join(f"{m.method} {m.status}" for m in report.methods)
    line = f"{report.ref}: {report.status.upper() if report.changed else report.status} ({plural(report.rows, 'row')}"
    click.echo(f"{line}: {summary})", err=report.changed)
    if report.environment:
        click.echo(f"  environment differs: {'; '.join(report.environment)}")
    for method in report.methods:
        _print_method(method)


def _print_method(method: MethodCheck) -> None:
    largest = f", max abs diff {number(method.max_abs_diff)}" if method.max_abs_diff else ""
    if method.status == "within tolerance":
        click.echo(f"  {method.method}: within tolerance{largest}")
    if method.status != "changed":
        return
    if method.detail and not method.changes:
        click.echo(f"  {method.method}: {method.detail}")
        return
    click.echo(f"  {method.method}: {plural(method.changed_cells, 'cell')} changed{largest}")
    for change in method.changes[:SHOWN_CELLS]:
        where = f"row {change.row}" + ("" if change.column is None else f", column {change.column}")
        diff = "" if change.abs_diff is None else f" (abs diff {number(change.abs_diff)})"
        click.echo(f"    {where}: {change.expected!r} -> {change.actual!r}{diff}")
    if method.changed_cells > SHOWN_CELLS:
        click.echo(f"    … {method.changed_cells - SHOWN_CELLS} more (--json lists up to {len(method.changes)})")
