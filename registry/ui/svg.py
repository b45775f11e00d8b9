"""Charts and the lineage graph as SVG text, drawn on the server: no JavaScript chart library.

Every piece of text that reaches the SVG (metric keys, alias names,
references) goes through :func:`text`, which escapes it for XML, so a
metric called ``<script>`` is drawn as those characters and never becomes
markup. Styling is done with presentation attributes (``fill=``,
``stroke=``) rather than ``style=``, so the page's Content-Security-Policy
can forbid inline styles.

>>> chart = metric_panel("accuracy", [(1, 0.5), (2, 0.75)], marks={2: ["production"]})
>>> chart.startswith("<svg") and "production" in chart
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: Above this many points, a panel draws the line only, without one circle (and tooltip) per point.
MAX_DOTS = 400

WIDTH = 760
HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 44, 34

LINE = "#2563eb"
MARK = "#c2410c"
GRID = "#e5e7eb"
INK = "#374151"


def text(value: object) -> str:
    """``value`` as XML text, quotes included, so it is safe in element content and in attributes."""
    return escape(str(value), quote=True)


def _number(value: float) -> str:
    """A coordinate with two decimals: short output, exact enough for a screen."""
    return f"{value:.2f}"


def _label(value: float) -> str:
    """A tick label: up to four significant digits, no trailing noise."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4g}"


def ticks(low: float, high: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values covering ``low``..``high`` (1, 2 or 5 times a power of ten apart).

    >>> ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9)
    values = []
    index = first
    while index * step <= high + step * 1e-9:
        values.append(round(index * step, 12))
        index += 1
    return values


def thin(points: Sequence[tuple[int, float]], columns: int) -> list[tuple[int, float]]:
    """At most four points per pixel column (first, lowest, highest, last), so the line looks the same.

    10,000 versions on a 700-pixel panel would otherwise draw 14 points on
    every pixel: the page grows, and nothing more is seen.

    >>> len(thin([(v, v % 7) for v in range(1, 10_001)], 100)) <= 400
    True
    """
    if len(points) <= 4 * columns:
        return list(points)
    first, last = points[0][0], points[-1][0]
    span = max(last - first, 1)
    kept: list[tuple[int, float]] = []
    bucket: list[tuple[int, float]] = []
    current = 0
    for point in points:
        column = min(int((point[0] - first) / span * columns), columns - 1)
        if column != current and bucket:
            kept.extend(_extremes(bucket))
            bucket = []
        current = column
        bucket.append(point)
    kept.extend(_extremes(bucket))
    return kept


def _extremes(bucket: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The first, lowest, highest and last point of a bucket, in version order, without repeats."""
    chosen = {bucket[0], min(bucket, key=lambda p: p[1]), max(bucket, key=lambda p: p[1]), bucket[-1]}
    return sorted(chosen)


@dataclass(frozen=True)
class _Scale:
    """A linear map from data to pixels."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        if self.high == self.low:
            return (self.start + self.end) / 2
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def metric_panel(
    key: str,
    points: Sequence[tuple[int, float]],
    *,
    marks: Mapping[int, Sequence[str]] | None = None,
    link: str | None = None,
) -> str:
    """One metric across versions: versions on x, the value on y, versions an alias pointed at marked.

    ``points`` are ``(version, value)`` in version order; ``marks`` maps a
    version to the aliases that pointed at it at some time (drawn as a
    dashed line with the alias names). ``link``, when given, is a URL
    prefix a point's version is appended to, so a click opens that version.
    """
    marks = marks or {}
    title = f'<text x="{LEFT}" y="16" font-size="14" font-weight="600" fill="{INK}">{text(key)}</text>'
    if not points:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
            f'height="{HEIGHT}" role="img" aria-label="{text(key)}: no values">{title}'
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="{INK}">no values</text></svg>'
        )
    versions = [version for version, _ in points]
    values = [value for _, value in points]
    low_v, high_v = min(values), max(values)
    if low_v == high_v:
        pad = abs(low_v) * 0.1 or 1.0
        low_v, high_v = low_v - pad, high_v + pad
    margin = (high_v - low_v) * 0.06  # no point on the frame's edge
    low_v, high_v = low_v - margin, high_v + margin
    y_ticks = ticks(low_v, high_v)
    y_ticks = [tick for tick in y_ticks if low_v <= tick <= high_v] or y_ticks
    first, last = min(versions), max(versions)
    x = _Scale(first - 0.5, last + 0.5, LEFT, WIDTH - RIGHT)
    y = _Scale(low_v, high_v, HEIGHT - BOTTOM, TOP)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{text(key)} across {len(points)} versions" class="chart">',
        title,
    ]
    for tick in y_ticks:
        ty = _number(y(tick))
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty}" y2="{ty}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{ty}" font-size="11" text-anchor="end" dominant-baseline="middle" '
            f'fill="{INK}">{text(_label(tick))}</text>'
        )
    for tick in ticks(first, last, 8):
        if tick != int(tick) or not first <= tick <= last:
            continue
        tx = _number(x(tick))
        parts.append(
            f'<text x="{tx}" y="{HEIGHT - BOTTOM + 16}" font-size="11" text-anchor="middle" fill="{INK}">'
            f"{int(tick)}</text>"
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" font-size="11" text-anchor="middle" '
        f'fill="{INK}">version</text>'
    )
    labelled_until = -math.inf  # labels closer than this would overlap: their line keeps its tooltip
    for version, aliases in sorted(marks.items()):
        if not first <= version <= last:
            continue
        mx = _number(x(version))
        label = ", ".join(aliases)
        parts.append(
            f'<line x1="{mx}" x2="{mx}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="{MARK}" stroke-dasharray="4 3">'
            f"<title>{text(label)} → version {version}</title></line>"
        )
        half_width = len(label) * 3.2
        if x(version) - half_width >= labelled_until:
            labelled_until = x(version) + half_width + 4
            parts.append(
                f'<text x="{mx}" y="{TOP - 6}" font-size="10" text-anchor="middle" fill="{MARK}">{text(label)}</text>'
            )
    drawn = thin(points, int(WIDTH - LEFT - RIGHT))
    path = " ".join(f"{_number(x(version))},{_number(y(value))}" for version, value in drawn)
    parts.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    if len(points) <= MAX_DOTS:
        for version, value in points:
            dot = (
                f'<circle cx="{_number(x(version))}" cy="{_number(y(value))}" r="3.5" '
                f'fill="{MARK if version in marks else LINE}">'
                f"<title>version {version}: {text(_label(value))}</title></circle>"
            )
            if link is not None:
                dot = f'<a href="{text(link + str(version))}">{dot}</a>'
            parts.append(dot)
    parts.append("</svg>")
    return "".join(parts)


def lineage_graph(chain: Sequence[str], *, link: Mapping[str, str] | None = None) -> str:
    """The ancestors of a version and the version itself, oldest on the left, as boxes joined by arrows.

    ``chain`` is nearest-first, as :meth:`Registry.ancestors` returns it,
    with the version itself in front; ``link`` maps a reference to the URL
    its box opens.
    """
    link = link or {}
    boxes = list(reversed(chain))
    box_w, box_h, gap = 150, 34, 36
    width = max(len(boxes) * (box_w + gap) - gap + 8, 160)
    height = box_h + 12
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="lineage" class="lineage">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>',
    ]
    for index, ref in enumerate(boxes):
        bx = 4 + index * (box_w + gap)
        current = index == len(boxes) - 1
        shown = ref if len(ref) <= 20 else ref[:19] + "…"
        box = (
            f'<rect x="{bx}" y="6" width="{box_w}" height="{box_h}" rx="6" '
            f'fill="{"#dbeafe" if current else "#f9fafb"}" stroke="{LINE if current else INK}"/>'
            f'<text x="{bx + box_w / 2}" y="{6 + box_h / 2}" font-size="12" text-anchor="middle" '
            f'dominant-baseline="middle" fill="{INK}"><title>{text(ref)}</title>{text(shown)}</text>'
        )
        if ref in link and not current:
            box = f'<a href="{text(link[ref])}">{box}</a>'
        parts.append(box)
        if index:
            ax = bx - gap
            parts.append(
                f'<line x1="{ax}" x2="{bx - 2}" y1="{6 + box_h / 2}" y2="{6 + box_h / 2}" stroke="{INK}" '
                'marker-end="url(#arrow)"/>'
            )
    parts.append("</svg>")
    return "".join(parts)
