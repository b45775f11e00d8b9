"""Input signatures: inferred from real fitted models, stored as JSON, checked against real input."""

from __future__ import annotations

import ast
import copy
import json
import pickle
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from registry.domain import InputSignature, ModelVersion
from registry.errors import RegistryError, SignatureMismatch, SignatureNotFound
from registry.inputs.signature import (
    MAX_FEATURE_NAMES,
    MAX_SIGNATURE_BYTES,
    check_against,
    coerce_signature,
    infer_signature,
)
from registry.inputs.validated import ValidatedModel, check_input

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_iris(as_frame=True).data


@pytest.fixture(scope="module")
def named_model(frame: pd.DataFrame) -> LogisticRegression:
    """A classifier fitted on a DataFrame with named columns and string labels."""
    labels = load_iris().target_names[load_iris().target]
    return LogisticRegression(max_iter=500).fit(frame, labels)


@pytest.fixture(scope="module")
def knn_signature(knn: Any, iris: tuple[Any, Any]) -> InputSignature:
    signature = infer_signature(knn, input_example=iris[0][:10])
    assert signature is not None
    return signature


@pytest.fixture(scope="module")
def named_signature(named_model: LogisticRegression, frame: pd.DataFrame) -> InputSignature:
    signature = infer_signature(named_model, input_example=frame.head())
    assert signature is not None
    return signature


def mismatch(signature: InputSignature, X: Any, ref: str = "iris:3") -> SignatureMismatch:
    with pytest.raises(SignatureMismatch) as info:
        check_against(signature, X, ref)
    assert info.value.ref == ref and str(info.value).startswith(f"{ref}: ")
    return info.value


def version(signature: InputSignature | None) -> ModelVersion:
    created = datetime(2024, 1, 1, tzinfo=UTC)
    return ModelVersion("iris", 3, "sha256:" + "0" * 64, 10, "joblib", created, input_signature=signature)


# --- inference ---------------------------------------------------------------------------------------------


def test_classifier_records_count_classes_as_python_ints_and_output(knn: Any) -> None:
    signature = infer_signature(knn)
    assert signature == InputSignature(n_features=4, classes=(0, 1, 2), output="classification")
    assert all(type(label) is int for label in signature.classes)
    json.dumps(signature.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    ("make", "output", "has_classes"),
    [
        (lambda X, y: LogisticRegression(max_iter=500).fit(X, y), "classification", True),
        (
            lambda X, y: make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y),
            "classification",
            True,
        ),
        (lambda X, y: LinearRegression().fit(X, y), "regression", False),
        (lambda X, y: KMeans(n_clusters=3, n_init=1, random_state=0).fit(X), "clustering", False),
        (lambda X, y: StandardScaler().fit(X), "transform", False),
        (lambda X, y: IsolationForest(n_estimators=10, random_state=0).fit(X), "outlier", False),
        (
            lambda X, y: make_pipeline(StandardScaler(), KMeans(n_clusters=2, n_init=1, random_state=0)).fit(X),
            "clustering",
            False,
        ),
    ],
    ids=["logistic", "pipeline", "linear", "kmeans", "scaler", "isolation-forest", "pipeline-kmeans"],
)
def test_output_kind_of_each_estimator_kind(iris: tuple[Any, Any], make: Any, output: str, has_classes: bool) -> None:
    signature = infer_signature(make(*iris))
    assert signature is not None
    assert (signature.n_features, signature.output, signature.feature_names) == (4, output, None)
    assert signature.classes == ((0, 1, 2) if has_classes else None)


def test_model_fitted_on_a_dataframe_records_names_and_string_classes(named_model: Any) -> None:
    signature = infer_signature(named_model)
    assert signature.feature_names == tuple(COLUMNS)
    assert all(type(name) is str for name in signature.feature_names)
    assert signature.classes == ("setosa", "versicolor", "virginica")
    assert all(type(label) is str for label in signature.classes)


def test_dataframe_example_gives_per_column_dtypes_and_at_most_five_rows(named_model: Any, frame: pd.DataFrame) -> None:
    signature = infer_signature(named_model, input_example=frame.head(8))
    assert signature.dtypes == ("float64",) * 4
    assert signature.example == tuple(tuple(row) for row in frame.head(5).to_numpy().tolist())
    assert all(type(value) is float for row in signature.example for value in row)


def test_mixed_dataframe_example_without_a_fitted_model() -> None:
    example = pd.DataFrame(
        {
            "age": np.array([31, 42], dtype=np.int32),
            "city": pd.array(["Oslo", None], dtype="string"),
            "kind": pd.Categorical(["a", "b"]),
            "when": pd.to_datetime(["2024-01-02", None]),
            "ok": [True, False],
            "score": [0.5, np.nan],
        }
    )
    signature = infer_signature(object(), input_example=example)
    assert signature.n_features == 6 and signature.feature_names == tuple(example.columns)
    assert signature.dtypes[:3] == ("int32", "string", "category") and signature.dtypes[4] == "bool"
    assert signature.dtypes[3].startswith("datetime64[")
    assert signature.output is None and signature.classes is None
    assert signature.example == (
        (31, "Oslo", "a", "2024-01-02T00:00:00", True, 0.5),
        (42, None, "b", None, False, None),
    )
    json.dumps(signature.to_json(), allow_nan=False)
    assert coerce_signature(signature) == signature


def test_numpy_example_repeats_its_dtype_and_nan_becomes_none(knn: Any, iris: tuple[Any, Any]) -> None:
    example = iris[0][:3].astype(np.float32)
    example[0, 1] = np.nan
    signature = infer_signature(knn, input_example=example)
    assert signature.dtypes == ("float32",) * 4
    assert signature.example[0][1] is None and signature.example[0][0] == pytest.approx(5.1)
    json.dumps(signature.to_json(), allow_nan=False)


def test_list_example_and_numpy_string_dtype_read_back(knn: Any) -> None:
    signature = infer_signature(knn, input_example=[[1, 2, 3, 4]])
    assert signature.dtypes == ("int64",) * 4 and signature.example == ((1, 2, 3, 4),)
    text = infer_signature(object(), input_example=np.array([["a", "bc"]]))
    assert text.dtypes == ("<U2", "<U2") and np.dtype(text.dtypes[0]) == np.dtype("<U2")


def test_data_gives_dtypes_but_never_example_rows(knn: Any, iris: tuple[Any, Any]) -> None:
    signature = infer_signature(knn, data=iris[0])
    assert signature.dtypes == ("float64",) * 4 and signature.example is None


def test_data_that_is_not_2d_gives_no_dtypes_but_an_example_must_be(knn: Any, iris: tuple[Any, Any]) -> None:
    signature = infer_signature(knn, data=pd.Series(iris[1]))  # data= also feeds lineage, which takes a Series
    assert signature.n_features == 4 and signature.dtypes is None
    with pytest.raises(ValueError, match="input_example has shape"):
        infer_signature(knn, input_example=pd.Series(iris[1]), data=iris[0])


def test_empty_example_keeps_dtypes_but_no_rows(knn: Any, iris: tuple[Any, Any]) -> None:
    signature = infer_signature(knn, input_example=iris[0][:0])
    assert signature.dtypes == ("float64",) * 4 and signature.example is None


def test_input_example_is_preferred_to_data(knn: Any, iris: tuple[Any, Any]) -> None:
    signature = infer_signature(knn, input_example=iris[0][:2].astype(np.int16), data=iris[0])
    assert signature.dtypes == ("int16",) * 4 and len(signature.example) == 2


def test_names_come_from_the_example_when_the_model_has_none(knn: Any, frame: pd.DataFrame) -> None:
    assert infer_signature(knn, input_example=frame.head(2)).feature_names == tuple(COLUMNS)
    numbered = frame.head(2).set_axis(range(4), axis=1)
    assert infer_signature(knn, input_example=numbered).feature_names is None


def test_example_with_another_column_count_than_the_model_is_refused(knn: Any, iris: tuple[Any, Any]) -> None:
    with pytest.raises(ValueError, match=r"input_example has 3 columns but the model was fitted on 4"):
        infer_signature(knn, input_example=iris[0][:5, :3])
    with pytest.raises(ValueError, match=r"data has 5 columns"):
        infer_signature(knn, data=np.zeros((2, 5)))


def test_example_with_other_names_than_the_model_is_refused(named_model: Any, frame: pd.DataFrame) -> None:
    renamed = frame.head().rename(columns={COLUMNS[0]: "sepal_length"})
    with pytest.raises(ValueError, match=r"missing 'sepal length \(cm\)'; unexpected 'sepal_length'"):
        infer_signature(named_model, input_example=renamed)
    with pytest.raises(ValueError, match="same columns in a different order"):
        infer_signature(named_model, input_example=frame.head()[COLUMNS[::-1]])


@pytest.mark.parametrize("example", [np.arange(4.0), [1.0, 2.0, 3.0, 4.0], 3.5, np.zeros((2, 2, 2))])
def test_example_that_is_not_2d_is_refused(knn: Any, example: Any) -> None:
    with pytest.raises(ValueError, match=r"expected a 2-D \(n_samples, n_features\) input"):
        infer_signature(knn, input_example=example)


@pytest.mark.parametrize("model", [object(), {"weights": [1, 2]}, KNeighborsClassifier(), "model", None])
def test_not_a_fitted_estimator_without_example_gives_none(model: Any, iris: tuple[Any, Any]) -> None:
    assert infer_signature(model) is None
    assert infer_signature(model, data=iris[0]) is None


def test_unfitted_estimator_with_example_keeps_its_output_kind(iris: tuple[Any, Any]) -> None:
    signature = infer_signature(KNeighborsClassifier(), input_example=iris[0][:2])
    assert (signature.n_features, signature.output, signature.classes) == (4, "classification", None)


def test_large_example_is_dropped_silently(knn: Any) -> None:
    example = pd.DataFrame({f"c{i}": ["x" * 5000] * 5 for i in range(4)})
    signature = infer_signature(object(), input_example=example)
    assert signature.example is None and signature.dtypes == ("str",) * 4
    assert len(json.dumps(signature.to_json())) < MAX_SIGNATURE_BYTES


class _FakeFitted:
    """Something with the fitted attributes of an estimator and many feature names."""

    def __init__(self, n: int) -> None:
        self.n_features_in_ = n
        self.feature_names_in_ = np.array([f"feature_{i:06d}" for i in range(n)], dtype=object)


def test_many_feature_names_are_kept_over_the_budget_but_the_example_and_dtypes_go() -> None:
    model = _FakeFitted(8000)
    signature = infer_signature(model, input_example=np.zeros((5, 8000)))
    assert signature.feature_names == tuple(model.feature_names_in_) and signature.n_features == 8000
    assert signature.example is None and signature.dtypes is None
    assert len(json.dumps(signature.to_json())) > MAX_SIGNATURE_BYTES


def test_more_than_the_maximum_feature_names_is_refused() -> None:
    with pytest.raises(ValueError, match=f"at most {MAX_FEATURE_NAMES}"):
        infer_signature(_FakeFitted(MAX_FEATURE_NAMES + 1))


def test_huge_training_data_is_not_copied(knn: Any) -> None:
    # 10**9 x 4 float64 would be 32 GB if anything copied it; a broadcast view takes no memory
    huge = np.broadcast_to(np.float64(1.5), (10**9, 4))
    signature = infer_signature(knn, input_example=huge, data=huge)
    assert signature.dtypes == ("float64",) * 4 and signature.example == ((1.5,) * 4,) * 5
    check_against(signature, huge, "iris:3")


# --- JSON --------------------------------------------------------------------------------------------------


def test_json_round_trip_of_inferred_signatures(knn_signature: InputSignature, named_signature: InputSignature) -> None:
    for signature in (knn_signature, named_signature, InputSignature()):
        stored = json.loads(json.dumps(signature.to_json(), allow_nan=False))
        assert InputSignature.from_json(stored) == signature
        assert InputSignature.from_json(stored).to_json() == stored


def test_json_form_is_plain_lists_with_every_key(named_signature: InputSignature) -> None:
    stored = named_signature.to_json()
    assert list(stored) == ["n_features", "feature_names", "dtypes", "classes", "output", "example"]
    assert stored["feature_names"] == COLUMNS and isinstance(stored["example"][0], list)


def test_json_multi_output_classes_come_back_as_nested_tuples(iris: tuple[Any, Any]) -> None:
    X, y = iris
    model = KNeighborsClassifier().fit(X, np.column_stack([y, y % 2]))
    signature = infer_signature(model)
    assert signature.classes == ((0, 1, 2), (0, 1))
    assert InputSignature.from_json(json.loads(json.dumps(signature.to_json()))) == signature


def test_json_from_a_newer_modelshelf_ignores_unknown_keys_and_fills_missing_ones() -> None:
    stored = {"n_features": 2, "feature_names": ["a", "b"], "units": ["cm", "kg"], "version": 7}
    assert InputSignature.from_json(stored) == InputSignature(n_features=2, feature_names=("a", "b"))
    assert InputSignature.from_json(None) is None
    with pytest.raises(ValueError, match="JSON object"):
        InputSignature.from_json([2])  # type: ignore[arg-type]


# --- coerce_signature --------------------------------------------------------------------------------------


def test_coerce_accepts_a_dict_and_returns_tuples() -> None:
    signature = coerce_signature(
        {"feature_names": ["a", "b"], "dtypes": ["float64", np.dtype("int32")], "classes": [np.int64(0), 1]}
    )
    assert signature == InputSignature(
        n_features=2, feature_names=("a", "b"), dtypes=("float64", "int32"), classes=(0, 1)
    )
    assert type(signature.classes[0]) is int


def test_coerce_passes_a_valid_signature_through(named_signature: InputSignature) -> None:
    assert coerce_signature(named_signature) == named_signature


def test_coerce_keeps_the_first_five_example_rows() -> None:
    signature = coerce_signature({"n_features": 1, "example": [[i] for i in range(9)]})
    assert signature.example == ((0,), (1,), (2,), (3,), (4,))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"n_feature": 4}, r"unknown signature field 'n_feature'; the fields are n_features, feature_names, dtypes"),
        ({"n_features": 0}, r"'n_features' must be a positive int, not 0"),
        ({"n_features": True}, r"'n_features' must be a positive int, not True"),
        ({"n_features": "4"}, r"'n_features' must be a positive int, not '4'"),
        ({"feature_names": "abc"}, r"'feature_names' must be a list or tuple, not str"),
        ({"feature_names": ["a", 2]}, r"'feature_names' must hold only strings"),
        ({"feature_names": ["a", "b", "a"]}, r"'feature_names' repeats 'a'"),
        ({"n_features": 3, "feature_names": ["a", "b"]}, r"'feature_names' has 2 entries; n_features is 3"),
        ({"n_features": 2, "dtypes": ["float64"]}, r"'dtypes' has 1 entries; n_features is 2"),
        ({"dtypes": ["float64", "floaty"]}, r"'dtypes'\[1\] is 'floaty', not a dtype name"),
        ({"dtypes": [float]}, r"'dtypes'\[0\] is <class 'float'>"),
        ({"output": "ranking"}, r"'output' is 'ranking'; use one of classification, regression"),
        ({"classes": 3}, r"'classes' must be a list or tuple, not int"),
        ({"n_features": 2, "example": [[1, 2], [3]]}, r"'example' has a row whose length is not n_features \(2\)"),
        ({"n_features": 1, "example": [["x" * 70_000]]}, r"'example' is too large"),
        ({"feature_names": [str(i) for i in range(MAX_FEATURE_NAMES + 1)]}, f"at most {MAX_FEATURE_NAMES}"),
        ([4], r"signature must be an InputSignature or a dict, not list"),
    ],
)
def test_coerce_refuses_bad_values_naming_the_field(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        coerce_signature(value)


# --- check_against and check_input -------------------------------------------------------------------------


def test_matching_inputs_are_accepted(knn_signature: InputSignature, iris: tuple[Any, Any]) -> None:
    X = iris[0]
    for good in (X, X[:1], X.tolist(), X.astype(np.float32), scipy.sparse.csr_matrix(X), pd.DataFrame(X)):
        check_against(knn_signature, good, "iris:3")


def test_one_dimensional_input_suggests_reshape(knn_signature: InputSignature, iris: tuple[Any, Any]) -> None:
    error = mismatch(knn_signature, iris[0][0])
    assert "expected a 2-D input of shape (n_samples, 4); got shape (4,)" in str(error)
    assert "reshape(1, -1)" in str(error)
    assert (error.expected, error.actual) == ((None, 4), (4,))
    assert "got shape (4,)" in str(mismatch(knn_signature, iris[0][0].tolist()))


def test_scalar_and_three_dimensional_input_are_mismatches(knn_signature: InputSignature) -> None:
    assert "got shape ()" in str(mismatch(knn_signature, 5.0))
    error = mismatch(knn_signature, np.zeros((2, 2, 4)))
    assert error.actual == (2, 2, 4) and "reshape" not in str(error)


def test_wrong_column_count(knn_signature: InputSignature, iris: tuple[Any, Any]) -> None:
    error = mismatch(knn_signature, iris[0][:, :3])
    assert "expected 4 features (columns) per sample; got 3" in str(error)
    assert (error.expected, error.actual) == (4, 3)
    sparse_error = mismatch(knn_signature, scipy.sparse.csr_matrix(np.zeros((2, 5))))
    assert sparse_error.actual == 5


def test_ragged_list_is_a_mismatch(knn_signature: InputSignature) -> None:
    assert "rows differ in length" in str(mismatch(knn_signature, [[1, 2, 3, 4], [1, 2]]))


def test_missing_and_unexpected_columns_are_named(named_signature: InputSignature, frame: pd.DataFrame) -> None:
    X = frame.rename(columns={COLUMNS[3]: "petal_width"})
    error = mismatch(named_signature, X)
    assert "missing 'petal width (cm)'; unexpected 'petal_width'" in str(error)
    assert error.expected == tuple(COLUMNS) and error.actual == tuple(X.columns)
    assert "missing 'petal width (cm)'" in str(mismatch(named_signature, frame[COLUMNS[:3]]))
    assert "unexpected 'extra'" in str(mismatch(named_signature, frame.assign(extra=1.0)))


def test_reordered_columns_are_a_mismatch(named_signature: InputSignature, frame: pd.DataFrame) -> None:
    error = mismatch(named_signature, frame[COLUMNS[::-1]])
    assert "same columns in a different order" in str(error) and "missing" not in str(error)


def test_plain_array_is_accepted_where_names_were_recorded(
    named_signature: InputSignature, frame: pd.DataFrame
) -> None:
    check_against(named_signature, frame.to_numpy(), "iris:3")
    check_against(named_signature, frame.set_axis(range(4), axis=1), "iris:3")


def test_an_object_array_for_a_model_fitted_on_a_frame_asks_for_the_frame(
    named_signature: InputSignature, frame: pd.DataFrame
) -> None:
    # what .to_numpy() gives for a frame with one text column besides the numbers
    X = frame.assign(note="x").to_numpy()[:, :4]
    error = mismatch(named_signature, X)
    message = str(error)
    assert message.startswith(
        f"iris:3: expected a DataFrame with the named columns {', '.join(map(repr, COLUMNS))} "
        "(the model was fitted on them); got a NumPy array of dtype object and shape (150, 4)"
    )
    assert "the frame itself" in message and "column 'sepal length (cm)' is" not in message
    assert (error.expected, error.actual) == ("float64", "object")


def test_an_array_of_the_wrong_width_for_a_frame_model_asks_for_a_frame_with_those_columns(
    named_signature: InputSignature, frame: pd.DataFrame
) -> None:
    error = mismatch(named_signature, frame.to_numpy()[:, :3])
    assert "expected a DataFrame with the named columns 'sepal length (cm)'" in str(error)
    assert "got a NumPy array of dtype float64 and shape (150, 3): 3 columns where 4 were expected" in str(error)
    assert (error.expected, error.actual) == (4, 3)
    listed = mismatch(named_signature, [["a", "b", "c", "d"]])
    assert "got a list of shape (1, 4); its column 0 is <U1 where float64 was expected" in str(listed)
    assert "pd.DataFrame(X, columns=mv.input_signature.feature_names)" in str(listed)
    unnamed = mismatch(named_signature, frame.set_axis(range(4), axis=1).astype(str))
    assert "got a DataFrame without these column names; its column 0 is" in str(unnamed)


def test_a_frame_for_a_model_fitted_on_an_array_names_the_frame_column(knn_signature: InputSignature) -> None:
    error = mismatch(knn_signature, pd.DataFrame({"a": ["x"], "b": [1.0], "c": [1.0], "d": [1.0]}))
    assert "column 'a' is" in str(error) and "expected a DataFrame" not in str(error)


def test_validate_true_on_a_frame_model_says_it_wants_the_frame(
    reg: Any, named_model: LogisticRegression, frame: pd.DataFrame
) -> None:
    reg.register("iris-frame", named_model, data=frame)
    wrapped = reg.load("iris-frame", validate=True)
    with pytest.raises(SignatureMismatch, match=r"^iris-frame:1: expected a DataFrame with the named columns"):
        wrapped.predict(frame.to_numpy().astype(object))
    assert len(wrapped.predict(frame)) == len(frame)


def test_string_column_where_numeric_expected_is_named(named_signature: InputSignature, frame: pd.DataFrame) -> None:
    X = frame.astype({COLUMNS[1]: str})
    error = mismatch(named_signature, X)
    assert f"column {COLUMNS[1]!r} is" in str(error) and "where float64 (numeric) was expected" in str(error)
    assert error.expected == "float64"
    categorical = frame.assign(**{COLUMNS[2]: pd.Categorical(frame[COLUMNS[2]])})
    assert f"column {COLUMNS[2]!r} is category" in str(mismatch(named_signature, categorical))


def test_numeric_column_where_text_expected_and_datetimes(frame: pd.DataFrame) -> None:
    signature = coerce_signature({"feature_names": ["city", "when"], "dtypes": ["object", "datetime64[ns]"]})
    good = pd.DataFrame({"city": pd.Categorical(["Oslo"]), "when": pd.to_datetime(["2024-01-01"], utc=True)})
    check_against(signature, good, "m:1")
    error = mismatch(signature, pd.DataFrame({"city": [1.5], "when": ["2024-01-01"]}), "m:1")
    assert "column 'city' is float64 (numeric) where object" in str(error) and "(and 1 more columns)" in str(error)


def test_numpy_string_array_against_numeric_names_the_first_column(knn_signature: InputSignature) -> None:
    error = mismatch(knn_signature, np.array([["a", "b", "c", "d"]]))
    assert "column 0 is <U1 (string/object/category) where float64 (numeric)" in str(error)
    assert "(and 3 more columns)" in str(error)


def test_int_and_bool_are_accepted_for_float(
    knn_signature: InputSignature, named_signature: InputSignature, iris: tuple[Any, Any], frame: pd.DataFrame
) -> None:
    check_against(knn_signature, iris[0].astype(np.int64), "iris:3")
    check_against(knn_signature, iris[0] > 3, "iris:3")
    check_against(named_signature, frame.round().astype({COLUMNS[0]: "int32", COLUMNS[1]: "Int64"}), "iris:3")


def test_check_input_raises_signature_not_found_for_a_version_without_one(iris: tuple[Any, Any]) -> None:
    with pytest.raises(SignatureNotFound) as info:
        check_input(version(None), iris[0])
    assert info.value.ref == "iris:3" and "iris:3 has no input signature" in str(info.value)
    assert isinstance(info.value, LookupError | RegistryError)


def test_check_input_checks_against_the_version_signature(knn_signature: InputSignature, iris: tuple[Any, Any]) -> None:
    mv = version(knn_signature)
    check_input(mv, iris[0])
    with pytest.raises(SignatureMismatch, match=r"^iris:3: expected 4 features") as info:
        check_input(mv, iris[0][:, :2])
    assert isinstance(info.value, ValueError) and info.value.ref == "iris:3"


# --- ValidatedModel ----------------------------------------------------------------------------------------


@pytest.fixture
def wrapped(knn: Any, knn_signature: InputSignature) -> ValidatedModel:
    return ValidatedModel(knn, knn_signature, "iris:3")


def test_wrapper_gives_the_model_results(wrapped: ValidatedModel, knn: Any, iris: tuple[Any, Any]) -> None:
    X, y = iris
    np.testing.assert_array_equal(wrapped.predict(X), knn.predict(X))
    np.testing.assert_array_equal(wrapped.predict_proba(X), knn.predict_proba(X))
    np.testing.assert_array_equal(wrapped.predict(X=X[:3]), knn.predict(X[:3]))
    assert wrapped.score(X, y) == knn.score(X, y)


def test_wrapper_of_named_pipeline_transform_and_decision(iris: tuple[Any, Any], frame: pd.DataFrame) -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, iris[1])
    wrapped = ValidatedModel(model, infer_signature(model, input_example=frame.head()), "p:1")
    np.testing.assert_array_equal(wrapped.decision_function(frame), model.decision_function(frame))
    scaler = ValidatedModel(model[0], infer_signature(model[0]), "s:1")
    np.testing.assert_array_equal(scaler.transform(frame), model[0].transform(frame))
    with pytest.raises(SignatureMismatch, match="different order"):
        wrapped.predict_log_proba(frame[COLUMNS[::-1]])


def test_wrapper_checks_before_the_model_sees_the_input(wrapped: ValidatedModel, iris: tuple[Any, Any]) -> None:
    with pytest.raises(SignatureMismatch, match="reshape"):
        wrapped.predict(iris[0][0])
    with pytest.raises(SignatureMismatch, match="expected 4 features"):
        wrapped.predict_proba(X=iris[0][:, :3])

    class Spy:
        calls: list[Any] = []

        def predict(self, X: Any) -> str:
            self.calls.append(X)
            return "called"

    spy = ValidatedModel(Spy(), InputSignature(n_features=2), "spy:1")
    with pytest.raises(SignatureMismatch):
        spy.predict([[1, 2, 3]])
    assert Spy.calls == []
    assert spy.predict([[1, 2]]) == "called" and Spy.calls == [[[1, 2]]]


def test_wrapper_passes_everything_else_through(wrapped: ValidatedModel, knn: Any, iris: tuple[Any, Any]) -> None:
    assert wrapped.model is knn and wrapped.signature.n_features == 4 and wrapped.ref == "iris:3"
    np.testing.assert_array_equal(wrapped.classes_, knn.classes_)
    assert wrapped.get_params() == knn.get_params() and wrapped.n_neighbors == 3
    distances, _ = wrapped.kneighbors(iris[0][:2])  # not a checked method: delegated as is
    np.testing.assert_array_equal(distances, knn.kneighbors(iris[0][:2])[0])
    assert wrapped.predict.__name__ == "predict"


def test_wrapper_sets_attributes_on_the_model(iris: tuple[Any, Any], knn_signature: InputSignature) -> None:
    model = KNeighborsClassifier(n_neighbors=3).fit(*iris)
    wrapped = ValidatedModel(model, knn_signature, "iris:3")
    wrapped.n_neighbors = 7
    assert model.n_neighbors == 7 and "n_neighbors" not in vars(wrapped)


def test_wrapper_raises_the_models_attribute_error(iris: tuple[Any, Any], knn: Any, wrapped: ValidatedModel) -> None:
    regression = LinearRegression().fit(*iris)
    wrapped_regression = ValidatedModel(regression, infer_signature(regression), "lin:1")
    assert not hasattr(wrapped_regression, "predict_proba") and not hasattr(wrapped, "transform")
    with pytest.raises(AttributeError) as ours:
        wrapped.transform(iris[0])
    with pytest.raises(AttributeError) as theirs:
        knn.transform(iris[0])
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(AttributeError, match="no_such_thing"):
        wrapped.no_such_thing  # noqa: B018


def test_wrapper_repr_copy_and_pickle(wrapped: ValidatedModel, iris: tuple[Any, Any]) -> None:
    assert (
        repr(wrapped)
        == "<ValidatedModel: input-checking wrapper of 'iris:3' around KNeighborsClassifier(n_neighbors=3)>"
    )
    for clone in (copy.deepcopy(wrapped), pickle.loads(pickle.dumps(wrapped))):
        assert clone.ref == "iris:3" and clone.signature == wrapped.signature
        np.testing.assert_array_equal(clone.predict(iris[0]), wrapped.predict(iris[0]))
    with pytest.raises(TypeError, match="InputSignature"):
        ValidatedModel(wrapped.model, {"n_features": 4}, "iris:3")  # type: ignore[arg-type]


def test_module_imports_only_what_its_layer_allows() -> None:
    source = Path(__file__).parents[1] / "registry" / "inputs" / "signature.py"
    tree = ast.parse(source.read_text())
    top_level = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            top_level.add(node.module if node.module.startswith("registry") else node.module.split(".")[0])
    third_party = top_level - {
        "__future__",
        "collections",
        "dataclasses",
        "functools",
        "json",
        "math",
        "re",
        "sys",
        "typing",
    }
    assert third_party == {"numpy", "registry.domain", "registry.errors"}
