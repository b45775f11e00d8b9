"""Request bodies as model input: the JSON shapes MLflow's scoring server takes, and CSV.

* ``{"inputs": [[…], …]}`` or ``{"instances": [[…], …]}``: rows, one value
  per feature; ``{"instances": [{"col": v, …}, …]}`` and ``{"inputs":
  {"col": […], …}}`` name the columns.
* ``{"dataframe_split": {"columns": […], "data": [[…], …]}}`` (an
  ``index`` is accepted and ignored) and ``{"dataframe_records": [{…}, …]}``.
* ``text/csv``: a header row, then one row per sample.

Rows become a NumPy array, or a DataFrame with the signature's column
names when the version was fitted on named columns; named columns become a
DataFrame, reordered to the signature's order when they are the same
names (a JSON object has no order). Every way a body can be wrong is a
:class:`RequestRefused` with a 4xx status and a message saying what to
send instead: a client error is never a 500.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from registry import frames
from registry.domain import InputSignature
from registry.errors import MissingDependency

#: The keys of a JSON body that carry the input; exactly one of them, and optionally ``params``.
SHAPES = ("inputs", "instances", "dataframe_split", "dataframe_records")
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
_SCALARS = (int, float, str, bool, type(None))


class RequestRefused(Exception):
    """A request the server will not predict on: an HTTP status, a short code, and what to do instead."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad(message: str) -> RequestRefused:
    return RequestRefused(400, "BAD_REQUEST", message)


def media_type(header: str | None) -> str:
    """The media type of a ``Content-Type`` header, lower case; JSON when absent; 415 for another charset.

    >>> media_type("application/json; charset=UTF-8"), media_type(None), media_type("text/csv")
    ('application/json', 'application/json', 'text/csv')
    """
    if header is None or not header.strip():
        return JSON_TYPE
    kind, *parameters = (part.strip() for part in header.split(";"))
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestRefused(415, "UNSUPPORTED_MEDIA_TYPE", f"the body must be UTF-8, not charset={value.strip()}")
    kind = kind.lower()
    if kind not in (JSON_TYPE, CSV_TYPE):
        raise RequestRefused(
            415, "UNSUPPORTED_MEDIA_TYPE", f"Content-Type {kind!r} is not taken: send {JSON_TYPE} or {CSV_TYPE}"
        )
    return kind


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"the body is not UTF-8 text (byte {exc.start} cannot be decoded)") from None


def read_json(body: bytes) -> Any:
    """The JSON document of ``body``; ``NaN`` and ``Infinity`` are read as the floats they name."""
    if not body.strip():
        raise bad('the body is empty: send JSON such as {"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    try:
        return json.loads(_text(body))
    except json.JSONDecodeError as exc:
        raise bad(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise bad("the body's JSON is nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise bad(f"the body's JSON cannot be read: {exc}") from None


def table_of(document: Any, signature: InputSignature | None) -> Any:
    """The model input a decoded JSON body describes (see the module docstring for the shapes)."""
    try:
        return _table_of(document, signature)
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # numpy's, on values it cannot hold
        raise bad(f"the body's values do not make a table: {_first_line(exc)}") from None


def _table_of(document: Any, signature: InputSignature | None) -> Any:
    if not isinstance(document, dict):
        raise bad(f"the body must be a JSON object with one of the keys {', '.join(SHAPES)}, not a {_kind(document)}")
    shapes = [key for key in document if key in SHAPES]
    unknown = [key for key in document if key not in SHAPES and key != "params"]
    if len(shapes) != 1 or unknown:
        found = ", ".join(repr(key) for key in document) or "no keys"
        raise bad(
            f"the body must have exactly one of the keys {', '.join(SHAPES)} (and optionally params); got {found}"
        )
    if document.get("params"):
        raise bad("params are not passed to the model by this server: leave them out")
    shape = shapes[0]
    value = document[shape]
    if shape == "dataframe_records":
        return _records(value, signature, shape)
    if shape == "dataframe_split":
        return _split(value, signature)
    if isinstance(value, dict):
        if shape == "instances":
            raise bad("instances must be a list of rows or of records, not an object")
        return _columns(value, signature)
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        return _records(value, signature, shape)
    return _rows(value, signature, shape)


def csv_table(body: bytes, signature: InputSignature | None) -> Any:
    """A ``text/csv`` body (header row first) as a DataFrame, columns in the signature's order when they match."""
    text = _text(body)
    if not text.strip():
        raise bad("the CSV body is empty: send a header row, then one row per sample")
    try:
        frame = frames.csv_frame(text, purpose="a CSV request")
    except MissingDependency as exc:
        raise _needs_pandas(exc) from None
    except (ValueError, TypeError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise bad(f"the CSV body could not be read: {_first_line(exc)}") from None
    return _ordered(frame, signature)


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _needs_pandas(exc: MissingDependency) -> RequestRefused:
    return RequestRefused(415, "UNSUPPORTED_MEDIA_TYPE", f'{exc}; or send rows: {{"inputs": [[...], ...]}}')


def _frame(data: Any, columns: Any, what: str) -> Any:
    try:
        return frames.input_frame(data, columns, purpose=f"{what} (named columns)")
    except MissingDependency as exc:
        raise _needs_pandas(exc) from None
    except (ValueError, TypeError) as exc:
        raise bad(f"{what} is not a table: {_first_line(exc)}") from None


def _rows(rows: Any, signature: InputSignature | None, what: str) -> Any:
    """A list of rows as an array, or as a frame under the signature's names when the model was fitted on them."""
    if not isinstance(rows, list):
        raise bad(f"{what} must be a list of rows, each a list of values, not a {_kind(rows)}")
    if not rows:
        raise bad(f"{what} has no rows: send at least one")
    names = signature.feature_names if signature is not None else None
    if names is not None and all(isinstance(row, list) and len(row) == len(names) for row in rows):
        for row in rows:
            _check_flat(row, what)
        return _frame(rows, list(names), what)
    try:
        array = np.asarray(rows)
    except ValueError:
        raise bad(f"the rows of {what} differ in length: give every row one value per feature") from None
    if array.dtype == object:
        array = _numbers_or_objects(rows, array, what)
    return array


def _check_flat(row: list[Any], what: str) -> None:
    for value in row:
        if not isinstance(value, _SCALARS):
            raise bad(f"{what}: a row holds a {_kind(value)}; each value must be a number, string, boolean or null")


def _numbers_or_objects(rows: list[Any], array: Any, what: str) -> Any:
    """Rows of numbers and nulls as floats (null is NaN); other mixtures stay objects for the model to judge."""
    if array.ndim != 2:
        raise bad(f"the rows of {what} differ in length, or hold lists: give every row one value per feature")
    numeric = True
    for row in rows:
        for value in row:
            if isinstance(value, list | dict):
                raise bad(f"{what}: a row holds a {_kind(value)}; each value must be a number, string, boolean or null")
            if isinstance(value, str):
                numeric = False
    return np.asarray(rows, dtype=float) if numeric else array


def _records(records: Any, signature: InputSignature | None, what: str) -> Any:
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise bad(f"{what} must be a list of records (objects of column: value)")
    if not records:
        raise bad(f"{what} has no records: send at least one")
    for record in records:
        _check_flat(list(record.values()), what)
    return _ordered(_frame(records, None, what), signature)


def _columns(columns: dict[str, Any], signature: InputSignature | None) -> Any:
    if not columns or not all(isinstance(values, list) for values in columns.values()):
        raise bad("inputs as an object must map each column name to a list of values")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise bad("inputs as an object must give every column the same number of values (at least one)")
    for values in columns.values():
        _check_flat(values, "inputs")
    return _ordered(_frame(columns, None, "inputs"), signature)


def _split(split: Any, signature: InputSignature | None) -> Any:
    if not isinstance(split, dict) or "data" not in split or set(split) - {"columns", "data", "index"}:
        raise bad('dataframe_split must be an object with "data" and optionally "columns" and "index"')
    columns, data = split.get("columns"), split["data"]
    if columns is None:
        return _rows(data, signature, "dataframe_split data")
    if not isinstance(columns, list) or not all(
        isinstance(name, str) or (isinstance(name, int) and not isinstance(name, bool)) for name in columns
    ):  # pandas' to_dict(orient="split") of an unnamed frame gives 0, 1, 2...
        raise bad("dataframe_split columns must be a list of column names (strings, or numbers for unnamed columns)")
    if not isinstance(data, list) or not data:
        raise bad("dataframe_split data must be a non-empty list of rows")
    for row in data:
        if not isinstance(row, list) or len(row) != len(columns):
            raise bad(f"every row of dataframe_split data must be a list of {len(columns)} values, one per column")
        _check_flat(row, "dataframe_split data")
    return _ordered(_frame(data, columns, "dataframe_split"), signature)


def _ordered(frame: Any, signature: InputSignature | None) -> Any:
    """``frame`` with its columns in the signature's order, when they are exactly the signature's names."""
    names = signature.feature_names if signature is not None else None
    columns = list(frame.columns)
    if names is not None and len(set(columns)) == len(columns) and set(columns) == set(names):
        return frame[list(names)]
    if len(frame) == 0:
        raise bad("the table has no rows: send at least one")
    return frame


def refuse_missing(X: Any, ref: str) -> None:
    """422 when ``X`` holds NaN or infinity, for a model that takes neither (its ``allow_nan`` tag is false)."""
    found = _first_missing(X)
    if found is not None:
        row, column, value = found
        raise RequestRefused(
            422,
            "MISSING_VALUES",
            f"{ref}: row {row}, column {column} is {value}; this model does not take missing or infinite values "
            "(scikit-learn's allow_nan is false for it): send a number",
        )


def refuse_infinite(X: Any, ref: str) -> None:
    """422 when ``X`` holds infinity: no scikit-learn estimator takes it, NaN-tolerant ones included."""
    found = _first_missing(X, nan=False)
    if found is not None:
        row, column, value = found
        raise RequestRefused(
            422, "MISSING_VALUES", f"{ref}: row {row}, column {column} is {value}; send a finite number"
        )


def _first_missing(X: Any, *, nan: bool = True) -> tuple[int, str, str] | None:
    """The first (row, column, what) that is NaN (if ``nan``) or infinite, in a float array or frame's numbers."""
    if frames.is_frame(X):
        for position, name in enumerate(X.columns):
            column = X.iloc[:, position]
            if column.dtype.kind != "f":
                if nan and column.dtype == object and column.isna().any():
                    return int(np.flatnonzero(column.isna().to_numpy())[0]), repr(name), "null"
                continue
            found = _bad_cell(column.to_numpy()[:, None], nan)
            if found is not None:
                return found[0], repr(name), found[2]
        return None
    if isinstance(X, np.ndarray) and X.dtype.kind == "f" and X.ndim == 2:
        return _bad_cell(X, nan)
    return None


def _bad_cell(values: Any, nan: bool) -> tuple[int, str, str] | None:
    finite = np.isfinite(values)
    if finite.all():
        return None
    wrong = ~finite if nan else np.isinf(values)
    if not wrong.any():
        return None
    row, column = (int(i) for i in np.argwhere(wrong)[0])
    value = float(values[row, column])
    return row, str(column), "NaN (or null)" if math.isnan(value) else str(value)
