"""The demo agrees with the library it demonstrates: ``best``'s choice, and one meaning per metric key."""

from __future__ import annotations

from pathlib import Path

from registry import Registry
from registry.demo import KNN_NAME, TRAIN_METRIC, run_demo


def test_the_demo_promotes_what_best_picks_and_keeps_accuracy_one_metric(tmp_path: Path) -> None:
    said: list[str] = []
    result = run_demo(tmp_path / "r", say=said.append)
    assert result.production is not None
    with Registry(tmp_path / "r") as reg:
        versions = reg.versions(KNN_NAME)
        top = max(v.metrics["accuracy"] for v in versions)
        tied = [v.version for v in versions if v.metrics["accuracy"] == top]
        assert len(tied) > 1  # the data set has a tie at the top: the case where oldest and newest disagree
        assert result.production.version == max(tied) == reg.best(KNN_NAME, "accuracy").version
        assert reg.get(f"{KNN_NAME}@production").version == max(tied)
        history = reg.metrics_history(KNN_NAME, "accuracy")
        assert [(p.version, p.step) for p in history] == [(v.version, None) for v in versions]  # registered, once
        assert [(p.version, p.value) for p in result.history] == [(p.version, p.value) for p in history]
        (train,) = reg.metrics_history(KNN_NAME, TRAIN_METRIC)
        assert train.version == result.production.version and 0 < train.value <= 1
    assert any(f"{TRAIN_METRIC} " in line and "training flowers" in line for line in said)
