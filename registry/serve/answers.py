"""Predicting on one request's body, in a worker thread, and the JSON that goes back.

:func:`answer` does everything a prediction request costs — parsing,
the signature check, the missing-value check, the model call, encoding
— so the event loop only moves bytes. Predictions are JSON that any
parser reads: NaN and infinity become ``null`` (Python's own ``NaN``
token is not JSON), NumPy scalars plain numbers, a DataFrame one record
per row (as MLflow's server answers).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np

from registry import frames
from registry.errors import SignatureMismatch
from registry.inputs.validated import check_input
from registry.serve import payloads
from registry.serve.payloads import RequestRefused
from registry.serve.served import Served

log = logging.getLogger("modelshelf.serve")


def model_input(served: Served, media_type: str, body: bytes) -> Any:
    """The body as the model's input, checked against the version's signature (422 naming what differs)."""
    signature = served.mv.input_signature
    if media_type == payloads.CSV_TYPE:
        X = payloads.csv_table(body, signature)
    else:
        X = payloads.table_of(payloads.read_json(body), signature)
    if signature is not None:
        try:
            check_input(served.mv, X)
        except SignatureMismatch as exc:
            raise RequestRefused(422, "SIGNATURE_MISMATCH", str(exc)) from None
    if signature is not None and signature.feature_names is None and frames.is_frame(X):
        X = X.to_numpy()  # fitted on an array: named columns, once checked, would only draw scikit-learn's warning
    if served.allow_nan is False:
        payloads.refuse_missing(X, served.ref)
    elif served.allow_nan is True:
        payloads.refuse_infinite(X, served.ref)
    return X


def answer(served: Served, method: str, media_type: str, body: bytes) -> bytes:
    """``{"predictions": …, "model": "name:7"}`` for one request, as UTF-8 JSON bytes."""
    X = model_input(served, media_type, body)
    try:
        output = getattr(served.model, method)(X)
    except (ValueError, TypeError) as exc:  # what scikit-learn raises for input it cannot take
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:1000]
        raise RequestRefused(422, "INVALID_INPUT", f"{served.ref}: {method} refused this input: {first}") from None
    except Exception as exc:
        log.exception("%s: %s failed", served.ref, method)
        raise RequestRefused(
            500, "PREDICTION_FAILED", f"{served.ref}: {method} raised {type(exc).__name__}; the server log has more"
        ) from None
    return encode({"predictions": jsonable(output), "model": served.ref})


def encode(document: Any) -> bytes:
    """Compact JSON; anything NaN or infinite that got through becomes ``null``."""
    try:
        return json.dumps(document, separators=(",", ":"), allow_nan=False, default=_default).encode()
    except ValueError:  # a NaN in a nested list: clean the tree once, on this rare path only
        return json.dumps(_finite(document), separators=(",", ":"), allow_nan=False, default=_default).encode()


def jsonable(output: Any) -> Any:
    """A model's output as lists, numbers, strings and ``None``."""
    if hasattr(output, "toarray") and not isinstance(output, np.ndarray):  # a scipy sparse matrix
        output = output.toarray()
    if isinstance(output, np.ndarray):
        if output.dtype.kind in "fc" and not np.isfinite(output).all():
            cleaned: Any = output.astype(object)
            cleaned[~np.isfinite(output)] = None
            return cleaned.tolist()
        if output.dtype.kind in "mM":
            text: Any = output.astype(str).astype(object)
            text[np.isnat(output)] = None
            return text.tolist()
        return output.tolist()
    if frames.is_frame(output):
        return [_finite(record) for record in output.to_dict(orient="records")]
    if hasattr(output, "to_list"):  # a pandas Series
        return _finite(output.to_list())
    return output


def _default(value: Any) -> Any:
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return jsonable(value)
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
