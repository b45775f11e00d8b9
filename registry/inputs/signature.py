"""Input signatures: what a model takes, recorded at registration and checked before predicting.

The fitted estimator gives the column count, names, classes and output kind;
an input example (or the training data) the dtypes and a few example rows.

* Input is never copied: only ``shape``, ``dtype``, ``dtypes`` and ``columns``
  are read and example rows are sliced from the first five; only lists go
  through ``np.asarray``. pandas, scipy and scikit-learn are not imported here.
* The JSON form (``InputSignature.to_json``) only gains keys; ``from_json``
  ignores unknown ones, so an older modelshelf reads what a newer one wrote.
* A signature stays under :data:`MAX_SIGNATURE_BYTES`: the example goes first,
  then the classes, then the dtypes; feature names stay, correctness first.
* Dtypes compare by kind, as scikit-learn tolerates: bool, int, uint and float
  are numeric; string, object and category are text; datetimes match datetimes.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from registry.domain import InputSignature
from registry.errors import InvalidData, InvalidInputSignature, SignatureMismatch

OUTPUT_KINDS = ("classification", "regression", "transform", "clustering", "outlier")
#: The methods of a :class:`ValidatedModel` that check their first argument.
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_FEATURE_NAMES = 100_000
MAX_EXAMPLE_ROWS = 5
_FIELDS = tuple(f.name for f in fields(InputSignature))
_KINDS = dict.fromkeys("biufc", "numeric") | dict.fromkeys("OUS", "text") | {"M": "datetime", "m": "timedelta"}
_LABELS = {"numeric": "numeric", "text": "string/object/category", "datetime": "datetime", "timedelta": "timedelta"}
#: pandas dtype names numpy does not read, by kind ("string[pyarrow]", "Int64", "datetime64[ns, UTC]").
_PANDAS_NAMES = {
    "text": re.compile(r"category|str|string(\[python\]|\[pyarrow\])?"),
    "numeric": re.compile(r"boolean|U?Int(8|16|32|64)|Float(32|64)"),
    "datetime": re.compile(r"datetime64\[(s|ms|us|ns), .+\]"),
}
_SHOWN = 10


@dataclass(frozen=True)
class _Layout:
    """What an input looks like, read without copying it: one dtype per column, or one for all."""

    shape: tuple[int, ...]
    dtypes: tuple[Any, ...] | None = None
    dtype: Any = None
    names: tuple[str, ...] | None = None

    def dtype_at(self, column: int) -> Any:
        return self.dtypes[column] if self.dtypes is not None else self.dtype


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "columns") and hasattr(X, "dtypes") and hasattr(X, "shape")


def _layout(X: Any) -> _Layout:
    """Describe a DataFrame, array, sparse matrix or list; ``ValueError`` for a ragged list."""
    if _is_dataframe(X):
        columns = tuple(X.columns)
        names = columns if columns and all(isinstance(c, str) for c in columns) else None
        return _Layout(tuple(X.shape), dtypes=tuple(X.dtypes), names=names)
    if hasattr(X, "shape") and hasattr(X, "dtype"):  # numpy arrays, memmaps, scipy sparse matrices
        return _Layout(tuple(X.shape), dtype=X.dtype)
    try:
        array = np.asarray(X)
    except ValueError:
        raise InvalidData("X is a list whose rows differ in length; give every row one value per feature") from None
    return _Layout(array.shape, dtype=array.dtype)


def _dtype_name(dtype: Any) -> str:
    """A name that reads back: ``float64``, ``<U5`` (numpy's ``str160`` would not), ``category``."""
    if isinstance(dtype, np.dtype):
        return dtype.name if _kind_of_name(dtype.name) is not None and np.dtype(dtype.name) == dtype else dtype.str
    return str(dtype)


@functools.lru_cache(maxsize=256)
def _kind_of_name(name: str) -> str | None:
    """The kind of a stored dtype name, or ``None`` when it names no dtype modelshelf knows."""
    try:
        return _KINDS.get(np.dtype(name).kind, "other")
    except (TypeError, ValueError, SyntaxError):
        return next((kind for kind, pattern in _PANDAS_NAMES.items() if pattern.fullmatch(name)), None)


def _json_value(value: Any) -> Any:
    """A JSON-safe scalar: numpy scalars become Python ones; NaN, infinity, NaT and NA become ``None``."""
    if value is None or type(value) is bool:
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, str):  # np.str_ and other subclasses too; lone surrogates escaped, as JSON stores no such text
        return str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.datetime64 | np.timedelta64):
        return None if np.isnat(value) else str(value)
    pandas = sys.modules.get("pandas")  # pd.NA and pd.NaT only come from a pandas that is already imported
    if pandas is not None and pandas.api.types.is_scalar(value) and pandas.isna(value):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _json_tree(value: Any, container: type = tuple) -> Any:
    """Arrays, lists and tuples as nested tuples (or lists) of JSON-safe scalars, such as multi-output ``classes_``."""
    if isinstance(value, np.ndarray | list | tuple):
        return container(_json_tree(item, container) for item in value)
    return _json_value(value)


def _safe_getattr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # an attribute that cannot be read (unfitted, a broken proxy) is one we do not record
        return None


def _output_kind(model: Any) -> str | None:
    """The kind of output of an estimator, from scikit-learn's own predicates; ``None`` for other objects."""
    if not (callable(_safe_getattr(model, "fit")) and callable(_safe_getattr(model, "get_params"))):
        return None
    try:
        from sklearn import base
    except ImportError:
        return None
    predicates = ((base.is_classifier, "classification"), (base.is_regressor, "regression"))
    for predicate, kind in (*predicates, (base.is_outlier_detector, "outlier"), (_is_clusterer, "clustering")):
        try:
            if predicate(model):
                return kind
        except Exception:  # not a BaseEstimator: scikit-learn >= 1.6 raises instead of answering False
            continue
    return "transform" if callable(_safe_getattr(model, "transform")) else None


def _is_clusterer(model: Any) -> bool:
    if _safe_getattr(model, "_estimator_type") == "clusterer":  # scikit-learn < 1.6
        return True
    from sklearn.utils import get_tags  # scikit-learn >= 1.6, where _estimator_type is gone

    return bool(get_tags(model).estimator_type == "clusterer")


def _check_name_count(names: Sequence[Any], what: str) -> None:
    if len(names) > MAX_FEATURE_NAMES:
        raise InvalidInputSignature(
            f"{what} has {len(names)} feature names; modelshelf records at most {MAX_FEATURE_NAMES}: "
            "register with signature={'n_features': N} to record the column count only"
        )


def _shown(names: Sequence[Any]) -> str:
    listed = ", ".join(repr(n) for n in names[:_SHOWN])
    return listed + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _column_difference(expected: tuple[str, ...], actual: tuple[str, ...]) -> str:
    """How ``actual`` columns differ from ``expected`` ones, in words."""
    expected_set, actual_set = set(expected), set(actual)
    missing = [n for n in expected if n not in actual_set]
    unexpected = [n for n in actual if n not in expected_set]
    parts = [f"{what} {_shown(found)}" for what, found in (("missing", missing), ("unexpected", unexpected)) if found]
    if not parts:
        duplicated = _duplicated(actual)
        parts = [f"duplicated {_shown(duplicated)}"] if duplicated else ["same columns in a different order"]
    return "; ".join(parts)


def _duplicated(names: Sequence[str]) -> list[str]:
    return [name for name, count in Counter(names).items() if count > 1]


def _example_rows(X: Any, n_columns: int) -> tuple[tuple[Any, ...], ...] | None:
    """The first rows of ``X`` as JSON-safe tuples; ``None`` when they could never fit the budget."""
    if n_columns * MAX_EXAMPLE_ROWS * 2 > MAX_SIGNATURE_BYTES:
        return None
    if _is_dataframe(X) and hasattr(X, "iloc"):
        rows: Any = X.iloc[:MAX_EXAMPLE_ROWS].itertuples(index=False, name=None)
    elif hasattr(X, "tocsr"):  # sparse, in any format: CSR slices rows
        try:
            rows = X.tocsr()[:MAX_EXAMPLE_ROWS].toarray()
        except (TypeError, ValueError, NotImplementedError):
            return None
    elif isinstance(X, np.ndarray | list | tuple):
        rows = np.asarray(X)[:MAX_EXAMPLE_ROWS]
    else:
        return None
    return tuple(tuple(_json_value(value) for value in row) for row in rows) or None


def _size(signature: InputSignature) -> int:
    return len(json.dumps(signature.to_json(), separators=(",", ":"), ensure_ascii=False).encode())


def infer_signature(model: Any, *, input_example: Any = None, data: Any = None) -> InputSignature | None:
    """The input signature of ``model``, or ``None`` when there is nothing to record.

    Registration calls this so nobody writes a signature by hand. The fitted
    estimator gives the column count, names, classes and output kind;
    ``input_example`` (preferred) or ``data`` (the training ``X``) the dtypes,
    and count and names when the model has none. Up to five rows of
    ``input_example`` (never of ``data``) are kept. ``ValueError`` when the
    example is not 2-D, or it or ``data`` does not fit the model: a wrong
    example documents nothing, and wrong data would be wrong lineage.

    >>> infer_signature(KNeighborsClassifier().fit(X, y)).classes            # doctest: +SKIP
    (0, 1, 2)
    """
    n_features = _safe_getattr(model, "n_features_in_")
    fitted = isinstance(n_features, int | np.integer) and not isinstance(n_features, bool) and n_features > 0
    if not fitted and input_example is None:
        return None
    n_features = int(n_features) if fitted else None
    names = _safe_getattr(model, "feature_names_in_") if fitted else None
    _check_name_count(names if names is not None else (), "the model")
    names = tuple(str(name) for name in names) if names is not None else None
    output = _output_kind(model)
    classes = _json_tree(_safe_getattr(model, "classes_")) if output == "classification" else None
    dtypes = example = None
    what, source = ("input_example", input_example) if input_example is not None else ("data", data)
    layout = _layout(source) if source is not None else None
    if layout is not None and (len(layout.shape) != 2 or layout.shape[1] < 1):
        if what == "input_example":
            raise InvalidData(f"{what} has shape {layout.shape}; expected a 2-D (n_samples, n_features) input")
        layout = None  # data= also feeds the lineage fingerprint, which takes a Series: it just gives no dtypes
    if layout is not None:
        n_columns = layout.shape[1]
        if n_features is not None and n_columns != n_features:
            fix = "pass rows such as X_test[:5]" if what == "input_example" else "pass the X it was fitted on"
            raise InvalidData(
                f"{what} has {n_columns} columns but the model was fitted on {n_features} features; {fix}"
            )
        if names is not None and layout.names is not None and layout.names != names:
            difference = _column_difference(names, layout.names)
            raise InvalidData(
                f"{what} columns differ from the model's feature_names_in_ ({_shown(names)}): {difference}"
            )
        _check_name_count(layout.names or (), what)
        n_features, names = n_features or n_columns, names or layout.names
        dtypes = tuple(_dtype_name(layout.dtype_at(i)) for i in range(n_columns))
        example = _example_rows(input_example, n_columns) if input_example is not None else None
    signature = InputSignature(n_features, names, dtypes, classes, output, example)
    for droppable in ("example", "classes", "dtypes"):  # the feature names stay: correctness first
        if _size(signature) <= MAX_SIGNATURE_BYTES:
            break
        signature = replace(signature, **{droppable: None})
    return signature


def check_agrees(model: Any, signature: InputSignature) -> None:
    """Refuse an explicit ``signature=`` that contradicts the fitted estimator it is registered with.

    Such a signature would make ``load(..., validate=True)`` reject the very
    data the model was trained on.
    """
    n_features = _safe_getattr(model, "n_features_in_")  # read directly: no cap on the model's own names here
    if isinstance(n_features, int | np.integer) and not isinstance(n_features, bool):
        if signature.n_features is not None and signature.n_features != int(n_features):
            raise InvalidInputSignature(
                f"signature says n_features={signature.n_features} but the model was fitted on {int(n_features)} "
                "features; leave signature= out to record the model's own"
            )
    names = _safe_getattr(model, "feature_names_in_")
    if signature.feature_names is not None and names is not None:
        fitted_names = tuple(str(name) for name in names)
        if signature.feature_names != fitted_names:
            difference = _column_difference(fitted_names, signature.feature_names)
            raise InvalidInputSignature(
                f"signature feature_names differ from the model's feature_names_in_: {difference}"
            )


def _sequence(value: Any, field_name: str) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidInputSignature(
            f"signature field {field_name!r} must be a list or tuple, not {type(value).__name__}"
        )
    return tuple(value)


def coerce_signature(
    value: InputSignature | Mapping[str, Any] | object, *, known_dtypes: bool = True
) -> InputSignature:
    """Validate a user-given ``signature=``: an :class:`InputSignature` or a dict of its fields.

    A wrong signature would refuse good input forever, so it fails at
    registration. ``n_features`` is filled in from ``feature_names`` or
    ``dtypes``; the first five ``example`` rows are kept.

    >>> coerce_signature({"feature_names": ["a", "b"], "dtypes": ["float64", "int64"]}).n_features
    2
    >>> coerce_signature({"n_feature": 2})
    Traceback (most recent call last):
    registry.errors.InvalidInputSignature: unknown signature field 'n_feature'; the fields are n_features, feature_names, dtypes, classes, output, example
    """  # noqa: E501
    if isinstance(value, InputSignature):
        value = {name: getattr(value, name) for name in _FIELDS}
    if not isinstance(value, Mapping):
        raise InvalidInputSignature(f"signature must be an InputSignature or a dict, not {type(value).__name__}")
    for key in value:
        if key not in _FIELDS:
            raise InvalidInputSignature(f"unknown signature field {key!r}; the fields are {', '.join(_FIELDS)}")
    n_features, names, dtypes, classes, output, example = (value.get(name) for name in _FIELDS)
    if n_features is not None:
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer) or n_features < 1:
            raise InvalidInputSignature(f"signature field 'n_features' must be a positive int, not {n_features!r}")
        n_features = int(n_features)
    if names is not None:
        names = _sequence(names, "feature_names")
        _check_name_count(names, "signature field 'feature_names'")
        if not all(isinstance(name, str) for name in names):
            raise InvalidInputSignature("signature field 'feature_names' must hold only strings (the column names)")
        names = tuple(str(name) for name in names)
        if _duplicated(names):
            raise InvalidInputSignature(f"signature field 'feature_names' repeats {_shown(_duplicated(names))}")
    if dtypes is not None:
        dtypes = tuple(_dtype_name(d) if isinstance(d, np.dtype) else d for d in _sequence(dtypes, "dtypes"))
        for i, name in enumerate(dtypes):
            # A bundle may carry dtypes this process cannot name (pyarrow, sparse); checks skip those anyway.
            if not isinstance(name, str) or (known_dtypes and _kind_of_name(name) is None) or len(name) > 200:
                known = "'float64', 'int64', 'bool', 'object', 'datetime64[ns]', 'category', 'Int64'"
                raise InvalidInputSignature(
                    f"signature field 'dtypes'[{i}] is {name!r}, not a dtype name such as {known}"
                )
    for field_name, entries in (("feature_names", names), ("dtypes", dtypes)):
        n_features = len(entries) if n_features is None and entries is not None else n_features
        if entries is not None and len(entries) != n_features:
            raise InvalidInputSignature(
                f"signature field {field_name!r} has {len(entries)} entries; n_features is {n_features}"
            )
    if classes is not None:
        classes = _json_tree(_sequence(classes, "classes"))
    if output is not None and output not in OUTPUT_KINDS:
        raise InvalidInputSignature(
            f"signature field 'output' is {output!r}; use one of {', '.join(OUTPUT_KINDS)} or None"
        )
    if example is not None:
        rows = [_sequence(row, "example row") for row in _sequence(example, "example")[:MAX_EXAMPLE_ROWS]]
        if n_features is not None and any(len(row) != n_features for row in rows):
            raise InvalidInputSignature(
                f"signature field 'example' has a row whose length is not n_features ({n_features})"
            )
        example = tuple(tuple(_json_value(v) for v in row) for row in rows) or None
    signature = InputSignature(n_features, names, dtypes, classes, output, example)
    if example and _size(signature) > MAX_SIGNATURE_BYTES:
        raise InvalidInputSignature(
            f"signature field 'example' is too large; keep it under {MAX_SIGNATURE_BYTES} bytes"
        )
    return signature


def _mismatch(ref: str, message: str, expected: Any, actual: Any) -> SignatureMismatch:
    return SignatureMismatch(f"{ref}: {message}", ref=ref, expected=expected, actual=actual)


def check_against(signature: InputSignature, X: Any, ref: str) -> None:
    """Raise :class:`SignatureMismatch` when ``X`` is not what ``signature`` describes.

    The error's ``expected`` and ``actual`` are shapes (``(None, 4)``: any
    number of rows of four columns), column counts, column-name tuples or
    dtype names, depending on what differs.
    """
    n = signature.n_features
    try:
        layout = _layout(X)
    except ValueError as exc:
        raise _mismatch(ref, str(exc), (None, n), None) from None
    if len(layout.shape) != 2:
        hint = " For a single sample use X.reshape(1, -1)" if len(layout.shape) < 2 else ""
        hint += ", for a single feature X.reshape(-1, 1)" if hint and n == 1 else ""
        shown_n = n if n is not None else "n_features"
        message = f"expected a 2-D input of shape (n_samples, {shown_n}); got shape {layout.shape}.{hint}"
        raise _mismatch(ref, message, (None, n), layout.shape)
    expected_names = signature.feature_names
    if expected_names is not None and layout.names is not None and layout.names != expected_names:
        difference, wanted = _column_difference(expected_names, layout.names), _shown(expected_names)
        message = f"the columns of X do not match the model's: {difference}. Pass exactly the columns {wanted}"
        raise _mismatch(
            ref, f"{message}, in this order: X[list(mv.input_signature.feature_names)]", expected_names, layout.names
        )
    unnamed = expected_names is not None and layout.names is None  # an array where a DataFrame was fitted
    if n is not None and layout.shape[1] != n:
        if unnamed:
            message = f"{_wants_frame(expected_names, X, layout)}: {layout.shape[1]} columns where {n} were expected"
            raise _mismatch(ref, f"{message}. {_frame_hint(X, same_count=False)}", n, layout.shape[1])
        message = f"expected {n} features (columns) per sample; got {layout.shape[1]} (X has shape {layout.shape})"
        trained_on = f": {_shown(expected_names)}" if expected_names else ""
        raise _mismatch(ref, f"{message}. Pass the columns the model was trained on{trained_on}", n, layout.shape[1])
    wrong = []
    for i, expected in enumerate(signature.dtypes or ()):
        actual = layout.dtype_at(i)
        expected_kind, actual_kind = _kind_of_name(expected), _KINDS.get(getattr(actual, "kind", None) or "")
        if expected_kind in _LABELS and actual_kind is not None and expected_kind != actual_kind:
            wrong.append((i, expected, expected_kind, _dtype_name(actual), actual_kind))
    if wrong:
        i, expected, expected_kind, actual, actual_kind = wrong[0]
        names = expected_names or layout.names
        column = repr(names[i]) if names is not None else str(i)
        more = f" (and {len(wrong) - 1} more columns)" if len(wrong) > 1 else ""
        message = f"column {column} is {actual} ({_LABELS[actual_kind]}) where {expected} ({_LABELS[expected_kind]})"
        hint = f"Convert it, for example with .astype({expected!r}), or pass data of the kind the model was trained on"
        if unnamed:
            message = f"{_wants_frame(expected_names, X, layout)}; its column {i} is {actual} where {expected}"
            hint = _frame_hint(X, same_count=True)
        raise _mismatch(ref, f"{message} was expected{more}. {hint}", expected, actual)


def _frame_hint(X: Any, *, same_count: bool) -> str:
    """What to pass instead of an array to a model fitted on named columns."""
    hint = "Pass a DataFrame with these columns"
    if isinstance(X, np.ndarray) and X.dtype.kind == "O":
        return hint + " (the frame itself: .to_numpy() and .values turn a frame of mixed columns into objects)"
    if same_count:
        hint += ", for example pd.DataFrame(X, columns=mv.input_signature.feature_names) if X holds them in order"
    return hint


def _wants_frame(names: Sequence[str] | None, X: Any, layout: _Layout) -> str:
    """ "expected a DataFrame with the named columns …; got an array …": what a model fitted on a frame wants."""
    if _is_dataframe(X):
        got = "a DataFrame without these column names"
    elif hasattr(X, "tocsr"):
        got = f"a sparse matrix of shape {layout.shape}"
    elif isinstance(X, np.ndarray):
        got = f"a NumPy array of dtype {_dtype_name(layout.dtype)} and shape {layout.shape}"
    else:
        got = f"a {type(X).__name__} of shape {layout.shape}"
    wanted = _shown(names or ())
    return f"expected a DataFrame with the named columns {wanted} (the model was fitted on them); got {got}"


def incompatibility(served: InputSignature, candidate: InputSignature | None) -> str | None:
    """Why input that ``served`` accepts might not fit ``candidate``, or ``None`` when it would.

    A server that swaps one version for another under the same clients must
    not start refusing (or silently misreading) what they send: the column
    count, the names where both versions have them, and each column's kind
    must agree. A candidate without a signature is incompatible: the server
    could no longer check input at all.

    >>> incompatibility(InputSignature(n_features=4), InputSignature(n_features=3))
    'it takes 3 features where the served version takes 4'
    """
    if candidate is None:
        return "it has no input signature, so input could no longer be checked (register it with input_example=)"
    if served.n_features is not None and candidate.n_features is not None and served.n_features != candidate.n_features:
        return f"it takes {candidate.n_features} features where the served version takes {served.n_features}"
    if served.feature_names is not None and candidate.feature_names is not None:
        if served.feature_names != candidate.feature_names:
            difference = _column_difference(served.feature_names, candidate.feature_names)
            return f"its columns differ from the served version's: {difference}"
    for i, (old, new) in enumerate(zip(served.dtypes or (), candidate.dtypes or (), strict=False)):
        old_kind, new_kind = _kind_of_name(old), _kind_of_name(new)
        if old_kind in _LABELS and new_kind in _LABELS and old_kind != new_kind:
            names = candidate.feature_names or served.feature_names
            column = repr(names[i]) if names is not None else str(i)
            return f"its column {column} is {new} where the served version takes {old}"
    return None
