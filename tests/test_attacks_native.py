"""Native state: allowed Cython types rebuilt from hostile arrays must not crash the process that uses them.

scikit-learn's ``Tree`` and ``KDTree`` and scipy's sparse matrices are on
every safe-load allow-list, and all take their state as arrays they trust:
child and feature indices, an index array into the training data, column
indices. None of them is bounds-checked when used (the Cython and C++ code
runs without bounds checks; scipy validates only in its constructor, which
unpickling skips), so a model
whose tree points a child at node 10**8 reads far outside its arrays — a
segmentation fault at best. This is the scikit-learn counterpart of
PyTorch's CVE-2026-24747 (heap corruption from crafted storage metadata
under ``weights_only=True``).

The payloads are real fitted models whose state was edited the way an
attacker edits bytes. A safe load must refuse them (:class:`UnsafeArtifact`);
a clean Python error at predict time would also do, a crash or a silent
out-of-range read would not. Each load and predict
runs in a forked child of one helper process, so a crash is reported as a
failed test and never takes pytest down with it.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.locations import CATALOG_FILE_NAME


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _tree_with(field: str, value: int) -> Any:
    """A fitted decision tree whose root node's ``field`` was overwritten (children or split feature)."""
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(*_iris())
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value
    model.tree_.__setstate__({**state, "nodes": nodes})
    return model


def _forest_with_child_out_of_range() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0).fit(*_iris())
    tree = model.estimators_[1].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["right_child"][0] = 10**8
    tree.__setstate__({**state, "nodes": nodes})
    return model


def _kd_tree_with_indices_out_of_range() -> Any:
    """A k-nearest-neighbours model whose KD-tree index array points past the training data."""
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="kd_tree").fit(*_iris())
    state = list(model._tree.__getstate__())
    state[1] = state[1].copy()
    state[1][:] = 10**9  # idx_array: every neighbour is a row far outside the data
    model._tree.__setstate__(tuple(state))
    return model


def _hist_gradient_boosting_with(**root: Any) -> Any:
    """``HistGradientBoosting*`` keeps its trees as ``TreePredictor`` node arrays, walked without bounds checks."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=3).fit(*_iris())
    predictor = model._predictors[0][0]
    predictor.nodes = predictor.nodes.copy()
    for field, value in root.items():
        predictor.nodes[field][0] = value
    return model


def _mahalanobis_metric_too_small() -> Any:
    """A ball tree's Mahalanobis metric whose matrix is 1x1 for four features: the distance writes past it.

    glibc reports the result as heap corruption (``free(): invalid next size``): a write, not only a read.
    """
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(4)})
    model.fit(*_iris())
    metric = model._tree.__getstate__()[11]
    p, vec, _ = metric.__getstate__()
    metric.__setstate__((p, vec, np.eye(1)))
    return model


def _metric_vector_too_short(metric: str, param: str) -> Any:
    """A ball tree's weighted metric (``seuclidean``'s V, ``minkowski``'s w) with one weight for four features."""
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="ball_tree", metric=metric, p=3, metric_params={param: np.ones(4)})
    model.fit(*_iris())
    distance = model._tree.__getstate__()[11]
    p, _, matrix = distance.__getstate__()
    distance.__setstate__((p, np.ones(1), matrix))
    return model


def _svc_with_dual_coefficients_cut_short() -> Any:
    """libsvm reads one dual coefficient per support vector; scikit-learn checks the vectors' count, not this."""
    import numpy as np
    from sklearn.svm import SVC

    model = SVC().fit(*_iris())
    model._dual_coef_ = np.ascontiguousarray(model._dual_coef_[:, :1])
    return model


def _gradient_boosting_with_too_many_trees_per_stage() -> Any:
    """Every tree is valid; the ensemble is not: 40 trees per stage for a one-column output.

    ``predict_stages`` adds tree ``k``'s value into output column ``k``
    without bounds checks, so this writes past the output array (glibc then
    reports ``malloc(): invalid size``). No per-tree check can see it.
    """
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _iris()
    model = GradientBoostingClassifier(n_estimators=3, max_depth=2).fit(X, (y > 0).astype(int))
    stages = np.empty((3, 40), dtype=object)
    for stage in range(3):
        for column in range(40):
            stages[stage, column] = model.estimators_[stage, 0]
    model.estimators_ = stages
    return model


def _sparse_with_index_out_of_range() -> Any:
    """A CSR matrix whose column index points far past its width (scipy checks this only in its constructor)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    matrix = csr_matrix(np.eye(4))
    matrix.indices = np.array([0, 1, 2, 10**8], dtype=matrix.indices.dtype)
    return matrix


def _sparse_with(kind: str, field: str, last: int) -> Any:
    """A 4x4 identity in scipy format ``kind`` whose index array ``field`` ends in ``last``."""
    import numpy as np
    import scipy.sparse

    matrix = getattr(scipy.sparse, kind)(np.eye(4))
    values = getattr(matrix, field).copy()
    values[-1] = last
    setattr(matrix, field, values)
    return matrix


def _logistic_with_sparse_coef_out_of_range() -> Any:
    """``LogisticRegression.sparsify()`` keeps ``coef_`` as CSR; predict multiplies by it."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(*_iris()).sparsify()
    model.coef_.indices = model.coef_.indices.copy()
    model.coef_.indices[-1] = 10**8
    return model


#: name -> (what builds the hostile object, what a user then does with it)
HOSTILE: dict[str, tuple[Callable[[], Any], str]] = {
    "tree child out of range": (lambda: _tree_with("left_child", 10**8), "predict"),
    "tree negative child": (lambda: _tree_with("right_child", -(10**8)), "predict"),
    "tree feature out of range": (lambda: _tree_with("feature", 10**8), "predict"),
    "forest member child out of range": (_forest_with_child_out_of_range, "predict"),
    "gradient boosting stages wider than its output": (_gradient_boosting_with_too_many_trees_per_stage, "predict"),
    "kd-tree index out of range": (_kd_tree_with_indices_out_of_range, "predict"),
    "ball-tree mahalanobis matrix too small": (_mahalanobis_metric_too_small, "predict"),
    "ball-tree seuclidean weights too short": (lambda: _metric_vector_too_short("seuclidean", "V"), "predict"),
    "ball-tree minkowski weights too short": (lambda: _metric_vector_too_short("minkowski", "w"), "predict"),
    "hist gradient boosting child out of range": (
        lambda: _hist_gradient_boosting_with(left=10**8, right=10**8),
        "predict",
    ),
    "hist gradient boosting feature out of range": (lambda: _hist_gradient_boosting_with(feature_idx=10**8), "predict"),
    "hist gradient boosting bitset out of range": (
        lambda: _hist_gradient_boosting_with(is_categorical=1, bitset_idx=10**8),
        "predict",
    ),
    "svc dual coefficients cut short": (_svc_with_dual_coefficients_cut_short, "predict"),
    "csr index out of range": (_sparse_with_index_out_of_range, "toarray"),
    "csr row pointer past the data": (lambda: _sparse_with("csr_matrix", "indptr", 10**6), "toarray"),
    "csc index out of range": (lambda: _sparse_with("csc_matrix", "indices", 10**8), "toarray"),
    "coo row out of range": (lambda: _sparse_with("coo_matrix", "row", 10**7), "toarray"),
    "csr_array index out of range": (lambda: _sparse_with("csr_array", "indices", 10**8), "toarray"),
    "sparse coef index out of range": (_logistic_with_sparse_coef_out_of_range, "predict"),
}

CHILD = r"""
import json, os, sys

from sklearn.datasets import load_iris

from registry import Registry, UnsafeArtifact

home, refs = sys.argv[1], json.loads(sys.argv[2])
X, _ = load_iris(return_X_y=True)
with Registry(home) as reg:
    reg.load("warmup", safe=True).predict(X[:2])  # imports happen once, before the forks
    results = {}
    for name, ref in refs.items():
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(reader)
            try:
                loaded = reg.load(ref["ref"], safe=True)
                loaded.predict(X) if ref["use"] == "predict" else loaded.toarray()
                outcome = "predicted"
            except UnsafeArtifact:
                outcome = "refused"
            except BaseException as exc:
                outcome = type(exc).__name__
            os.write(writer, outcome.encode())
            os._exit(0)
        os.close(writer)
        _, status = os.waitpid(pid, 0)
        said = os.read(reader, 200).decode()
        os.close(reader)
        signal = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        results[name] = said or f"killed by signal {signal}"
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> dict[str, str]:
    """Register every hostile model in both formats, then load and use each in a forked child."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    home = tmp_path_factory.mktemp("native")
    shutil.copyfile(template_home / CATALOG_FILE_NAME, home / CATALOG_FILE_NAME)
    files = tmp_path_factory.mktemp("native-files")
    refs: dict[str, dict[str, str]] = {}
    with Registry(home) as reg:
        reg.register("warmup", LogisticRegression(max_iter=200).fit(*_iris()))
        for number, (name, (build, use)) in enumerate(HOSTILE.items()):
            model = build()
            for fmt in ("pickle", "joblib"):
                path = files / f"hostile-{number}.{fmt}"
                if fmt == "joblib":
                    joblib.dump(model, path)
                else:
                    path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
                mv = reg.register_file(f"hostile-{number}-{fmt}", path, format=fmt, check=False)
                refs[f"{name} [{fmt}]"] = {"ref": mv.ref, "use": use}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(home), json.dumps(refs)], capture_output=True, text=True, env=env, timeout=300
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_model_with_out_of_range_native_state_is_refused_or_harmless(
    outcomes: dict[str, str], name: str, fmt: str
) -> None:
    """Refused at load, or a clean Python error at predict; never a crash, never a silent out-of-range read."""
    outcome = outcomes[f"{name} [{fmt}]"]
    assert outcome != "predicted", f"{name} ({fmt}): its first use read outside its arrays and returned"
    assert not outcome.startswith("killed"), f"{name} ({fmt}): a safe load and its first use ended {outcome}"
