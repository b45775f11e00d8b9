"""Commands that read: models, versions, show, diff, history."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, wants_json
from registry.cli.output import (
    console,
    emit_json,
    emit_table,
    human_size,
    is_terminal,
    lineage_json,
    point_json,
    sparkline,
    summary_json,
    timestamp,
    version_json,
)
from registry.cli.plot import check_plot_path
from registry.domain import ModelVersion

MAIN_METRICS = 3


@cli.command()
@json_option
@click.pass_context
def models(ctx: click.Context) -> None:
    """List every model with its latest version, aliases and last update.

    \b
    Example:
      modelshelf --home models models --json
    """
    with open_registry(ctx) as reg:
        summaries = reg.model_summaries()
    if wants_json(ctx):
        emit_json([summary_json(s) for s in summaries])
        return
    rows = [
        (
            s.name,
            s.latest_version,
            s.version_count,
            ", ".join(f"{alias}→{version}" for alias, version in s.aliases.items()),
            timestamp(s.updated_at),
        )
        for s in summaries
    ]
    emit_table("models", ("name", "latest", "versions", "aliases", "updated (UTC)"), rows)


def _main_metrics(versions: list[ModelVersion]) -> list[str]:
    counts = Counter(key for mv in versions for key in mv.metrics)
    return [key for key, _ in counts.most_common(MAIN_METRICS)]


@cli.command()
@click.argument("name")
@json_option
@click.pass_context
def versions(ctx: click.Context, name: str) -> None:
    """List the versions of NAME: created, format, size, aliases and the main metrics.

    \b
    Example:
      modelshelf versions iris-knn
    """
    with open_registry(ctx) as reg:
        found = reg.versions(name)
    if wants_json(ctx):
        emit_json([version_json(mv) for mv in found])
        return
    keys = _main_metrics(found)
    rows = [
        (
            mv.version,
            timestamp(mv.created_at),
            mv.format,
            human_size(mv.size),
            ", ".join(mv.aliases),
            *(mv.metrics.get(key) for key in keys),
        )
        for mv in found
    ]
    emit_table(f"versions of {name}", ("version", "created (UTC)", "format", "size", "aliases", *keys), rows)


@cli.command()
@click.argument("ref")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str) -> None:
    """Show one version in full: params, metrics, tags, lineage, input signature, environment, checksum.

    REF is NAME (the latest), NAME:VERSION, NAME:latest or NAME@ALIAS.
    The lineage section lists the ancestors the version was derived from.

    \b
    Example:
      modelshelf show iris-knn@production
    """
    with open_registry(ctx) as reg:
        mv = reg.get(ref)
        ancestors = reg.ancestors(mv.ref)
    if wants_json(ctx):
        emit_json({**version_json(mv), "ancestors": ancestors})
        return
    rows: list[tuple[str, str, Any]] = [
        ("", "ref", mv.ref),
        ("", "created (UTC)", timestamp(mv.created_at)),
        ("", "format", mv.format),
        ("", "size", f"{mv.size} bytes ({human_size(mv.size)})"),
        ("", "checksum", mv.checksum),
        ("", "aliases", ", ".join(mv.aliases)),
        ("", "description", mv.description or ""),
        ("", "signed", "yes" if mv.hmac else "no"),
    ]
    for section, values in (
        ("metrics", mv.metrics),
        ("params", mv.params),
        ("tags", mv.tags),
        ("environment", mv.environment),
    ):
        rows.extend((section, key, value) for key, value in sorted(values.items()))
    for key, value in (lineage_json(mv.lineage) or {}).items():
        if value is not None:
            rows.append(("lineage", key, value))
    if ancestors:
        rows.append(("lineage", "ancestors", " ← ".join(ancestors)))
    signature = mv.input_signature.to_json() if mv.input_signature is not None else {}
    rows.extend(("input", key, value) for key, value in signature.items() if value is not None and key != "example")
    rows.extend(("imports", str(i), name) for i, name in enumerate(mv.imports or (), 1))
    emit_table(mv.ref, ("section", "key", "value"), rows)


def _diff_rows(left: ModelVersion, right: ModelVersion) -> tuple[list[tuple[str, str, Any, Any]], set[int]]:
    rows: list[tuple[str, str, Any, Any]] = [
        ("", "format", left.format, right.format),
        ("", "checksum", left.checksum, right.checksum),
        ("", "size", left.size, right.size),
    ]
    for section in ("params", "metrics", "tags", "environment"):
        a, b = getattr(left, section), getattr(right, section)
        rows.extend((section, key, a.get(key), b.get(key)) for key in sorted(set(a) | set(b)))
    changed = {index for index, row in enumerate(rows) if row[2] != row[3]}
    return rows, changed


@cli.command()
@click.argument("left")
@click.argument("right")
@click.option("--changed-only", is_flag=True, help="Leave out what is the same on both sides.")
@json_option
@click.pass_context
def diff(ctx: click.Context, left: str, right: str, changed_only: bool) -> None:
    """Compare two versions: params, metrics, tags and environment side by side.

    Rows that differ are highlighted on a terminal and marked with '*' in plain output.

    \b
    Example:
      modelshelf diff iris-knn:2 iris-knn@production
    """
    with open_registry(ctx) as reg:
        a, b = reg.get(left), reg.get(right)
    rows, changed = _diff_rows(a, b)
    if wants_json(ctx):
        emit_json(
            {
                "left": a.ref,
                "right": b.ref,
                "differences": [
                    {"section": row[0] or "artifact", "key": row[1], "left": row[2], "right": row[3]}
                    for index, row in enumerate(rows)
                    if index in changed
                ],
            }
        )
        return
    shown = [(index, row) for index, row in enumerate(rows) if index in changed or not changed_only]
    marked = [("*" if index in changed else "", *row) for index, row in shown]
    highlight = {position for position, (index, _) in enumerate(shown) if index in changed}
    emit_table(f"{a.ref} vs {b.ref}", ("", "section", "key", a.ref, b.ref), marked, changed=highlight)


@cli.command()
@click.argument("name")
@click.argument("metrics", nargs=-1)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=check_plot_path,
    help="Write a chart to FILE.png or FILE.svg, one panel per metric (needs pip install 'modelshelf[plot]').",
)
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, metrics: tuple[str, ...], plot_path: Path | None) -> None:
    """Show how metrics moved across the versions of NAME (all metrics, or only METRICS).

    On a terminal each metric also gets a one-line chart of its latest value per version.

    \b
    Examples:
      modelshelf history iris-knn accuracy
      modelshelf history iris-knn --plot accuracy.png
    """
    with open_registry(ctx) as reg:
        points = [p for p in reg.metrics_history(name) if not metrics or p.key in metrics]
        found = reg.versions(name)
    aliases = {mv.version: list(mv.aliases) for mv in found}
    keys = list(metrics) or sorted({p.key for p in points})
    latest = {key: [(mv.version, mv.metrics[key]) for mv in found if key in mv.metrics] for key in keys}
    if plot_path is not None:
        from registry.cli.plot import plot_history

        plot_history(name, keys, points, found, plot_path)
    if wants_json(ctx):
        emit_json([point_json(p) for p in points])
        return
    rows = [
        (
            p.version,
            "" if p.step is None else p.step,
            p.key,
            p.value,
            timestamp(p.timestamp),
            ", ".join(aliases.get(p.version, [])),
        )
        for p in points
    ]
    emit_table(f"metrics of {name}", ("version", "step", "metric", "value", "logged (UTC)", "aliases"), rows)
    if is_terminal():
        out = console()
        for key in keys:
            values = [value for _, value in latest[key]]
            if values:
                out.print(f"{key:>20}  {sparkline(values)}  {min(values):.4g} … {max(values):.4g}")
    if plot_path is not None:
        click.echo(f"wrote {plot_path}", err=True)
