"""What each field of a bundle manifest's entry must be, checked for every version before anything is staged.

A manifest is untrusted input even when signed (a trusted exporter can be
buggy, and ``allow_unsigned`` accepts anyone's), and its fields go to the
catalog: a step of ``2**70`` reaches the driver as ``OverflowError``, a
naive timestamp as ``StatementError``, after the blob was published. So
every field of every entry is checked here, with the rules ``register``
applies, and the first bad one raises :class:`~registry.errors.InvalidBundle`
naming the entry and the field; nothing is staged before all of them pass.

Dates (``created_at``, each history point's ``timestamp``) are ISO-8601
with an offset, as ``export`` writes them: a date without one could mean
any zone, and the catalog keeps only UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry.digests import CHECKSUM_PATTERN, checksum_of, digest_of, is_checksum
from registry.domain import Canary, InputSignature, Lineage, MetricPoint
from registry.errors import InvalidBundle, MissingDependency, RegistryError
from registry.formats import get_format
from registry.limits import MAX_BLOB_SIZE
from registry.names import validate_model_name, validate_version
from registry.validation import (
    storable_text,
    validate_description,
    validate_metrics,
    validate_params,
    validate_step,
    validate_tags,
)

ORIGIN_TAG = "modelshelf.imported-from"
MAX_SIZE = MAX_BLOB_SIZE
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,15}(?:Z|[+-][0-9]{2}:[0-9]{2})")
_ENVIRONMENT_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_MAX_ENVIRONMENT_KEYS = 64
_MAX_ENVIRONMENT_VALUE = 255
#: What each text field of a bundle's lineage may hold (the catalog's column sizes).
_LINEAGE_TEXT = {
    "git_commit": r"[0-9a-f]{40}|[0-9a-f]{64}",
    "script": r"[^\x00]{1,4096}",
    "user": r"[^\x00]{1,255}",
    "host": r"[^\x00]{1,255}",
    "modelshelf_version": r"[^\x00]{1,64}",
    "data": CHECKSUM_PATTERN,
}


@dataclass(frozen=True)
class BundleEntry:
    """One version of a bundle, every field checked: what the importer records if its blob hashes right."""

    name: str
    version: int
    #: The blob's SHA-256 in hex (no ``sha256:`` prefix).
    digest: str
    size: int
    format: str
    params: dict[str, Any]
    tags: dict[str, str]
    description: str | None
    environment: dict[str, str | None]
    lineage: Lineage | None
    input_signature: InputSignature | None
    history: tuple[MetricPoint, ...]
    #: The value of the imported-from tag: ``NAME:VERSION CREATED_AT`` as the exporter wrote its date.
    origin: str
    #: The prediction canary the exporter kept (decoded once to prove it is one), or ``None``.
    canary: Canary | None = None

    @property
    def source(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def checksum(self) -> str:
        return checksum_of(self.digest)


def check_entries(entries: list[dict[str, Any]], path: Path) -> list[BundleEntry]:
    """Every manifest entry checked (see the module docstring); two entries for one version are refused."""
    checked: list[BundleEntry] = []
    seen: set[tuple[str, int]] = set()
    for index, entry in enumerate(entries):
        name, version = entry.get("name"), entry.get("version")
        label = f"{name if isinstance(name, str) else _shown(name)[:40]}:{_shown(version)}"
        try:
            checked_entry = check_entry(entry)
        except (RegistryError, KeyError, TypeError, ValueError) as exc:
            detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise InvalidBundle(
                f"{path}: the manifest entry {index} ({label}) is malformed: {detail}; nothing was imported"
            ) from None
        if (checked_entry.name, checked_entry.version) in seen:
            raise InvalidBundle(f"{path}: the manifest lists {checked_entry.source} twice; nothing was imported")
        seen.add((checked_entry.name, checked_entry.version))
        checked.append(checked_entry)
    return checked


def check_entry(entry: dict[str, Any]) -> BundleEntry:
    """One entry's fields, each checked as ``register`` checks it; ``ValueError`` names the first bad one."""
    name = validate_model_name(entry["name"])
    version = validate_version(entry["version"])
    checksum = entry["checksum"]
    if not is_checksum(checksum):
        raise ValueError(f"checksum {_shown(checksum)} is not 'sha256:' and 64 lowercase hex digits")
    size = entry.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_SIZE:
        raise ValueError(f"size {_shown(size)} is not a number of bytes (an integer from 0 to {MAX_SIZE})")
    created_text = entry["created_at"]
    _moment(created_text, "created_at")
    origin = f"{name}:{version} {created_text}"
    tags = validate_tags(entry.get("tags") or {})
    return BundleEntry(
        name=name,
        version=version,
        digest=digest_of(checksum),
        size=size,
        format=get_format(entry.get("format")).name,
        params=validate_params(entry.get("params") or {}),
        tags=validate_tags({**tags, ORIGIN_TAG: origin}),
        description=validate_description(entry.get("description")),
        environment=_environment(entry.get("environment")),
        lineage=_lineage(entry.get("lineage")),
        input_signature=_signature(entry.get("input_signature")),
        history=_history(entry.get("history")),
        origin=origin,
        canary=_canary(entry.get("canary"), f"{name}:{version}"),
    )


def _canary(value: object, ref: str) -> Canary | None:
    """A manifest's canary checked as modelshelf writes one: its size, its row count, and JSON that decodes."""
    from registry.inputs import canary as canaries  # numpy: only for bundles that carry canaries

    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"rows", "inputs", "outputs"}:
        raise ValueError("canary is not an object of rows, inputs and outputs")
    rows, inputs, outputs = value["rows"], value["inputs"], value["outputs"]
    if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= canaries.MAX_ROWS:
        raise ValueError(f"canary rows {_shown(rows)} is not a count from 1 to {canaries.MAX_ROWS}")
    if not isinstance(inputs, dict) or not isinstance(outputs, dict) or not outputs:
        raise ValueError("canary inputs and outputs are not objects (with at least one output)")
    if not all(method in canaries.METHODS for method in outputs):
        raise ValueError(f"canary outputs name methods other than {', '.join(canaries.METHODS)}")
    canary = Canary(inputs=inputs, outputs=outputs, rows=rows)
    if canaries.size_of(canary) > canaries.MAX_CANARY_BYTES:
        raise ValueError(f"canary is over {canaries.MAX_CANARY_BYTES // 1024} KiB of JSON, more than any canary kept")
    shape = inputs.get("shape") if inputs.get("kind") == "array" else [inputs.get("rows")]
    if not isinstance(shape, list) or not shape or shape[0] != rows:
        raise ValueError(f"canary inputs do not hold the {rows} rows it says")
    try:
        canaries.decoded(canary, ref)
    except MissingDependency:
        pass  # rows of a DataFrame, and no pandas here: they are decoded where the canary is checked
    except RegistryError as exc:
        raise ValueError(str(exc).split(": the catalog was edited")[0]) from None
    return canary


def _shown(value: object) -> str:
    text = str(value) if type(value) is int else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _moment(text: object, what: str) -> datetime:
    """An aware UTC datetime from the ISO-8601 text an export writes; anything else is a ``ValueError``."""
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ValueError(f"{what} {_shown(text)} is not an ISO-8601 date and time with its UTC offset")
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{what} {_shown(text)} is not a valid date and time in the years 1 to 9999") from None


def _history(points: object) -> tuple[MetricPoint, ...]:
    if points is None:
        return ()
    if not isinstance(points, list):
        raise ValueError("history is not a list of metric points")
    history = []
    for point in points:
        if not isinstance(point, dict):
            raise ValueError(f"history holds {_shown(point)}, not a metric point")
        key = point.get("key")
        if not isinstance(key, str):
            raise ValueError(f"a history point's key {_shown(key)} is not a metric name")
        value = validate_metrics({key: point.get("value")})[key]
        step = validate_step(point.get("step"))
        history.append(MetricPoint(0, key, value, step, _moment(point.get("timestamp"), "timestamp")))
    return tuple(history)


def _environment(environment: object) -> dict[str, str | None]:
    """The recorded environment: a few package or platform names, each a version string or ``None``."""
    if environment is None:
        return {}
    if not isinstance(environment, dict) or len(environment) > _MAX_ENVIRONMENT_KEYS:
        raise ValueError(f"environment is not an object of at most {_MAX_ENVIRONMENT_KEYS} names")
    for key, value in environment.items():
        if not _ENVIRONMENT_KEY.fullmatch(key):
            raise ValueError(f"environment key {_shown(key)} is not a package or platform name")
        if value is not None and not (
            isinstance(value, str) and len(value) <= _MAX_ENVIRONMENT_VALUE and storable_text(value)
        ):
            raise ValueError(f"environment {key} is {_shown(value)}, not a version string (or null)")
    return dict(environment)


def _lineage(data: object) -> Lineage | None:
    """The lineage of an entry, each field checked for its type and size; its parent is never carried over."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("lineage is not an object")
    texts = {}
    for key, pattern in _LINEAGE_TEXT.items():
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and re.fullmatch(pattern, value)):
            raise ValueError(f"lineage {key} is not a valid value: {_shown(value)}")
        texts[key] = value
    dirty = data.get("git_dirty")
    if dirty is not None and not isinstance(dirty, bool):
        raise ValueError("lineage git_dirty is not a boolean")
    shape, columns = data.get("data_shape"), data.get("data_columns")
    if shape is not None and not (
        isinstance(shape, list) and all(type(n) is int and 0 <= n <= MAX_SIZE for n in shape) and len(shape) <= 64
    ):
        raise ValueError("lineage data_shape is not a list of at most 64 sizes")
    if columns is not None and not (
        isinstance(columns, list) and all(isinstance(c, str) and storable_text(c) for c in columns)
    ):
        raise ValueError("lineage data_columns is not a list of strings")
    return Lineage(
        **texts,
        git_dirty=dirty,
        data_shape=None if shape is None else tuple(shape),
        data_columns=None if columns is None else tuple(columns),
    )


def _signature(value: object) -> InputSignature | None:
    from registry.inputs.signature import coerce_signature  # numpy: only when a bundle is imported

    return None if value is None else coerce_signature(value, known_dtypes=False)
