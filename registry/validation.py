"""Validation of what a version records: params, metrics, tags, description.

Everything here runs before anything is written, so a bad value costs the
caller one clear :class:`~registry.errors.InvalidInput` (a ``ValueError``:
``InvalidMetric``, ``InvalidParam``, ``InvalidTag``, ``InvalidStep``) naming
the offending key, and leaves no blob and no catalog row behind. The limits
come from :mod:`registry.limits`, which the catalog's columns are sized by.

* Metrics are finite real numbers. SQLite stores NaN as NULL and JSON has no
  infinity, so the check must be here, in code, not left to the database.
* Explicit params must already be JSON (dicts with string keys, lists, str,
  int, finite float, bool, None); tuples are accepted and come back as lists,
  as they would from any JSON store.
* Captured params (``get_params(deep=True)`` of an estimator) are *made*
  JSON-safe instead: numpy scalars become numbers, non-finite floats the
  strings ``"nan"``/``"inf"``, and nested estimators, callables and types their
  repr, because the user did not choose those values and should not be
  refused for them.
* Query arguments: a result ``limit`` fits the engines' 32-bit integers, and
  a ``since``/``moment`` is a timezone-aware time (text without an offset is
  UTC, as everywhere in modelshelf).
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from registry.errors import InvalidArgument, InvalidInput, InvalidMetric, InvalidParam, InvalidStep, InvalidTag
from registry.limits import MAX_KEY_LENGTH, MAX_LIMIT, MAX_PARAM_INT, MAX_STEP

MAX_TAG_VALUE_LENGTH = 5000
MAX_DESCRIPTION_LENGTH = 65536
MAX_PARAMS_DEPTH = 32
MAX_PARAMS_JSON_BYTES = 4 * 1024 * 1024
_MAX_CAPTURED_SEQUENCE = 1000


def dumps(value: Any) -> str:
    """Serialize JSON the one way the catalog stores it: strict, compact, key-sorted."""
    return json.dumps(value, allow_nan=False, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def storable_text(text: str) -> bool:
    """Whether ``text`` can be stored: valid UTF-8 (no lone surrogate such as ``"\\ud800"``) and no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_key(kind: str, key: object, error: type[InvalidInput]) -> str:
    if not isinstance(key, str):
        raise error(f"{kind} key {key!r} is a {type(key).__name__}; keys must be strings")
    if not key or len(key) > MAX_KEY_LENGTH or not storable_text(key):
        raise error(
            f"{kind} key {key[:60]!r} is invalid: keys are 1-{MAX_KEY_LENGTH} characters of valid Unicode without NUL"
        )
    return key


def _mapping(kind: str, value: object, error: type[InvalidInput]) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise error(f"{kind} must be a dict, not {type(value).__name__}")
    return value


def validate_metrics(metrics: object) -> dict[str, float]:
    """Return the metrics as ``{key: float}``, or raise :class:`InvalidMetric` naming the bad metric.

    >>> validate_metrics({"accuracy": 0.97, "n_errors": 3})
    {'accuracy': 0.97, 'n_errors': 3.0}
    """
    checked: dict[str, float] = {}
    for key, value in _mapping("metrics", metrics, InvalidMetric).items():
        _check_key("metric", key, InvalidMetric)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidMetric(f"metric {key!r} is {value!r} ({type(value).__name__}); metrics must be real numbers")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise InvalidMetric(f"metric {key!r} is {number}; metrics must be finite (no NaN or infinity)")
        checked[key] = number
    return checked


def validate_step(step: object) -> int | None:
    """Return ``step`` if it is ``None`` or an int (not a bool) that a 64-bit column holds, else :class:`InvalidStep`.

    Checked here, not left to the driver: SQLite raises ``OverflowError`` and
    PostgreSQL "out of range" for a larger one, neither naming the step.

    >>> validate_step(3)
    3
    """
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int) or not -MAX_STEP <= step <= MAX_STEP:
        raise InvalidStep(f"step must be None or a 64-bit integer, not {step!r}")
    return step


def validate_tags(tags: object) -> dict[str, str]:
    """Return the tags as ``{key: str}``; values must already be strings (stored verbatim)."""
    checked: dict[str, str] = {}
    for key, value in _mapping("tags", tags, InvalidTag).items():
        _check_key("tag", key, InvalidTag)
        if not isinstance(value, str):
            raise InvalidTag(
                f"tag {key!r} is {value!r} ({type(value).__name__}); tag values are strings, "
                f"convert it with str() if that is what you mean"
            )
        if len(value) > MAX_TAG_VALUE_LENGTH or not storable_text(value):
            raise InvalidTag(
                f"tag {key!r} is invalid: values are at most {MAX_TAG_VALUE_LENGTH} characters of valid Unicode "
                "without NUL"
            )
        checked[key] = value
    return checked


def validate_description(description: object) -> str | None:
    """Return the description, or raise :class:`InvalidArgument` if it is not a reasonable string."""
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidArgument(f"description must be a string or None, not {type(description).__name__}")
    if len(description) > MAX_DESCRIPTION_LENGTH or not storable_text(description):
        raise InvalidArgument(
            f"description is invalid: at most {MAX_DESCRIPTION_LENGTH} characters of valid Unicode without NUL"
        )
    return description


def _strict_json(path: str, value: Any, depth: int) -> Any:
    if depth > MAX_PARAMS_DEPTH:
        raise InvalidParam(f"param {path} is nested deeper than {MAX_PARAMS_DEPTH} levels; flatten it")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not storable_text(value):
            raise InvalidParam(f"param {path} is not valid Unicode text (a lone surrogate or NUL)")
        return value
    if isinstance(value, int):
        if not -MAX_PARAM_INT <= value <= MAX_PARAM_INT:
            raise InvalidParam(f"param {path} does not fit in 64 bits; store it as a string")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidParam(f"param {path} is {value}, which JSON cannot store; use None or a string")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str) or not storable_text(key):
                raise InvalidParam(
                    f"param {path} has the key {key!r}; JSON object keys must be strings of valid Unicode without NUL"
                )
            out[key] = _strict_json(f"{path}[{key!r}]", item, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_strict_json(f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    raise InvalidParam(
        f"param {path} is a {type(value).__module__}.{type(value).__qualname__}, which is not "
        "JSON-serializable; convert it (int(), float(), str(), list()) before registering"
    )


def _limit_size(params: dict[str, Any]) -> dict[str, Any]:
    size = len(dumps(params).encode())
    if size > MAX_PARAMS_JSON_BYTES:
        raise InvalidParam(
            f"params take {size} bytes as JSON, more than the limit of {MAX_PARAMS_JSON_BYTES}; "
            "store large configuration as an artifact instead"
        )
    return params


def validate_params(params: object) -> dict[str, Any]:
    """Return explicit params as plain JSON values, or raise :class:`InvalidParam` naming the key.

    >>> validate_params({"k": 3, "layers": (64, 32)})
    {'k': 3, 'layers': [64, 32]}
    """
    checked: dict[str, Any] = {}
    for key, value in _mapping("params", params, InvalidParam).items():
        _check_key("param", key, InvalidParam)
        checked[key] = _strict_json(repr(key), value, 1)
    return _limit_size(checked)


def _json_safe(value: Any, depth: int) -> Any:
    """Best-effort conversion of a captured hyperparameter into JSON."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value if storable_text(value) else value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if hasattr(value, "get_params") or callable(value) or depth >= MAX_PARAMS_DEPTH:
        return repr(value)
    if type(value).__name__ == "bool_":
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value) if -MAX_PARAM_INT <= int(value) <= MAX_PARAM_INT else str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else repr(number)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    size = getattr(value, "size", None)
    if isinstance(value, (list, tuple)):
        size = len(value)
    elif not (isinstance(size, int) and callable(getattr(value, "tolist", None))):
        return repr(value)
    if size > _MAX_CAPTURED_SEQUENCE:
        return f"<{type(value).__name__} of {size} items>"
    items = list(value) if isinstance(value, (list, tuple)) else value.tolist()
    if not isinstance(items, list):  # a 0-d array's tolist() is a scalar
        return _json_safe(items, depth + 1)
    return [_json_safe(item, depth + 1) for item in items]


def capture_params(obj: object) -> dict[str, Any]:
    """The hyperparameters of an object with ``get_params()`` (any scikit-learn estimator), made JSON-safe.

    Objects without ``get_params`` have no params to capture and give ``{}``.
    """
    get_params = getattr(obj, "get_params", None)
    if not callable(get_params) or isinstance(obj, type):
        return {}
    try:
        raw = get_params(deep=True)
    except Exception as exc:  # a third-party get_params may fail in any way
        raise InvalidParam(
            f"could not capture hyperparameters: {type(obj).__name__}.get_params(deep=True) raised "
            f"{type(exc).__name__}: {exc}; pass params={{...}} explicitly"
        ) from exc
    if not isinstance(raw, Mapping):
        return {}
    return _limit_size({str(key): _json_safe(value, 1) for key, value in raw.items()})


def validate_limit(limit: object) -> int | None:
    """A result limit: ``None`` (no limit) or an integer from 1 to the largest the catalog's engines accept."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be None or an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def validate_moment(value: object, what: str) -> datetime:
    """A timezone-aware moment from a datetime or an ISO 8601 string (UTC when the string has no offset)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(
                f"{what} must be an ISO 8601 date or time such as '2026-03-03', not {value!r}"
            ) from None
        if value.tzinfo is None:  # text without an offset means UTC, as everywhere in modelshelf
            value = value.replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{what} must be a timezone-aware datetime or an ISO 8601 string, not {value!r}")
    if value.tzinfo is None:
        raise InvalidArgument(
            f"{what}={value!r} is a naive datetime; modelshelf times are UTC: pass datetime(..., tzinfo=UTC)"
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{what}={value.isoformat()} falls outside the years 1 to 9999 in UTC") from None
    return value
