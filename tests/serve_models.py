"""A model whose predict takes a while, so that a test can stop a server while a request is in flight."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

#: Seconds each call of :meth:`SlowRegressor.predict` sleeps (registration's canary sleeps too, once).
DELAY = 1.5


class SlowRegressor(RegressorMixin, BaseEstimator):
    """Predicts the first column, after :data:`DELAY` seconds."""

    def fit(self, X: Any, y: Any) -> SlowRegressor:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> Any:
        time.sleep(DELAY)
        return np.asarray(X, dtype=float)[:, 0]
