"""The canary's JSON codec, and a pre-flight child that runs in *another* interpreter.

Two users, one implementation. In this process :mod:`registry.inputs.canary`
encodes and decodes canaries with these functions. For an upgrade pre-flight
(:mod:`registry.inputs.preflight`) the source of this very file is run with
``python -c`` by the interpreter of another virtual environment, one that
has scikit-learn, joblib and numpy but not necessarily modelshelf: it reads
verified artifact bytes and a canary from standard input, loads the model,
asks it the canary's questions and writes what happened as one JSON object.

So the module imports only the standard library and numpy (pandas, skops
and joblib lazily, where a canary or an artifact needs them), and keeps to
syntax older Pythons read (3.8): a serving image is often behind.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np

#: The methods asked, in this order; the first the model has must answer.
METHODS = ("predict", "predict_proba", "decision_function", "transform")
#: pandas extension dtypes a canary keeps, by name (values as JSON scalars, NA as null).
EXTENSION_DTYPES = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64"}
    | {"boolean", "string", "str"}
)
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
#: At most this many bytes in one decoded array: a canary of 64 rows never comes near it, a crafted one might
#: declare a wide dtype for many values (50 empty strings as ``<U262144`` would take 50 MiB).
MAX_DECODED_BYTES = 16 * 1024 * 1024
#: Longer strings are refused when decoding (a canary's JSON is at most 256 KiB, so it never holds one; an edited
#: catalog or a bundle might, and ``<U100000000`` would allocate 400 MB a value).
MAX_STRING_LENGTH = 256 * 1024


class Unsupported(Exception):
    """Input or output a canary cannot keep exactly; the message says why (the version gets no canary)."""


def dtype_text(dtype: Any) -> str:
    """A name that reads back to ``dtype``: ``float64``, ``<U5``, ``datetime64[ns]``."""
    try:
        return str(dtype.name) if np.dtype(dtype.name) == dtype else str(dtype.str)
    except TypeError:
        return str(dtype.str)


def text(value: str) -> str:
    """``value`` as a plain str, refused when JSON could not carry it exactly (a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unsupported(f"it holds text that is not valid Unicode ({value!r:.40})") from None
    return str(value)


def cell(value: Any) -> Any:
    """One value of an object column as JSON: str, bool, int, finite float, None; non-finite floats tagged."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return text(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values, without importing pandas
        return None
    raise Unsupported(f"it holds a {type(value).__name__} value ({value!r:.40}), which a canary does not store")


def uncell(value: Any) -> Any:
    if isinstance(value, dict):
        return _NON_FINITE[value["float"]]
    return value


def column(values: Any) -> dict[str, Any]:
    """A 1-D numpy array as ``{"dtype", "values"}``, every value exact."""
    dtype = values.dtype
    kind = dtype.kind
    if kind in "biu":
        encoded: list[Any] = values.tolist()
    elif kind == "U":
        encoded = [text(v) for v in values.tolist()]
    elif kind == "f":
        encoded = [v if math.isfinite(v) else repr(v) for v in values.astype(np.float64).tolist()]
    elif kind in "Mm":
        encoded = values.view(np.int64).tolist()  # NaT is int64's minimum: exact both ways
    elif kind == "O":
        encoded = [cell(v) for v in values.tolist()]
    else:
        raise Unsupported(f"its dtype is {dtype}, which a canary does not store")
    return {"dtype": dtype_text(dtype), "values": encoded}


def uncolumn(spec: dict[str, Any]) -> Any:
    """The inverse of :func:`column`; ``ValueError`` for a dtype a canary never stores."""
    dtype = np.dtype(spec["dtype"])
    values = spec["values"]
    if not isinstance(values, list):
        raise ValueError("the values are not a list")
    if dtype.kind == "f":
        return np.array([_NON_FINITE[v] if isinstance(v, str) else v for v in values], dtype=dtype)
    if dtype.kind in "Mm":
        return np.array(values, dtype=np.int64).view(dtype)
    if dtype.kind == "O":
        array = np.empty(len(values), dtype=object)
        array[:] = [uncell(v) for v in values]
        return array
    if dtype.kind not in "biuU":
        raise ValueError(f"dtype {dtype} is not one a canary stores")
    if dtype.kind == "U" and dtype.itemsize // 4 > MAX_STRING_LENGTH:
        raise ValueError(f"dtype {dtype} holds strings longer than a canary ever keeps")
    if len(values) * dtype.itemsize > MAX_DECODED_BYTES:
        raise ValueError(f"{len(values)} values of dtype {dtype} are more than a canary ever keeps")
    return np.array(values, dtype=dtype)


def encode_array(values: Any) -> dict[str, Any]:
    """Any numpy array as JSON: its shape, dtype and values in C order."""
    return {"shape": list(values.shape), **column(values.reshape(-1))}


def decode_array(spec: dict[str, Any]) -> Any:
    """The inverse of :func:`encode_array`."""
    return uncolumn(spec).reshape(tuple(spec["shape"]))


def decode_input(spec: dict[str, Any]) -> Any:
    """The canary's rows with their dtypes: an array, or a DataFrame (imports pandas, which the caller checks)."""
    if spec["kind"] == "array":
        return decode_array(spec)
    if spec["kind"] != "frame":
        raise ValueError(f"unknown input kind {spec['kind']!r}")
    import pandas as pd

    data: dict[int, Any] = {}
    for position, part in enumerate(spec["data"]):
        if part["dtype"] == "category":
            categories = uncolumn(part["categories"])
            data[position] = pd.Categorical.from_codes(part["codes"], categories=categories, ordered=part["ordered"])
        elif part.get("extension"):
            if part["dtype"] not in EXTENSION_DTYPES:
                raise ValueError(f"extension dtype {part['dtype']!r} is not one a canary stores")
            data[position] = pd.array([uncell(v) for v in part["values"]], dtype=part["dtype"])
        else:
            data[position] = uncolumn(part)
    frame = pd.DataFrame(data)
    frame.columns = list(spec["columns"])  # set after: duplicated names survive, as in the frame registered
    return frame


def as_array(output: Any) -> Any:
    """A method's answer as a dense numpy array (sparse matrices densified, frames as their values)."""
    if hasattr(output, "toarray"):
        output = output.toarray()
    elif hasattr(output, "to_numpy"):
        output = output.to_numpy()
    try:
        return np.asarray(output)
    except ValueError:  # multi-output predict_proba: one array per output, of different widths
        raise Unsupported("its output is a list of arrays of different shapes") from None


def own_copy(rows: Any) -> Any:
    """A copy of canary rows for one call, so that what one method does to its input reaches no other."""
    copy = getattr(rows, "copy", None)
    return copy() if callable(copy) else rows


# -- the pre-flight child --------------------------------------------------


def _versions() -> dict[str, str | None]:
    """The versions that decide whether a model loads here, as modelshelf records an environment."""
    found: dict[str, str | None] = {"python": ".".join(str(part) for part in sys.version_info[:3])}
    for key, module in (("scikit-learn", "sklearn"), ("numpy", "numpy"), ("joblib", "joblib"), ("scipy", "scipy")):
        try:
            found[key] = str(__import__(module).__version__)
        except Exception:
            found[key] = None
    return found


def _load(fmt: str, data: bytes, trusted: list[str]) -> Any:
    """The model in ``data``, read the way modelshelf's format of that name writes it."""
    import io

    if fmt == "joblib":
        import joblib

        return joblib.load(io.BytesIO(data))
    if fmt == "pickle":
        import pickle

        return pickle.loads(data)  # noqa: S301 - verified bytes, as load() unpickles them
    if fmt == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(data=data)
        refused = sorted(set(untrusted) - set(trusted))
        if refused:
            raise RuntimeError("the skops artifact has types that are not trusted: " + ", ".join(refused))
        return sio.loads(data, trusted=list(untrusted))
    raise RuntimeError(f"unknown format {fmt!r}")


def _warning_texts(caught: list[Any]) -> list[str]:
    texts: list[str] = []
    for warning in caught:
        line = f"{warning.category.__name__}: {warning.message}"
        if line not in texts:
            texts.append(line)
    return texts


def ask(model: Any, rows: Any, methods: list[str]) -> dict[str, Any]:
    """Each method's answer on the rows as an array; a method that is gone or raises gives why, as a str.

    Never raises for the model's sake: a changed model is an answer, not an error.
    """
    answers: dict[str, Any] = {}
    for method in methods:
        try:
            function = getattr(model, method, None)
        except Exception as exc:  # a property that raises: the method is as good as gone
            answers[method] = f"the loaded model's {method} cannot be read: {type(exc).__name__}: {exc}"
            continue
        if not callable(function):
            answers[method] = f"the loaded model has no {method}"
            continue
        try:
            answers[method] = as_array(function(own_copy(rows)))
        except Exception as exc:
            answers[method] = f"{method} raised {type(exc).__name__}: {exc}"
    return answers


def _encoded(answer: Any) -> dict[str, Any]:
    if isinstance(answer, str):
        return {"error": answer}
    try:
        return encode_array(answer)
    except Unsupported as exc:
        return {"error": f"its output cannot be compared: {exc}"}


def run_child(header: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Load the artifact and re-run its canary; every failure is part of the answer, not an exception."""
    import warnings

    if header.get("probe"):  # the versions are asked once per pre-flight: importing scikit-learn takes a while
        return {"environment": _versions()}
    result: dict[str, Any] = {"loaded": False, "warnings": [], "error": None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = _load(header["format"], data, list(header.get("trusted") or []))
        except BaseException as exc:  # a pickle can raise anything, SystemExit included
            result["error"] = f"{type(exc).__name__}: {exc}"
            result["warnings"] = _warning_texts(caught)
            return result
        result["loaded"] = True
        result["warnings"] = _warning_texts(caught)
        canary = header.get("canary")
        if canary is None:
            return result
        try:
            rows = decode_input(canary["inputs"])
        except ImportError as exc:
            result["canary_error"] = f"its rows need a package this interpreter lacks: {exc}"
            return result
        except Exception as exc:  # an older pandas that lacks a dtype, say: the model loaded all the same
            result["canary_error"] = f"its rows cannot be rebuilt here: {type(exc).__name__}: {exc}"
            return result
        answers = ask(model, rows, [method for method in METHODS if method in canary["outputs"]])
        result["outputs"] = {method: _encoded(answer) for method, answer in answers.items()}
        result["canary_warnings"] = [w for w in _warning_texts(caught) if w not in result["warnings"]]
    return result


def main() -> None:
    """Read a JSON header line and the artifact's bytes from standard input; write the answer to standard output.

    Before anything is imported on the model's behalf, file descriptor 1 is
    copied to a private one and pointed at standard error: whatever the model
    writes — ``print``, ``os.write(1, …)``, C code, an ``atexit`` hook —
    goes to standard error, and the answer alone reaches standard output.
    The process then ends with ``os._exit``: no hook or leftover thread of
    the model's runs after the answer (a model that wants to lie can, as it
    runs here; one that is merely noisy cannot spoil the verdict).
    """
    import os

    answer_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    header = json.loads(stdin.readline())
    data = stdin.read()
    result = run_child(header, data)
    encoded = json.dumps(result).encode()
    with os.fdopen(answer_fd, "wb") as answer:
        answer.write(encoded)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
