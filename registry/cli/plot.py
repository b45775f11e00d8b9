"""``modelshelf history --plot``: one panel per metric across versions (matplotlib, the ``plot`` extra).

What the figure shows, and why:

* **One panel per metric**, stacked, sharing the version axis. Each panel
  has its own y-axis, so an accuracy near 0.97 and a loss near 0.01 both
  show their movement instead of two flat lines on one scale.
* **The line** joins each version's latest value of the metric (what
  ``versions``, ``search`` and ``best`` use), drawn at the version's number.
* **Steps**: when a version has several values of a metric (a value at
  registration, then ``log_metrics(..., step=N)``), they are drawn as small
  points spread to the left of the version, in history order (no step
  first, then by step), ending at the version itself, with the first and
  last step numbered; no value is hidden behind another.
* **Aliases** are a dotted vertical line through every panel at the
  version they point at, labelled once, above the top panel.

The figure is built by :func:`history_figure` (tested for its panels and
labels) and written by :func:`plot_history`, which renders it in memory
first and then writes it as every output file is written
(:mod:`registry.outputs`): whole or not at all, and a destination that
cannot be written is an :class:`~registry.errors.InvalidPath`, exit code
2, as for ``fetch -o`` and ``export -o``.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from registry.domain import MetricPoint, ModelVersion
from registry.errors import InvalidPath, MissingDependency, NotFound
from registry.outputs import replacing

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The file types ``--plot`` writes, by suffix.
SUFFIXES = (".png", ".svg")
#: Inches: the figure's width, each panel's height, and the room for the title and the version axis.
WIDTH, PANEL_HEIGHT, FRAME_HEIGHT = 8.0, 2.0, 1.3
#: Dots per inch of a PNG: 8 inches wide makes 1000 pixels.
DPI = 125
#: Points: the size of the alias labels above the top panel.
ALIAS_FONT_SIZE = 9
#: How far left of its version (in versions) the values of one version's steps spread.
STEP_SPREAD = 0.5
#: The most room one step takes (versions), so two values of one version sit close together, not midway.
STEP_GAP = 0.12
#: Small labels drawn over lines (alias markers, the grid) stay readable on a light box.
LABEL_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8}
#: Labels lie above the alias lines and the grid (1) and below every drawn value (2 and 3): they hide no point.
LABEL_ZORDER = 1.5


def check_plot_path(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """The ``--plot`` option's check, before the registry is opened: a file type matplotlib is asked for."""
    if value is not None and value.suffix.lower() not in SUFFIXES:
        raise click.BadParameter(f"{value} must end in .png or .svg", param_hint="--plot")
    return value


def plot_history(
    name: str, keys: Sequence[str], points: Sequence[MetricPoint], found: Sequence[ModelVersion], path: Path
) -> None:
    """Draw the metrics ``keys`` of ``name`` into ``path`` (.png or .svg), or raise a one-line error.

    ``points`` is the metric history (``Registry.metrics_history``) and
    ``found`` the live versions (``Registry.versions``), which carry each
    version's latest values and aliases.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidPath(f"{path} must end in .png or .svg")
    figure = history_figure(name, keys, points, found)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=suffix[1:], dpi=DPI)
    _write_atomically(path, buffer.getvalue())


def history_figure(
    name: str, keys: Sequence[str], points: Sequence[MetricPoint], found: Sequence[ModelVersion]
) -> Figure:
    """The figure ``--plot`` writes: one panel per metric of ``keys`` that has a value, versions shared.

    Built on a plain :class:`~matplotlib.figure.Figure` with the Agg canvas,
    never through pyplot, so nothing global (a backend, open figures) changes.
    Raises :class:`~registry.errors.NotFound` when none of ``keys`` has a value.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.ticker import MaxNLocator, MultipleLocator
    except ImportError:
        raise MissingDependency(
            "matplotlib", "plot", "--plot needs matplotlib: pip install 'modelshelf[plot]'"
        ) from None
    drawn = [key for key in dict.fromkeys(keys) if any(p.key == key for p in points)]  # a key named twice: once
    if not drawn:
        wanted = f" among {', '.join(keys)}" if keys else ""
        raise NotFound(f"{name} has no metric values{wanted} to plot; log some with `Registry.log_metrics`")
    figure = Figure(figsize=(WIDTH, FRAME_HEIGHT + PANEL_HEIGHT * len(drawn)), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    aliases = {mv.version: ", ".join(sorted(mv.aliases)) for mv in found if mv.aliases}
    kinds: set[str] = set()
    for index, (key, axes) in enumerate(zip(drawn, panels, strict=True)):
        color = f"C{index % 10}"
        kinds |= _draw_metric(axes, key, [p for p in points if p.key == key], found, color)
        for version in aliases:
            axes.axvline(version, color="0.35", linestyle=":", linewidth=1.2, zorder=1)
        axes.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        axes.grid(alpha=0.3)
        axes.margins(y=0.2)
    versions = sorted({mv.version for mv in found} | {p.version for p in points})
    low, high = versions[0] - STEP_SPREAD - 0.3, versions[-1] + 0.5
    bottom = panels[-1]
    bottom.set_xlim(low, high)
    if versions[-1] - versions[0] < 15:  # every version gets its tick (MaxNLocator turns fractional on short ranges)
        bottom.xaxis.set_major_locator(MultipleLocator(1))
    else:
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=15, steps=[1, 2, 5, 10]))
    bottom.set_xlabel("version")
    _label_aliases(panels[0], aliases, low, high)
    grey = "0.3"
    legend = {
        "line": Line2D([], [], marker="o", color=grey, label="latest value of each version"),
        "steps": Line2D(
            [], [], marker=".", linewidth=0.9, alpha=0.6, color=grey, label="values by step, within a version"
        ),
        "loose": Line2D(
            [],
            [],
            marker="o",
            markersize=4,
            markerfacecolor="white",
            linestyle="none",
            color=grey,
            label="value without a step",
        ),
        "alias": Line2D([], [], linestyle=":", linewidth=1.2, color="0.35", label="alias"),
    }
    shown = [handle for kind, handle in legend.items() if kind in kinds or (kind == "alias" and aliases)]
    figure.legend(handles=shown, loc="outside lower center", ncols=len(shown), fontsize=8, frameon=False)
    figure.suptitle(f"{name}: metrics across versions", fontsize=12)
    return figure


def _label_aliases(axes: Axes, aliases: dict[int, str], low: float, high: float) -> None:
    """Name each aliased version once, above the top panel, in rows so that neighbouring labels never overlap.

    A label's width is estimated from its length (the figure is a fixed
    width), and each goes into the lowest row where it clears the label
    before it; labels at the edges are aligned to stay inside the figure.
    """
    per_version = (WIDTH - 1.2) * 72 / (high - low)  # points per version along the axis
    rows_end: list[float] = []  # where the last label of each row ends, in versions
    for version, text in sorted(aliases.items()):
        width = (len(text) * 0.62 * ALIAS_FONT_SIZE + 6) / per_version
        left, align = version - width / 2, "center"
        if left < low:
            left, align = version, "left"
        elif version + width / 2 > high:
            left, align = version - width, "right"
        row = next((i for i, end in enumerate(rows_end) if left > end), len(rows_end))
        if row == len(rows_end):
            rows_end.append(left + width)
        rows_end[row] = left + width
        axes.annotate(
            text,
            xy=(version, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 4 + row * (ALIAS_FONT_SIZE + 4)),
            textcoords="offset points",
            ha=align,
            va="bottom",
            fontsize=ALIAS_FONT_SIZE,
            fontweight="bold",
            color="0.2",
        )


def _draw_metric(
    axes: Axes, key: str, points: list[MetricPoint], found: Sequence[ModelVersion], color: str
) -> set[str]:
    """One panel: the latest value per version as a line, each version's steps spread just left of it.

    Returns what it drew, for the legend: ``line``, ``steps``, ``loose``.
    """
    kinds = {"line"}
    latest = [(mv.version, mv.metrics[key]) for mv in found if key in mv.metrics]
    axes.plot([version for version, _ in latest], [value for _, value in latest], marker="o", color=color, zorder=3)
    by_version: dict[int, list[MetricPoint]] = {}
    for point in points:
        by_version.setdefault(point.version, []).append(point)
    for version, logged in by_version.items():
        if len(logged) > 1:
            kinds |= _draw_steps(axes, version, logged, color)
    if latest:
        version, value = latest[-1]
        axes.annotate(
            f"{value:.4g}",
            xy=(version, value),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            bbox=LABEL_BOX,
            zorder=LABEL_ZORDER,
        )
    lines = textwrap.wrap(key, 20, break_on_hyphens=False) or [key]
    axes.set_ylabel("\n".join(lines[:2]) + ("…" if len(lines) > 2 else ""))
    return kinds


def _draw_steps(axes: Axes, version: int, logged: list[MetricPoint], color: str) -> set[str]:
    """The values of one version, in history order, spread over the width left of it, the last on it.

    Values logged with a step are joined by a thin line labelled with the
    steps they span; a value without a step (given at registration) is a
    hollow point of its own, since no step orders it among the others.
    """
    width = min(STEP_SPREAD, STEP_GAP * (len(logged) - 1))  # a few values sit close, never halfway to the next
    spread = [version - width * (1 - i / (len(logged) - 1)) for i in range(len(logged))]
    stepped = [(x, p) for x, p in zip(spread, logged, strict=True) if p.step is not None]
    joined = stepped or list(zip(spread, logged, strict=True))
    loose = [(x, p) for x, p in zip(spread, logged, strict=True) if stepped and p.step is None]
    axes.plot(
        [x for x, _ in joined],
        [p.value for _, p in joined],
        marker=".",
        markersize=5,
        linewidth=0.9,
        color=color,
        alpha=0.6,
        zorder=2,
    )
    if loose:
        axes.plot(
            [x for x, _ in loose],
            [p.value for _, p in loose],
            linestyle="none",
            marker="o",
            markersize=4,
            markerfacecolor="white",
            color=color,
            alpha=0.6,
            zorder=2,
        )
    if stepped:
        first, last = stepped[0][1].step, stepped[-1][1].step
        label = f"step {first}" if first == last else f"steps {first}–{last}"
        low = min(p.value for _, p in stepped)
        middle = (stepped[0][0] + stepped[-1][0]) / 2
        axes.annotate(
            label,
            xy=(middle, low),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color=color,
            bbox=LABEL_BOX,
            zorder=LABEL_ZORDER,
        )
    return ({"steps"} if len(joined) > 1 else set()) | ({"loose"} if loose else set())


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, so ``path`` is whole or untouched."""
    with replacing(path, what="the plot") as file:
        file.write(data)
