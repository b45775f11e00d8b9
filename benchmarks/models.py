"""The models every tool is measured on, built the same way in every process that needs them."""

from __future__ import annotations

from typing import Any


def small_model() -> Any:
    """A fitted iris LogisticRegression: the issue's "small model" (a few KB pickled)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y)
