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

#: At most this many rows are kept.
MAX_ROWS = 64
#: At most this many bytes of JSON, inputs and outputs together.
MAX_CANARY_BYTES = 256 * 1024
#: The methods asked, in this order; the first the model has must answer.
METHODS = ("predict", "predict_proba", "decision_function", "transform")
#: Floats within ``atol + rtol * |recorded|`` of what was recorded pass as "within tolerance".
DEFAULT_RTOL = 1e-6
DEFAULT_ATOL = 1e-9
#: Changed cells listed per method (all are counted).
MAX_SHOWN = 20
#: pandas extension dtypes a canary keeps, by name (values as JSON scalars, NA as null).
_EXTENSION_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"}
    | {"boolean", "string", "str"}
)
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class Unsupported(Exception):
    """Input or output a canary cannot keep exactly; the message says why (the version gets no canary)."""


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


def _dtype_text(dtype: np.dtype[Any]) -> str:
    """A name that reads back to ``dtype``: ``float64``, ``<U5``, ``datetime64[ns]``."""
    try:
        return dtype.name if np.dtype(dtype.name) == dtype else dtype.str
    except TypeError:
        return dtype.str


def _text(value: str) -> str:
    """``value`` as a plain str, refused when JSON could not carry it exactly (a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unsupported(f"it holds text that is not valid Unicode ({value!r:.40})") from None
    return str(value)


def _cell(value: Any) -> Any:
    """One value of an object column as JSON: str, bool, int, finite float, None; non-finite floats tagged."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        return None
    raise Unsupported(f"it holds a {type(value).__name__} value ({value!r:.40}), which a canary does not store")


def _uncell(value: Any) -> Any:
    if isinstance(value, dict):
        return _NON_FINITE[value["float"]]
    return value


def _column(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A 1-D numpy array as ``{"dtype", "values"}``, every value exact."""
    dtype = values.dtype
    kind = dtype.kind
    if kind in "biu":
        encoded: list[Any] = values.tolist()
    elif kind == "U":
        encoded = [_text(v) for v in values.tolist()]
    elif kind == "f":
        encoded = [v if math.isfinite(v) else repr(v) for v in values.astype(np.float64).tolist()]
    elif kind in "Mm":
        encoded = values.view(np.int64).tolist()  # NaT is int64's minimum: exact both ways
    elif kind == "O":
        encoded = [_cell(v) for v in values.tolist()]
    else:
        raise Unsupported(f"its dtype is {dtype}, which a canary does not store")
    return {"dtype": _dtype_text(dtype), "values": encoded}


def _uncolumn(spec: dict[str, Any]) -> np.ndarray[Any, Any]:
    dtype = np.dtype(spec["dtype"])
    values = spec["values"]
    if dtype.kind == "f":
        return np.array([_NON_FINITE[v] if isinstance(v, str) else v for v in values], dtype=dtype)
    if dtype.kind in "Mm":
        return np.array(values, dtype=np.int64).view(dtype)
    if dtype.kind == "O":
        array = np.empty(len(values), dtype=object)
        array[:] = [_uncell(v) for v in values]
        return array
    if dtype.kind not in "biuU":
        raise ValueError(f"dtype {dtype} is not one a canary stores")
    return np.array(values, dtype=dtype)


def encode_array(values: np.ndarray[Any, Any]) -> dict[str, Any]:
    """Any numpy array as JSON: its shape, dtype and values in C order."""
    return {"shape": list(values.shape), **_column(values.reshape(-1))}


def decode_array(spec: dict[str, Any]) -> np.ndarray[Any, Any]:
    """The inverse of :func:`encode_array`."""
    return _uncolumn(spec).reshape(tuple(spec["shape"]))


def _frame_column(name: Any, series: Any) -> dict[str, Any]:
    dtype = series.dtype
    try:
        if isinstance(dtype, np.dtype):
            return _column(series.to_numpy())
        text = str(dtype)
        if text == "category":
            categories = _column(np.asarray(series.cat.categories))
            codes = series.cat.codes.to_numpy().tolist()
            return {"dtype": "category", "ordered": bool(dtype.ordered), "categories": categories, "codes": codes}
        if text in _EXTENSION_DTYPES:
            return {"dtype": text, "extension": True, "values": [_cell(v) for v in series.astype(object).tolist()]}
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
    if spec["kind"] == "array":
        return decode_array(spec)
    if spec["kind"] != "frame":
        raise ValueError(f"unknown input kind {spec['kind']!r}")
    from registry import frames

    parts: list[Any] = []
    for column in spec["data"]:
        if column["dtype"] == "category":
            parts.append(("category", column["codes"], _uncolumn(column["categories"]), column["ordered"]))
        elif column.get("extension"):
            if column["dtype"] not in _EXTENSION_DTYPES:
                raise ValueError(f"extension dtype {column['dtype']!r} is not one a canary stores")
            parts.append(("extension", column["dtype"], [_uncell(v) for v in column["values"]]))
        else:
            parts.append(_uncolumn(column))
    return frames.canary_frame(list(spec["columns"]), parts)


def as_array(output: Any) -> np.ndarray[Any, Any]:
    """A method's answer as a dense numpy array (sparse matrices densified, frames as their values)."""
    if hasattr(output, "toarray"):
        output = output.toarray()
    elif hasattr(output, "to_numpy"):
        output = output.to_numpy()
    try:
        return np.asarray(output)
    except ValueError:  # multi-output predict_proba: one array per output, of different widths
        raise Unsupported("its output is a list of arrays of different shapes") from None


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


def own_copy(rows: Any) -> Any:
    """A copy of canary rows for one call, so that what one method does to its input reaches no other."""
    copy = getattr(rows, "copy", None)
    return copy() if callable(copy) else rows


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
    shape, dtype = tuple(int(d) for d in expected.shape), _dtype_text(expected.dtype)
    if actual.shape != expected.shape:
        detail = f"shape {tuple(actual.shape)} where {shape} was recorded"
        return MethodCheck(method, "changed", shape, dtype, changed_cells=int(expected.size), detail=detail)
    dtype_note: str | None = None
    if actual.dtype != expected.dtype:
        dtype_note = f"dtype {_dtype_text(actual.dtype)} where {dtype} was recorded"
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
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
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
    checks = []
    order = {name: position for position, name in enumerate(METHODS)}
    for method, recorded in sorted(expected.items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
        shape, dtype, cells = tuple(int(d) for d in recorded.shape), _dtype_text(recorded.dtype), int(recorded.size)
        try:
            function = getattr(model, method, None)
            detail = f"the loaded model has no {method}"
        except Exception as exc:  # a property that raises: the method is as good as gone
            function, detail = None, f"the loaded model's {method} cannot be read: {type(exc).__name__}: {exc}"
        if not callable(function):
            checks.append(MethodCheck(method, "changed", shape, dtype, cells, detail=detail))
            continue
        try:
            answer = as_array(function(own_copy(rows)))
        except Exception as exc:
            detail = f"{method} raised {type(exc).__name__}: {exc}"
            checks.append(MethodCheck(method, "changed", shape, dtype, cells, detail=detail))
            continue
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
