"""How the command line prints: rich tables on a terminal, tab-separated text in a pipe, JSON on request.

Every command that prints data builds rows once and hands them here, so the
three renderings cannot drift apart. The JSON shapes are documented in the
README ("Command line") and kept stable: keys are only ever added.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from registry.domain import AliasPeriod, Event, Lineage, MetricPoint, ModelSummary, ModelVersion

SPARK = "▁▂▃▄▅▆▇█"

if TYPE_CHECKING:
    from registry.store.protocol import ProgressReporter


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def is_terminal() -> bool:
    return console().is_terminal


def timestamp(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and ``word``, in the plural unless there is exactly one.

    >>> plural(1, "version"), plural(3, "version"), plural(0, "entry", "entries")
    ('1 version', '3 versions', '0 entries')
    """
    return f"{count} {word if count == 1 else many or word + 's'}"


def number(value: float) -> str:
    return f"{value:.6g}"


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def emit_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], changed: AbstractSet[int] = frozenset()
) -> None:
    """A table: boxed and coloured on a terminal, a header line and tab-separated rows otherwise.

    ``changed`` holds indexes of rows to highlight (diff).
    """
    out = console()
    if not out.is_terminal:
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            sys.stdout.write("\t".join(_cell(value) for value in row) + "\n")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for index, row in enumerate(rows):
        table.add_row(*(_cell(value) for value in row), style="bold yellow" if index in changed else None)
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return number(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value).replace("\t", " ").replace("\n", " ")


def sparkline(values: Sequence[float]) -> str:
    """A one-line chart of ``values``: one block character per value, scaled between min and max."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low or 1.0
    return "".join(SPARK[round((value - low) / span * (len(SPARK) - 1))] for value in values)


def version_json(mv: ModelVersion) -> dict[str, Any]:
    """The stable JSON form of a version (see the README)."""
    return {
        "name": mv.name,
        "version": mv.version,
        "ref": mv.ref,
        "checksum": mv.checksum,
        "size": mv.size,
        "format": mv.format,
        "created_at": mv.created_at.isoformat(),
        "params": mv.params,
        "metrics": mv.metrics,
        "tags": mv.tags,
        "description": mv.description,
        "environment": mv.environment,
        "aliases": list(mv.aliases),
        "imports": None if mv.imports is None else list(mv.imports),
        "imports_scanned": mv.imports_scanned,
        "signed": mv.hmac is not None,
        "lineage": lineage_json(mv.lineage),
        "input_signature": None if mv.input_signature is None else mv.input_signature.to_json(),
    }


def lineage_json(lineage: Lineage | None) -> dict[str, Any] | None:
    return None if lineage is None else lineage.to_json()


def _record_json(record: Any) -> dict[str, Any]:
    """Every field of a dataclass of plain values, times as ISO 8601 (the field names are the JSON keys)."""
    return {
        f.name: (v.isoformat() if isinstance(v := getattr(record, f.name), datetime) else v) for f in fields(record)
    }


def event_json(event: Event) -> dict[str, Any]:
    return _record_json(event)


def period_json(period: AliasPeriod) -> dict[str, Any]:
    return _record_json(period)


def summary_json(summary: ModelSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "latest_version": summary.latest_version,
        "versions": summary.version_count,
        "aliases": summary.aliases,
        "updated_at": None if summary.updated_at is None else summary.updated_at.isoformat(),
    }


def point_json(point: MetricPoint) -> dict[str, Any]:
    return {
        "version": point.version,
        "key": point.key,
        "value": point.value,
        "step": point.step,
        "timestamp": point.timestamp.isoformat(),
    }


def progress_bars() -> ProgressReporter | None:
    """On a terminal, a reporter that draws a bar for object-store transfers of a few megabytes or more.

    It is passed to the store (``Registry(..., progress=)``); off a terminal
    there is nothing to draw, so ``None``.
    """
    if not is_terminal():
        return None

    @contextlib.contextmanager
    def reporter(description: str, total: int) -> Iterator[Callable[[int], None]]:
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress(
            "{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as progress:
            task = progress.add_task(description.split(" ")[0], total=total)
            yield lambda count: progress.advance(task, count)

    return reporter
