"""``modelshelf history --plot``: a matplotlib figure of metrics across versions (optional dependency)."""

from __future__ import annotations

from pathlib import Path

import click


def plot_history(
    name: str, series: dict[str, list[tuple[int, float]]], aliases: dict[int, list[str]], path: Path
) -> None:
    """One line per metric, versions on the x axis, aliased versions marked and labelled."""
    if path.suffix.lower() not in (".png", ".svg"):
        raise click.BadParameter(f"{path} must end in .png or .svg", param_hint="--plot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise click.UsageError("--plot needs matplotlib: pip install 'modelshelf[plot]'") from None
    figure, axes = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for key, points in series.items():
        if not points:
            continue
        versions = [version for version, _ in points]
        values = [value for _, value in points]
        axes.plot(versions, values, marker="o", label=key)
        for version, value in points:
            if aliases.get(version):
                axes.annotate(
                    ", ".join(aliases[version]),
                    (version, value),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=8,
                )
                axes.plot([version], [value], marker="*", markersize=14, color="black", zorder=3)
    axes.set_xlabel("version")
    axes.set_ylabel("value")
    axes.set_title(f"{name}: metrics across versions")
    locator = axes.xaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one
        locator.set_params(integer=True)
    axes.grid(alpha=0.3)
    axes.margins(y=0.15)
    axes.legend()
    figure.savefig(path)
    plt.close(figure)
