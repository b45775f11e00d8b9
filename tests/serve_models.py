"""A model whose predict takes a while, so that a test can stop a server while a request is in flight."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

#: Seconds each call of :meth:`SlowRegressor.predict` sleeps (registration's canary sleeps too, once).
DELAY = 1.5


class SlowRegressor(RegressorMixin, BaseEstimator):
    """Predicts the first column, after :data:`DELAY` seconds (each call noted in ``$SLOW_MARKER``, if set)."""

    def fit(self, X: Any, y: Any) -> SlowRegressor:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> Any:
        marker = os.environ.get("SLOW_MARKER")
        if marker:  # one line per call begun, so a test knows a request is inside predict
            with open(marker, "a") as file:
                file.write("predict\n")
        time.sleep(DELAY)
        return np.asarray(X, dtype=float)[:, 0]
