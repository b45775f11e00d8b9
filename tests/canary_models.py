"""Models whose predictions depend on a value of this module, to make "the same bytes predict differently" real.

An upgrade of scikit-learn or numpy changes code that a pickled model calls
without changing the pickle's bytes. These estimators call into this module
the same way: their artifact names ``tests.canary_models.ShiftedRegressor``,
and what its ``predict`` returns depends on :data:`SHIFT` (or
:data:`LABELS`) as this module defines it in the process that loads it. A
test changes the value (``monkeypatch.setattr``, or ``$CANARY_SHIFT`` in a
second process) and the registered bytes, verified by checksum, then
predict something else: the fault a canary exists to catch, caused for real.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

#: Added to every prediction of :class:`ShiftedRegressor`; a second process sets it with ``$CANARY_SHIFT``.
SHIFT = float(os.environ.get("CANARY_SHIFT", "0"))
#: The labels :class:`MappedClassifier` predicts, by class index.
LABELS = ("setosa", "versicolor", "virginica")


class ShiftedRegressor(RegressorMixin, BaseEstimator):
    """Least squares, plus this module's :data:`SHIFT`: the same coefficients, another module, other outputs."""

    def fit(self, X: Any, y: Any) -> ShiftedRegressor:
        X = np.asarray(X, dtype=float)
        self.coef_, *_ = np.linalg.lstsq(np.c_[X, np.ones(len(X))], np.asarray(y, dtype=float), rcond=None)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> Any:
        X = np.asarray(X, dtype=float)
        return np.c_[X, np.ones(len(X))] @ self.coef_ + SHIFT


class MappedClassifier(ClassifierMixin, BaseEstimator):
    """Nearest class mean, naming classes through this module's :data:`LABELS` (labels compared exactly)."""

    def fit(self, X: Any, y: Any) -> MappedClassifier:
        X, y = np.asarray(X, dtype=float), np.asarray(y)
        self.classes_ = np.unique(y)
        self.means_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> Any:
        distances = ((np.asarray(X, dtype=float)[:, None, :] - self.means_[None]) ** 2).sum(axis=2)
        return np.array([LABELS[i] for i in distances.argmin(axis=1)], dtype=object)
