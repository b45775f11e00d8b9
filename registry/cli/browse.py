"""Commands that read: models, versions, show, diff, history."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, wants_json
from registry.cli.output import (
    console,
    emit_json,
    emit_table,
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
from registry.errors import NotFound
from registry.humanize import human_size

MAIN_METRICS = 3

#: ``show`` cuts a value longer than this many characters (``--full`` prints it whole).
FOLD_WIDTH = 100

#: ``diff``'s marker for a key one side does not have (a ``None`` value is another thing: ``null``).
ABSENT = "(absent)"


class _Absent:
    """The value of a key a version does not have, unequal to every value, ``None`` included."""

    def __repr__(self) -> str:
        return ABSENT


_ABSENT = _Absent()


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


def _folded_params(params: dict[str, Any], full: bool) -> list[tuple[str, Any]]:
    """The params as rows; without ``full``, a pipeline's nested ``step__param`` keys folded into their step's row.

    scikit-learn reports every parameter of every step of a pipeline
    (``pca__n_components`` beside ``pca``); the step's own value already
    shows them, so its row says how many were folded instead of listing
    them all.
    """
    if full:
        return [(key, value if isinstance(value, float) else _shown(value)) for key, value in sorted(params.items())]
    nested = Counter(key.split("__", 1)[0] for key in params if "__" in key)
    folded = {key for key in params if "__" in key and key.split("__", 1)[0] in params}
    rows: list[tuple[str, Any]] = []
    for key, value in sorted(params.items()):
        if key in folded:
            continue
        count = nested.get(key, 0)
        if isinstance(value, float):
            rows.append((key, value))
            continue
        rows.append((key, _fold(_shown(value), full) + (f"  (+{count} nested params: --full)" if count else "")))
    return rows


def _shown(value: Any) -> str:
    """A value as one readable line: JSON for structures, ``null`` for None, whitespace runs collapsed."""
    if value is None:
        return "null"
    text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
    return " ".join(text.split())


def _fold(text: str, full: bool) -> str:
    if full or len(text) <= FOLD_WIDTH:
        return text
    return text[: FOLD_WIDTH - 1] + "…"


@cli.command()
@click.argument("ref")
@click.option("--full", is_flag=True, help="Print long values whole and every nested param of a pipeline.")
@json_option
@click.pass_context
def show(ctx: click.Context, ref: str, full: bool) -> None:
    """Show one version in full: params, metrics, tags, lineage, input signature, environment, checksum.

    REF is NAME (the latest), NAME:VERSION, NAME:latest or NAME@ALIAS.
    The lineage section lists the ancestors the version was derived from.
    Values longer than 100 characters are cut, and a pipeline's nested
    params (step__param) are folded into their step's row: --full shows
    them all.

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
    rows.extend(("metrics", key, value) for key, value in sorted(mv.metrics.items()))
    rows.extend(("params", key, value) for key, value in _folded_params(mv.params, full))
    for section, values in (("tags", mv.tags), ("environment", mv.environment)):
        rows.extend((section, key, value) for key, value in sorted(values.items()))
    for key, value in (lineage_json(mv.lineage) or {}).items():
        if value is not None:
            rows.append(("lineage", key, value))
    if ancestors:
        rows.append(("lineage", "ancestors", " ← ".join(ancestors)))
    signature = mv.input_signature.to_json() if mv.input_signature is not None else {}
    rows.extend(("input", key, value) for key, value in signature.items() if value is not None and key != "example")
    rows.extend(("imports", str(i), name) for i, name in enumerate(mv.imports or (), 1))
    shown = [
        (section, key, value if isinstance(value, float) or section == "params" else _fold(_shown(value), full))
        for section, key, value in rows
    ]
    emit_table(mv.ref, ("section", "key", "value"), shown)


def _diff_rows(left: ModelVersion, right: ModelVersion) -> tuple[list[tuple[str, str, Any, Any]], set[int]]:
    rows: list[tuple[str, str, Any, Any]] = [
        ("", "format", left.format, right.format),
        ("", "checksum", left.checksum, right.checksum),
        ("", "size", left.size, right.size),
    ]
    for section in ("params", "metrics", "tags", "environment"):
        a, b = getattr(left, section), getattr(right, section)
        rows.extend((section, key, a.get(key, _ABSENT), b.get(key, _ABSENT)) for key in sorted(set(a) | set(b)))
    changed = {index for index, row in enumerate(rows) if row[2] != row[3]}
    return rows, changed


def _diff_cell(value: Any) -> Any:
    """A side of a diff row: ``(absent)`` where the key is missing, ``null`` where its value is None."""
    if value is _ABSENT:
        return ABSENT
    return "null" if value is None else value


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
                    {
                        "section": row[0] or "artifact",
                        "key": row[1],
                        "left": None if row[2] is _ABSENT else row[2],
                        "right": None if row[3] is _ABSENT else row[3],
                        "in_left": row[2] is not _ABSENT,
                        "in_right": row[3] is not _ABSENT,
                    }
                    for index, row in enumerate(rows)
                    if index in changed
                ],
            }
        )
        return
    shown = [(index, row) for index, row in enumerate(rows) if index in changed or not changed_only]
    marked = [
        ("*" if index in changed else "", section, key, _diff_cell(left_value), _diff_cell(right_value))
        for index, (section, key, left_value, right_value) in shown
    ]
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
        every = reg.metrics_history(name)
        found = reg.versions(name)
    known = sorted({p.key for p in every})
    unknown = [key for key in metrics if key not in known]
    if unknown:
        there = f"its metrics are {', '.join(known)}" if known else "it has no metrics logged"
        raise NotFound(f"{name} has no metric {', '.join(map(repr, unknown))}; {there}")
    points = [p for p in every if not metrics or p.key in metrics]
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
