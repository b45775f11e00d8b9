"""The iris demo behind ``modelshelf demo``: the whole life of a model in a few seconds.

It trains several k-nearest-neighbour classifiers and a logistic regression
on the iris data set that ships with scikit-learn (no download), registers
them, promotes the best with an alias, loads the latest, a pinned and the
aliased version back, and checks each predicts exactly what the in-memory
model predicts. ``accuracy`` is each version's score on the held-out 40 %;
the production version's score on its training flowers is logged later
under its own key, ``train_accuracy``, so that ``accuracy`` keeps meaning
one thing across versions. It reports through ``say`` so that it stays free of any
terminal library; the CLI renders it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from registry.domain import MetricPoint, ModelVersion
from registry.facade import Registry

KNN_NAME = "iris-knn"
LOGREG_NAME = "iris-logreg"
NEIGHBOURS = (1, 3, 5, 9, 15)
#: The production version's score on its own training flowers, logged after registration under its own key.
TRAIN_METRIC = "train_accuracy"


class DemoFailure(AssertionError):
    """A model loaded back from the registry did not predict like the original."""


@dataclass
class DemoResult:
    """What the demo did, for the CLI to print and the tests to check."""

    registered: list[ModelVersion] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    history: list[MetricPoint] = field(default_factory=list)
    production: ModelVersion | None = None


def _same_predictions(expected: Any, loaded: Any, X: Any, what: str) -> str:
    import numpy as np

    if not np.array_equal(expected.predict(X), loaded.predict(X)):
        raise DemoFailure(f"{what} predicts differently after the round trip through the registry")
    return f"{what}: predictions identical to the in-memory model"


def run_demo(home: str | os.PathLike[str], say: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Run the demo in the registry at ``home`` and return what happened."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, random_state=7, stratify=y)
    result = DemoResult()
    trained: dict[int, Any] = {}

    with Registry(home) as reg:
        say(f"registry: {reg.catalog_location}")
        for k in NEIGHBOURS:
            model = KNeighborsClassifier(n_neighbors=k).fit(X_train, y_train)
            mv = reg.register(
                KNN_NAME,
                model,
                metrics={"accuracy": model.score(X_test, y_test)},
                tags={"dataset": "iris", "split": "60/40 stratified, seed 7"},
                description=f"k-nearest neighbours, k={k}",
            )
            trained[mv.version] = model
            result.registered.append(mv)
            say(f"registered {mv.ref}  k={k:<2}  accuracy={mv.metrics['accuracy']:.3f}  {mv.checksum[:19]}…")

        logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X_train, y_train)
        mv = reg.register(
            LOGREG_NAME,
            logreg,
            metrics={"accuracy": logreg.score(X_test, y_test)},
            tags={"dataset": "iris"},
            description="standardized logistic regression",
            format="pickle",
        )
        result.registered.append(mv)
        say(f"registered {mv.ref}  accuracy={mv.metrics['accuracy']:.3f}  (pickle format)")

        knn_versions = [v for v in result.registered if v.name == KNN_NAME]
        # best() itself, among this run's versions: a tie goes to the newest, as everywhere else
        best = reg.best(KNN_NAME, "accuracy", where=f"version >= {knn_versions[0].version}")
        result.production = reg.set_alias(KNN_NAME, "production", best.version)
        say(f"alias production → {best.ref} (best accuracy; a tie goes to the newest version)")

        newest, first = knn_versions[-1], knn_versions[0]
        result.checks.append(
            _same_predictions(trained[newest.version], reg.load(KNN_NAME), X, f"latest ({newest.ref})")
        )
        result.checks.append(_same_predictions(trained[first.version], reg.load(first.ref), X, f"pinned {first.ref}"))
        result.checks.append(
            _same_predictions(trained[best.version], reg.load(f"{KNN_NAME}@production"), X, f"{KNN_NAME}@production")
        )
        result.checks.append(_same_predictions(logreg, reg.load(LOGREG_NAME), X, f"latest {LOGREG_NAME}"))
        for check in result.checks:
            say(f"✓ {check}")

        # Its own key: `accuracy` stays the held-out score of every version, comparable across them.
        train_accuracy = trained[best.version].score(X_train, y_train)
        reg.log_metrics(KNN_NAME, best.version, {TRAIN_METRIC: train_accuracy})
        say(f"logged {TRAIN_METRIC} {train_accuracy:.3f} for {best.ref} (on its {len(y_train)} training flowers)")
        result.history = [
            point
            for point in reg.metrics_history(KNN_NAME, "accuracy")
            if point.version in {v.version for v in knn_versions}
        ]
    return result
