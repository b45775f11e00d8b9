"""``modelshelf history --plot``: one panel per metric, aliases named once, steps drawn, paths that fail cleanly.

The figure is checked twice: as the object :func:`history_figure` builds
(panels, scales, labels) and as the PNG the command writes, decoded and
read pixel by pixel (its size, one framed panel per metric, each with
coloured data in it), so a figure that is right in code but wrong on
screen still fails.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from tests.cli_helpers import run_cli
from tests.mounts import read_only_mount
from tests.prebuilt import build_registry, copy_registry

matplotlib = pytest.importorskip("matplotlib")

from registry.cli.plot import DPI, PANEL_HEIGHT, WIDTH, history_figure  # noqa: E402


def _fill(reg: Registry) -> None:
    for k in range(1, 7):
        reg.register(
            "clf",
            {"k": k},
            format="pickle",
            metrics={"accuracy": 0.95 + k / 300, "log_loss": 0.02 - k / 1000},
        )
    reg.set_alias("clf", "production", 3)
    reg.set_alias("clf", "canary", 3)
    reg.set_alias("clf", "staging", 5)
    for step in range(5):
        reg.log_metrics("clf", 4, {"accuracy": 0.90 + step / 100}, step=step)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> Path:
    return build_registry(tmp_path_factory, template_home, "two-scales", _fill)


@pytest.fixture
def two_scales(home: Path, built: Path) -> Path:
    """A model whose accuracy sits near 0.97 and whose loss near 0.01; version 4 logged five steps, 3 has 2 aliases."""
    return copy_registry(built, home)


def _figure(home: Path, *keys: str) -> Any:
    with Registry(home) as reg:
        points, found = reg.metrics_history("clf"), reg.versions("clf")
    return history_figure("clf", list(keys) or sorted({p.key for p in points}), points, found)


def test_each_metric_gets_its_own_panel_and_scale_on_shared_versions(two_scales: Path) -> None:
    figure = _figure(two_scales)
    accuracy, loss = figure.axes
    assert [axes.get_ylabel() for axes in figure.axes] == ["accuracy", "log_loss"]
    assert accuracy.get_shared_x_axes().joined(accuracy, loss)
    low, high = loss.get_ylim()
    assert 0.005 < low and high < 0.03, "the loss panel is scaled to the loss, not to 0..1"
    low, high = accuracy.get_ylim()
    assert 0.8 < low and high < 1.0
    assert loss.get_xlabel() == "version" and [t.get_text() for t in loss.get_xticklabels()][1:7] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
    ]


def test_each_alias_is_named_once_and_marked_on_every_panel(two_scales: Path) -> None:
    figure = _figure(two_scales)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert texts.count("canary, production") == 1 and texts.count("staging") == 1
    for axes in figure.axes:
        vertical = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
        assert sorted(float(line.get_xdata()[0]) for line in vertical) == [3.0, 5.0]


def test_every_step_of_a_version_is_drawn_beside_it(two_scales: Path) -> None:
    accuracy, _ = _figure(two_scales).axes
    stepped = [0.90, 0.91, 0.92, 0.93, 0.94]
    drawn = [
        (list(line.get_xdata()), list(line.get_ydata()))
        for line in accuracy.get_lines()
        if list(line.get_ydata()) == pytest.approx(stepped)
    ]
    assert len(drawn) == 1, "the five steps of version 4 are one line of their own"
    xs = drawn[0][0]
    assert xs == sorted(xs) and 3 < xs[0] and xs[-1] == 4, "spread left of version 4, ending on it"
    hollow = [line for line in accuracy.get_lines() if line.get_markerfacecolor() == "white"]
    assert [list(line.get_ydata()) for line in hollow] == [[pytest.approx(0.95 + 4 / 300)]]  # its value at register
    assert "steps 0–4" in [text.get_text() for text in accuracy.texts]
    main = accuracy.get_lines()[0]
    assert list(main.get_xdata()) == [1, 2, 3, 4, 5, 6] and main.get_ydata()[3] == pytest.approx(0.94)  # latest


def test_only_metrics_with_values_get_a_panel_and_none_is_an_error(two_scales: Path) -> None:
    from registry.errors import NotFound

    assert [axes.get_ylabel() for axes in _figure(two_scales, "log_loss").axes] == ["log_loss"]
    assert len(_figure(two_scales, "log_loss", "nosuch").axes) == 1
    assert len(_figure(two_scales, "log_loss", "accuracy", "log_loss").axes) == 2  # named twice, drawn once
    with pytest.raises(NotFound, match="no metric values among nosuch"):
        _figure(two_scales, "nosuch")


def _spine_rows(image: Any) -> list[int]:
    """Rows of the image that are mostly dark: the top and bottom frame of each panel (grid lines are light)."""
    dark = image[:, :, :3].max(axis=2) < 0.3
    rows = [y for y in range(image.shape[0]) if dark[y].mean() > 0.6]
    return [y for i, y in enumerate(rows) if i == 0 or y - rows[i - 1] > 1]  # a 2-pixel line counts once


def test_the_png_has_one_framed_non_empty_panel_per_metric(two_scales: Path, tmp_path: Path) -> None:
    import matplotlib.image

    (tmp_path / "plots").mkdir()
    target = tmp_path / "plots" / "history.png"
    result = run_cli(two_scales, "history", "clf", "--plot", str(target))
    assert result.exit_code == 0, result.output
    image = matplotlib.image.imread(target)
    height, width = image.shape[:2]
    assert width == WIDTH * DPI and height > 2 * PANEL_HEIGHT * DPI
    spines = _spine_rows(image)
    assert len(spines) == 4, f"two panels, each framed top and bottom; dark rows at {spines}"
    for top, bottom in zip(spines[::2], spines[1::2], strict=True):
        inside = image[top + 3 : bottom - 2, :, :3]
        saturation = inside.max(axis=2) - inside.min(axis=2)
        assert (saturation > 0.4).sum() > 500, "each panel has coloured data in it, not only a frame"
    assert [p.name for p in target.parent.iterdir()] == ["history.png"], "no temporary file is left"


def test_an_svg_is_written_too_and_other_suffixes_are_refused(two_scales: Path, tmp_path: Path) -> None:
    target = tmp_path / "history.svg"
    assert run_cli(two_scales, "history", "clf", "--plot", str(target)).exit_code == 0
    assert target.read_text().count('<g id="axes_') == 2
    assert run_cli(two_scales, "history", "clf", "--plot", str(tmp_path / "x.gif")).exit_code == 2
    assert not (tmp_path / "x.gif").exists()


def _refused(home: Path, target: Path) -> str:
    result = run_cli(home, "history", "clf", "--plot", str(target))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write the plot to "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_a_directory_that_does_not_exist_is_one_line_and_exit_2(two_scales: Path, tmp_path: Path) -> None:
    line = _refused(two_scales, tmp_path / "nonexistent" / "a.png")
    assert "No such file or directory" in line and "existing directory" in line
    assert not (tmp_path / "nonexistent").exists()


def test_a_file_where_the_directory_should_be_is_one_line_and_exit_2(two_scales: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a directory")
    line = _refused(two_scales, tmp_path / "notes.txt" / "a.png")
    assert "Not a directory" in line
    assert (tmp_path / "notes.txt").read_text() == "not a directory"


def test_a_read_only_directory_is_one_line_and_exit_2(two_scales: Path, tmp_path: Path) -> None:
    source = tmp_path / f"plots-{uuid.uuid4().hex[:6]}"
    source.mkdir()
    with read_only_mount(source, tmp_path / "ro") as read_only:
        line = _refused(two_scales, read_only / "a.png")
        assert "Read-only file system" in line
    assert list(source.iterdir()) == []


def test_without_matplotlib_the_error_is_one_line_naming_the_extra(
    two_scales: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # how Python itself marks a module as not importable
    result = run_cli(two_scales, "history", "clf", "--plot", str(tmp_path / "a.png"))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr == "error: --plot needs matplotlib: pip install 'modelshelf[plot]'\n"
    assert not (tmp_path / "a.png").exists()
