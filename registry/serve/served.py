"""One version made ready to serve: loaded through the verified path, its canary re-run, checked against the last.

A :class:`Served` is built whole in a worker thread and never changed
afterwards; the server swaps its one reference to it, so a request sees
either the old version or the new one, never a half-loaded model. What
makes a version unfit is a :class:`SwapRefused` with the ``kind`` that
``/metrics`` counts and the audit trail records.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from registry.domain import ModelVersion
from registry.errors import (
    CanaryMismatch,
    CanaryNotFound,
    CatalogError,
    EnvironmentMismatch,
    InvalidArgument,
    RegistryError,
    StoreError,
    TrustError,
    UnmappableBlob,
)
from registry.facade import Registry
from registry.inputs.signature import incompatibility

#: The model methods a server exposes, each at ``POST /<method>``, where the model has it.
METHODS = ("predict", "predict_proba", "transform")

#: Refusal kinds worth trying again at the next poll: the store or the catalog failed, not the version.
TRANSIENT = frozenset({"unavailable"})


class SwapRefused(Exception):
    """A version that must not be served: ``kind`` is ``load``, ``trust``, ``canary``, ``signature``, ``methods``…"""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Served:
    """A loaded version and what the server needs to know about it, fixed when it was loaded."""

    mv: ModelVersion
    model: Any = field(repr=False)
    methods: frozenset[str]
    allow_nan: bool | None
    canary: str
    loaded_at: float
    notes: tuple[str, ...] = ()
    #: Whether its large arrays are read-only views of the store's file, shared with other processes.
    mapped: bool = False

    @property
    def ref(self) -> str:
        return self.mv.ref


def _allow_nan(model: Any) -> bool | None:
    """scikit-learn's ``allow_nan`` tag of ``model``; ``None`` for objects that are not estimators."""
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return None
    if not isinstance(model, BaseEstimator):
        return None
    try:
        from sklearn.utils import get_tags  # scikit-learn >= 1.6

        return bool(get_tags(model).input_tags.allow_nan)
    except Exception:  # an older scikit-learn, or an estimator whose tags cannot be computed: unknown
        try:
            return bool(model._get_tags()["allow_nan"])
        except Exception:
            return None


def _kind_of(exc: BaseException) -> str:
    if isinstance(exc, CanaryMismatch):
        return "canary"
    if isinstance(exc, TrustError | EnvironmentMismatch):
        return "trust"
    if isinstance(exc, StoreError | CatalogError | OSError):
        return "unavailable"
    return "load"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:2000]


def load_served(registry: Registry, mv: ModelVersion, *, safe: bool = False, mmap: bool = False) -> Served:
    """``mv`` loaded as :meth:`Registry.load` loads it (``check=True`` when it has a canary), ready to serve.

    The version's row is read again after the load: if its checksum, size,
    signature or format changed meanwhile (an edit of the catalog during
    the swap), nothing vouches that the bytes loaded are the ones ``mv``
    describes, and the version is refused. With ``mmap``, a version that
    can be mapped (``load(mmap=True)``: an uncompressed joblib file in a
    local store that only this user can write) is, so that workers share its
    arrays; one that cannot is loaded as usual, and a note says why.
    """
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model, mapped = _load(registry, mv, safe=safe, check=True, mmap=mmap, notes=notes)
                canary = "passed"
            except CanaryNotFound:
                model, mapped = _load(registry, mv, safe=safe, check=False, mmap=mmap, notes=notes)
                canary = "no canary"
            after = registry.get(mv.ref)
        notes += [f"{w.category.__name__}: {w.message}" for w in caught]
    except RegistryError as exc:
        raise SwapRefused(_kind_of(exc), _first_line(exc)) from exc
    except Exception as exc:  # the model's own code failed while unpickling: it is not servable
        raise SwapRefused(_kind_of(exc), _first_line(exc)) from exc
    if (after.checksum, after.size, after.format, after.hmac) != (mv.checksum, mv.size, mv.format, mv.hmac):
        raise SwapRefused(
            "trust",
            f"the catalog row of {mv.ref} changed while it was loading (checksum {mv.checksum} became "
            f"{after.checksum}): not served; look at `modelshelf log {mv.name}`",
        )
    methods = frozenset(name for name in METHODS if callable(getattr(model, name, None)))
    if "predict" not in methods and "transform" not in methods:
        raise SwapRefused("methods", f"{mv.ref} has neither predict nor transform: there is nothing to serve")
    return Served(after, model, methods, _allow_nan(model), canary, time.time(), tuple(notes), mapped)


def _load(registry: Registry, mv: ModelVersion, *, safe: bool, check: bool, mmap: bool, notes: list[str]) -> Any:
    """(the model, whether it is mapped): mapped when asked and the version allows it, else a private copy."""
    if mmap:
        try:
            return registry.load(mv.ref, safe=safe, check=check, mmap=True), True
        except (InvalidArgument, UnmappableBlob) as why:  # a pickle, compressed, an object store, a loose file
            notes.append(f"not memory-mapped, each worker holds its own copy: {_first_line(why)}")
    return registry.load(mv.ref, safe=safe, check=check), False


def compatibility(served: Served, candidate: Served) -> SwapRefused | None:
    """Why ``candidate`` cannot replace ``served`` under the same clients, or ``None``."""
    lost = sorted(served.methods - candidate.methods)
    if lost:
        return SwapRefused(
            "methods", f"{candidate.ref} has no {', '.join(lost)}, which {served.ref} serves: its clients would fail"
        )
    if served.mv.input_signature is None:
        return None
    reason = incompatibility(served.mv.input_signature, candidate.mv.input_signature)
    if reason is None:
        return None
    return SwapRefused("signature", f"{candidate.ref} does not take the input {served.ref} takes: {reason}")
