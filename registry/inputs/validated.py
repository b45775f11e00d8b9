"""Checking input against a version's signature at the moment it is used: ``check_input`` and ``ValidatedModel``.

This module stays free of numpy so that ``import registry`` stays cheap;
the checks themselves (:func:`registry.inputs.signature.check_against`) are
imported on first use.
"""

from __future__ import annotations

import functools
from typing import Any

from registry.domain import InputSignature, ModelVersion
from registry.errors import InvalidArgument, InvalidType, SignatureNotFound

#: The methods of a wrapped model whose first argument is checked.
CHECKED_METHODS = frozenset(
    {"predict", "predict_proba", "predict_log_proba", "decision_function", "transform", "score", "score_samples"}
)
_OWN_ATTRIBUTES = frozenset({"model", "signature", "ref"})


def _check(signature: InputSignature, X: Any, ref: str) -> None:
    from registry.inputs.signature import check_against

    check_against(signature, X, ref)


def check_input(mv: ModelVersion, X: Any) -> None:
    """Check ``X`` against the signature recorded with ``mv`` (:class:`SignatureNotFound` if none), before predicting.

    A wrong column order or a string column fails here, naming the column,
    instead of deep inside scikit-learn or not at all.

    >>> check_input(reg.get("iris:3"), X_test[0])                          # doctest: +SKIP
    SignatureMismatch: iris:3: expected a 2-D input of shape (n_samples, 4); got shape (4,). ...
    """
    if not isinstance(mv, ModelVersion):
        raise InvalidArgument(f"check_input takes a ModelVersion (from Registry.get), not {type(mv).__name__}")
    if mv.input_signature is None:
        raise SignatureNotFound(mv.ref)
    _check(mv.input_signature, X, mv.ref)


class ValidatedModel:
    """A wrapper that checks input against a signature, then calls the model it wraps.

    The :data:`CHECKED_METHODS` (``predict``, ``transform``, ...) check their
    first argument; everything else (``classes_``, ``get_params``, setting
    attributes) goes to the model unchanged, and a method the model lacks
    raises the model's own ``AttributeError``. It is a wrapper, not the
    estimator: ``isinstance(wrapped, KNeighborsClassifier)`` is false, so pass
    ``wrapped.model`` (the plain object) to ``clone`` or a new ``Pipeline``.

    >>> wrapped = reg.load("iris:3", validate=True)                        # doctest: +SKIP
    >>> wrapped.predict(X_test[:2]), wrapped.model                         # doctest: +SKIP
    (array([0, 1]), KNeighborsClassifier(n_neighbors=3))
    """

    def __init__(self, model: Any, signature: InputSignature, ref: str) -> None:
        if not isinstance(signature, InputSignature):
            raise InvalidType(f"signature must be an InputSignature, not {type(signature).__name__}")
        self.__dict__.update(model=model, signature=signature, ref=ref)

    def __getattr__(self, name: str) -> Any:
        try:
            model = self.__dict__["model"]
        except KeyError:  # while unpickling or copying, before the state is restored
            raise AttributeError(name) from None
        attribute = getattr(model, name)
        if name not in CHECKED_METHODS or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if args or "X" in kwargs:
                _check(self.signature, args[0] if args else kwargs["X"], self.ref)
            return attribute(*args, **kwargs)

        return checked

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN_ATTRIBUTES:
            object.__setattr__(self, name, value)
        else:  # on the model: a copy on the wrapper would shadow the value the model goes on using
            setattr(self.model, name, value)

    def __repr__(self) -> str:
        return f"<ValidatedModel: input-checking wrapper of {self.ref!r} around {self.model!r}>"
