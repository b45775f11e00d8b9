"""Prediction canaries: a few input rows and what the model answered for them, kept as JSON and re-run later.

A model that loads can still predict something else after an upgrade of
scikit-learn or numpy; ``InconsistentVersionWarning`` only says it might.
At registration the model is asked (``predict``, and ``predict_proba``,
``decision_function`` and ``transform`` where it has them) about at most
:data:`MAX_ROWS` rows of its input, and the rows and answers are kept with
the version; :meth:`~registry.facade.Registry.check` asks the loaded model
again and compares.

* Rows are evenly spaced over ``input_example`` or the training ``X`` of
  ``data=`` (first and last included): the same data gives the same rows,
  with no random state.
* The outputs are those of the in-memory model the caller fitted, before it
  was serialized: a lossy round trip through the artifact is then a change
  the first ``check`` shows, rather than a baseline it accepts.
* JSON only, never pickle: reading a canary runs no code. Each column keeps
  its dtype (numpy's, ``category`` with its categories, pandas' nullable
  ``Int64``/``boolean``/``string``…), floats keep every bit (NaN and
  infinity spelled as strings), datetimes as int64 ticks. Sparse input,
  time zones and other exotic dtypes are refused with the reason (the
  version then has no canary), never approximated.
* A canary stays under :data:`MAX_CANARY_BYTES` of JSON: over it, half the
  rows, until it fits (or there is no canary, with the reason).
* Comparing: floats with ``numpy.isclose(actual, recorded, rtol, atol)``,
  NaN equal to NaN; labels (ints, bools, strings, objects, datetimes)
  exactly; shapes must match.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np

from registry.domain import Canary, CellChange, CheckReport, MethodCheck
from registry.errors import CatalogError, InvalidArgument, InvalidData
from registry.inputs.canary_child import EXTENSION_DTYPES, ask, cell, column, dtype_text, own_copy
from registry.inputs.canary_child import METHODS as METHODS
from registry.inputs.canary_child import Unsupported as Unsupported
from registry.inputs.canary_child import as_array as as_array
from registry.inputs.canary_child import decode_array as decode_array
from registry.inputs.canary_child import decode_input as _decode_input
from registry.inputs.canary_child import encode_array as encode_array

#: At most this many rows are kept.
MAX_ROWS = 64
#: At most this many bytes of JSON, inputs and outputs together.
MAX_CANARY_BYTES = 256 * 1024
#: Floats within ``atol + rtol * |recorded|`` of what was recorded pass as "within tolerance".
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
#: Changed cells listed per method (all are counted).
MAX_SHOWN = 20


class NotTabular(Unsupported):
    """The input is not rows of columns (1-D, empty, ragged): there are no rows to ask the model about."""


# -- writing ---------------------------------------------------------------


def _is_frame(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "iloc")


def sample_rows(X: Any, count: int = MAX_ROWS) -> Any:
    """At most ``count`` rows of ``X``, evenly spaced, first and last included: deterministic, no random state.

    >>> sample_rows(np.arange(200).reshape(100, 2), 3)[:, 0].tolist()
    [0, 100, 198]
    """
    if hasattr(X, "tocsr"):
        raise Unsupported("the input is a sparse matrix, which a canary does not store")
    if not _is_frame(X) and not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except ValueError:
            raise NotTabular("the input is a list whose rows differ in length") from None
    if len(X.shape) != 2 or X.shape[1] < 1:
        raise NotTabular(f"the input has shape {tuple(X.shape)}, not (n_samples, n_features)")
    n = int(X.shape[0])
    if n == 0:
        raise NotTabular("the input has no rows")
    rows = np.arange(n) if n <= count else np.unique(np.linspace(0, n - 1, count).round().astype(np.int64))
    if _is_frame(X):
        return X.iloc[rows].reset_index(drop=True)
    return X[rows]


def _frame_column(name: Any, series: Any) -> dict[str, Any]:
    dtype = series.dtype
    try:
        if isinstance(dtype, np.dtype):
            return column(series.to_numpy())
        text = str(dtype)
        if text == "category":
            categories = column(np.asarray(series.cat.categories))
            codes = series.cat.codes.to_numpy().tolist()
            return {"dtype": "category", "ordered": bool(dtype.ordered), "categories": categories, "codes": codes}
        if text in EXTENSION_DTYPES:
            return {"dtype": text, "extension": True, "values": [cell(v) for v in series.astype(object).tolist()]}
    except Unsupported as exc:
        raise Unsupported(f"column {name!r}: {exc}") from None
    raise Unsupported(f"column {name!r} has dtype {dtype}, which a canary does not store")


def encode_input(rows: Any) -> dict[str, Any]:
    """The canary's rows as JSON: a frame's column names and per-column dtypes, or an array's dtype and shape."""
    if _is_frame(rows):
        columns = list(rows.columns)
        if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in columns):
            raise Unsupported("the input's column names are not all strings or integers")
        data = [_frame_column(name, rows.iloc[:, i]) for i, name in enumerate(columns)]
        return {"kind": "frame", "rows": int(rows.shape[0]), "columns": columns, "data": data}
    try:
        return {"kind": "array", **encode_array(np.asarray(rows))}
    except Unsupported as exc:
        raise Unsupported(f"the input array: {exc}") from None


def decode_input(spec: dict[str, Any]) -> Any:
    """The inverse of :func:`encode_input`: the same rows, of the same dtypes (a frame needs pandas)."""
    if isinstance(spec, dict) and spec.get("kind") == "frame":
        from registry import frames

        frames.require_pandas("checking a canary recorded from a DataFrame")
    return _decode_input(spec)


def methods_of(model: Any) -> list[str]:
    """The canary methods ``model`` has (scikit-learn hides those a fitted estimator cannot run)."""
    found = []
    for name in METHODS:
        try:
            if callable(getattr(model, name, None)):
                found.append(name)
        except Exception:  # an attribute that cannot be read (an unfitted step of a pipeline) is one it has not
            continue
    return found


def size_of(canary: Canary) -> int:
    return len(json.dumps(canary.to_json(), separators=(",", ":"), ensure_ascii=False).encode())


#: The longest JSON a float becomes (``-2.2250738585072014e-308``), and its comma.
_FLOAT_BYTES = 25


def _size_bound(value: Any) -> int:
    """At least the UTF-8 length of ``value`` as compact JSON, found without encoding its numbers.

    A canary is mostly lists of floats, and ``json.dumps`` spends its time
    writing their digits: a third of a small model's canary here. A float
    takes at most :data:`_FLOAT_BYTES`, an integer one digit per 3.3 bits, a
    string six bytes a character (``\\uXXXX``), so a list of them is bounded
    by counting element types (in C) and lengths. Anything else is measured.
    """
    if isinstance(value, dict):
        return 2 + sum(_size_bound(key) + _size_bound(item) + 2 for key, item in value.items())
    if isinstance(value, list | tuple):
        counts = Counter(map(type, value))
        bound = 2 + len(value) + counts.pop(float, 0) * _FLOAT_BYTES
        if not counts:
            return bound
        return bound + sum(_size_bound(item) for item in value if type(item) is not float)
    if type(value) is float:
        return _FLOAT_BYTES
    if type(value) is int:
        return 2 + value.bit_length() * 31 // 100 + 1
    if isinstance(value, str):
        return 2 + 6 * len(value)
    if value is None or isinstance(value, bool):
        return 5
    return len(json.dumps(value, ensure_ascii=False).encode())


def fits(canary: Canary) -> bool:
    """Whether ``canary`` keeps within :data:`MAX_CANARY_BYTES` of JSON; encoded only when the bound is too high."""
    return _size_bound(canary.to_json()) <= MAX_CANARY_BYTES or size_of(canary) <= MAX_CANARY_BYTES


def _attempt(model: Any, source: Any, count: int, methods: list[str], what: str) -> Canary | None:
    rows = sample_rows(source, count)
    n = int(rows.shape[0])
    # The rows are kept as they are now, before any method sees them, and each method gets its own copy:
    # a model that changes its input in place must not record (or be compared on) rows it rewrote.
    try:
        inputs, unsupported = encode_input(rows), None
    except Unsupported as exc:
        inputs, unsupported = None, exc
    outputs: dict[str, Any] = {}
    for position, method in enumerate(methods):
        try:
            answer = getattr(model, method)(own_copy(rows))
        except Exception as exc:
            if position > 0:
                continue  # only the first method must answer: the others are extra evidence
            raise InvalidData(
                f"the model's {method} fails on its own {what} ({n} rows): {type(exc).__name__}: {exc}; "
                f"nothing was written. Give an {what} the model accepts, or register with canary=False"
            ) from exc
        try:
            output = as_array(answer)
            if output.ndim == 0 or output.shape[0] != n:
                continue  # not one answer per row: nothing to compare row by row
            outputs[method] = encode_array(output)
        except Unsupported:
            if position == 0:
                raise
            continue
    if unsupported is not None:
        raise unsupported  # only now: a model that cannot answer its own rows is refused first
    if not outputs or inputs is None:
        return None
    return Canary(inputs=inputs, outputs=outputs, rows=n)


def make_canary(model: Any, source: Any, *, what: str) -> Canary | None:
    """The canary of ``model`` on rows of ``source`` (``what``: ``"input_example"`` or ``"data"``).

    ``None`` when the model has none of :data:`METHODS`. Raises
    :class:`~registry.errors.InvalidData` when the first of them fails on
    those rows (a model that cannot predict its own example is refused), and
    :class:`Unsupported` (the caller's note) for input or output kept inexactly.
    """
    methods = methods_of(model)
    if not methods:
        return None
    count = MAX_ROWS
    while True:
        canary = _attempt(model, source, count, methods, what)
        if canary is None or fits(canary):
            return canary
        if canary.rows <= 1:
            raise Unsupported(f"one row of it and its outputs is over {MAX_CANARY_BYTES // 1024} KiB of JSON")
        count = canary.rows // 2


# -- checking --------------------------------------------------------------


def check_tolerances(rtol: Any, atol: Any) -> tuple[float, float]:
    """``rtol`` and ``atol`` as floats, or :class:`InvalidArgument` naming the bad one."""
    checked = []
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value >= 0):
            raise InvalidArgument(f"{name} must be a finite number >= 0, not {value!r}")
        checked.append(float(value))
    return checked[0], checked[1]


def _plain(value: Any) -> Any:
    """A cell as a JSON scalar, for the report."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes | np.datetime64 | np.timedelta64) or not isinstance(
        value, str | int | float | bool | type(None)
    ):
        return str(value)
    return value


def _same(expected: Any, actual: Any) -> bool:
    """Exact equality of two labels, NaN (and NaT, None) equal to itself; ``1`` is not ``"1"``."""
    if isinstance(expected, str) != isinstance(actual, str):
        return False
    try:
        if expected == actual:
            return True
    except Exception:
        return False
    both_missing = [
        v is None
        or (isinstance(v, float | np.floating) and math.isnan(v))
        or (isinstance(v, np.datetime64) and np.isnat(v))
        for v in (expected, actual)
    ]
    return all(both_missing)


def compare(
    method: str, expected: np.ndarray[Any, Any], actual: np.ndarray[Any, Any], rtol: float, atol: float
) -> MethodCheck:
    """How ``actual`` differs from the recorded ``expected``: equal, within tolerance, or which cells changed."""
    shape, dtype = tuple(int(d) for d in expected.shape), dtype_text(expected.dtype)
    if actual.shape != expected.shape:
        detail = f"shape {tuple(actual.shape)} where {shape} was recorded"
        return MethodCheck(method, "changed", shape, dtype, changed_cells=int(expected.size), detail=detail)
    dtype_note: str | None = None
    if actual.dtype != expected.dtype:
        dtype_note = f"dtype {dtype_text(actual.dtype)} where {dtype} was recorded"
    numeric = expected.dtype.kind in "biuf" and actual.dtype.kind in "biuf"
    abs_diff = rel_diff = None
    if numeric and "f" in (expected.dtype.kind, actual.dtype.kind):
        e, a = expected.astype(np.float64), actual.astype(np.float64)
        bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
        exact = bool(np.array_equal(a, e, equal_nan=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            abs_diff = np.abs(a - e)
            rel_diff = np.where(e != 0, abs_diff / np.abs(e), np.where(abs_diff == 0, 0.0, np.inf))
    elif numeric or expected.dtype.kind in "Mm":
        bad = ~((expected == actual) | (_missing(expected) & _missing(actual)))
        exact = not bad.any()
    else:
        flat = [
            not _same(x, y) for x, y in zip(expected.reshape(-1).tolist(), actual.reshape(-1).tolist(), strict=True)
        ]
        bad = np.array(flat, dtype=bool).reshape(expected.shape)
        exact = not bad.any()
    changed = np.argwhere(bad)
    status = "equal" if exact else ("within tolerance" if not len(changed) else "changed")
    changes = []
    for index in changed[:MAX_SHOWN]:
        at = tuple(int(i) for i in index)
        column = None if len(at) < 2 else int(np.ravel_multi_index(at[1:], expected.shape[1:]))
        cell_abs = cell_rel = None
        if abs_diff is not None and rel_diff is not None and math.isfinite(abs_diff[at]):
            cell_abs = float(abs_diff[at])
            cell_rel = float(rel_diff[at]) if math.isfinite(rel_diff[at]) else None
        changes.append(CellChange(method, at[0], column, _plain(expected[at]), _plain(actual[at]), cell_abs, cell_rel))
    max_abs = max_rel = None
    if abs_diff is not None and rel_diff is not None:
        finite_abs, finite_rel = abs_diff[np.isfinite(abs_diff)], rel_diff[np.isfinite(rel_diff)]
        max_abs = float(finite_abs.max()) if finite_abs.size else None
        max_rel = float(finite_rel.max()) if finite_rel.size else None
    return MethodCheck(method, status, shape, dtype, int(len(changed)), max_abs, max_rel, tuple(changes), dtype_note)


def _missing(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    missing: np.ndarray[Any, Any] = np.zeros(values.shape, dtype=bool)
    if values.dtype.kind in "Mm":
        missing = np.isnat(values)
    elif values.dtype.kind == "f":
        missing = np.isnan(values)
    return missing


def decoded(canary: Canary, ref: str) -> tuple[Any, dict[str, np.ndarray[Any, Any]]]:
    """The canary's rows and recorded outputs; :class:`CatalogError` for JSON modelshelf never writes."""
    try:
        return decode_input(canary.inputs), {method: decode_array(spec) for method, spec in canary.outputs.items()}
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, MemoryError) as exc:
        raise CatalogError(
            f"the canary of {ref} holds JSON modelshelf never writes ({type(exc).__name__}: {exc}): the catalog was "
            "edited outside modelshelf; restore it from a backup"
        ) from None


def run_canary(
    model: Any,
    canary: Canary,
    ref: str,
    *,
    rtol: float,
    atol: float,
    environment: tuple[str, ...] = (),
) -> CheckReport:
    """Ask ``model`` about the canary's rows again and compare every method's answer with the recorded one.

    A method that is gone or raises is a changed output (its ``detail``
    says what happened), never an exception: the report is the answer.
    """
    rows, expected = decoded(canary, ref)
    answers = ask(model, rows, list(expected))
    return report_of(canary, ref, expected, answers, rtol=rtol, atol=atol, environment=environment)


def report_of(
    canary: Canary,
    ref: str,
    expected: dict[str, np.ndarray[Any, Any]],
    answers: dict[str, Any],
    *,
    rtol: float,
    atol: float,
    environment: tuple[str, ...] = (),
) -> CheckReport:
    """The report on a canary's recorded outputs against the answers a model gave (arrays, or why not as str)."""
    checks = []
    order = {name: position for position, name in enumerate(METHODS)}
    for method, recorded in sorted(expected.items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
        shape, dtype, cells = tuple(int(d) for d in recorded.shape), dtype_text(recorded.dtype), int(recorded.size)
        answer = answers.get(method, f"no answer came back for {method}")
        if isinstance(answer, str):
            checks.append(MethodCheck(method, "changed", shape, dtype, cells, detail=answer))
        else:
            checks.append(compare(method, recorded, answer, rtol, atol))
    statuses = {check.status for check in checks}
    status = "changed" if "changed" in statuses else "within tolerance" if "within tolerance" in statuses else "equal"
    return CheckReport(ref, status, canary.rows, rtol, atol, tuple(checks), environment)


#: Why a version has no canary, as ``CheckReport.note`` says it.
NO_CANARY_NOTE = "registered before canaries, with canary=False, or with no input_example= or data= to keep rows of"


def verdict(report: CheckReport) -> str:
    """One sentence on a report, for warnings and errors: what passed, or which rows and cells changed."""
    if report.status == "no canary":
        return f"it has no prediction canary to check ({NO_CANARY_NOTE})"
    return f"its canary {report.summary}"
