"""The prediction server in-process: request shapes, every kind of bad input, and swaps decided by the follower.

These drive :func:`registry.serve.app` through Starlette's test client and
call :meth:`Follower.poll` by hand, on real registries; the server as a
process, with real HTTP and a moving alias, is in tests/test_serve_server.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient

from registry import CanaryMismatch, InvalidArgument, Registry, check_input
from registry.errors import SignatureMismatch
from registry.serve import app
from registry.serve.follower import Follower
from registry.serve.payloads import SHAPES
from tests import canary_models
from tests.conftest import blob_files, sql
from tests.lanes import examples

X, y = load_iris(return_X_y=True)
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
KEY = "a signing key for the serve tests, long enough"


def client_of(application: Any) -> TestClient:
    return TestClient(application, base_url="http://127.0.0.1")


def follower_of(client: TestClient) -> Follower:
    follower: Follower = client.app.state.follower  # type: ignore[attr-defined]
    return follower


@pytest.fixture
def served(reg: Registry) -> Iterator[TestClient]:
    reg.register("iris", KNeighborsClassifier().fit(X, y), data=(X, y), alias="production")
    with client_of(app(reg, "iris@production")) as client:
        yield client


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One server for the tests that only send requests (so the fast lane loads the model once)."""
    with Registry(tmp_path_factory.mktemp("served")) as reg:
        reg.register("iris", KNeighborsClassifier().fit(X, y), data=(X, y), alias="production")
        with client_of(app(reg, "iris@production")) as client:
            yield client


def test_the_four_json_shapes_and_csv_predict_what_the_model_predicts(shared: TestClient) -> None:
    expected = KNeighborsClassifier().fit(X, y).predict(X[:5]).tolist()
    rows = X[:5].tolist()
    bodies = [
        {"inputs": rows},
        {"instances": rows},
        {"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": rows, "index": [0, 1, 2, 3, 4]}},
        {"dataframe_records": [dict(zip("abcd", row, strict=True)) for row in rows]},
        {"inputs": {c: [row[i] for row in rows] for i, c in enumerate("abcd")}},
        {"instances": [dict(zip("abcd", row, strict=True)) for row in rows]},
    ]
    for path in ("/predict", "/invocations"):
        for body in bodies:
            response = shared.post(path, json=body)
            assert response.status_code == 200, (path, body, response.text)
            assert response.json() == {"predictions": expected, "model": "iris:1"}
            assert response.headers["modelshelf-model"] == "iris:1"
    csv = "a,b,c,d\n" + "\n".join(",".join(map(str, row)) for row in rows)
    response = shared.post("/invocations", content=csv.encode(), headers={"content-type": "text/csv; charset=utf-8"})
    assert response.json() == {"predictions": expected, "model": "iris:1"}


def test_predict_proba_and_transform_exist_where_the_model_has_them(reg: Registry) -> None:
    reg.register("scaler", StandardScaler().fit(X), data=X)
    reg.register("lr", LogisticRegression(max_iter=500).fit(X, y), data=(X, y))
    with client_of(app(reg, "scaler")) as scaler, client_of(app(reg, "lr:1")) as lr:
        transformed = scaler.post("/transform", json={"inputs": X[:2].tolist()}).json()["predictions"]
        assert np.allclose(transformed, StandardScaler().fit(X).transform(X[:2]))
        assert scaler.post("/predict", json={"inputs": X[:2].tolist()}).status_code == 404
        proba = lr.post("/predict_proba", json={"inputs": X[:2].tolist()}).json()
        assert np.allclose(proba["predictions"], LogisticRegression(max_iter=500).fit(X, y).predict_proba(X[:2]))
        missing = lr.post("/transform", json={"inputs": X[:2].tolist()})
        assert missing.status_code == 404
        assert missing.json()["message"] == "lr:1 has no transform; it serves /predict, /predict_proba"


def framed(reg: Registry) -> Any:
    import pandas as pd

    frame = pd.DataFrame(X, columns=COLUMNS)
    frame["kind"] = pd.Series(np.where(y == 0, "a", "b"), dtype=object)
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["kind"]), remainder="passthrough"), LogisticRegression(max_iter=500)
    ).fit(frame, y)
    reg.register("framed", model, data=(frame, y), alias="production")
    return frame, model


def test_named_columns_are_reordered_to_the_signature_and_rows_get_its_names(reg: Registry) -> None:
    frame, model = framed(reg)
    expected = model.predict(frame.iloc[:3]).tolist()
    records = frame.iloc[:3].to_dict(orient="records")
    shuffled = [dict(reversed(list(record.items()))) for record in records]
    rows = frame.iloc[:3].values.tolist()
    with client_of(app(reg, "framed@production")) as client:
        for body in ({"dataframe_records": shuffled}, {"inputs": rows}, {"instances": shuffled}):
            response = client.post("/predict", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["predictions"] == expected


def test_input_the_signature_refuses_is_422_with_signature_mismatchs_own_message(reg: Registry) -> None:
    frame, _ = framed(reg)
    mv = reg.get("framed:1")
    wrong = frame.iloc[:2].drop(columns=["petal_width"])
    with pytest.raises(SignatureMismatch) as expected:
        check_input(mv, wrong)
    with client_of(app(reg, "framed@production")) as client:
        response = client.post("/predict", json={"dataframe_records": wrong.to_dict(orient="records")})
    assert response.status_code == 422
    assert response.json() == {"error_code": "SIGNATURE_MISMATCH", "message": str(expected.value)}
    assert "missing 'petal_width'" in response.json()["message"]


BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    # (what, body, content type, status, words the message must contain)
    ("malformed JSON", b'{"inputs": [[1, 2', "application/json", 400, "not valid JSON"),
    ("empty body", b"", "application/json", 400, "the body is empty"),
    ("not UTF-8", b'{"inputs": [["\xff"]]}', "application/json", 400, "not UTF-8"),
    ("a list at the top", b"[[1, 2, 3, 4]]", "application/json", 400, "must be a JSON object"),
    ("no shape", b'{"data": [[1, 2, 3, 4]]}', "application/json", 400, "exactly one of the keys"),
    ("two shapes", b'{"inputs": [[1,2,3,4]], "instances": [[1,2,3,4]]}', "application/json", 400, "exactly one"),
    ("params", b'{"inputs": [[1,2,3,4]], "params": {"k": 1}}', "application/json", 400, "params"),
    ("no rows", b'{"inputs": []}', "application/json", 400, "no rows"),
    ("ragged rows", b'{"inputs": [[1, 2, 3, 4], [1, 2]]}', "application/json", 400, "differ in length"),
    ("a row of lists", b'{"inputs": [[[1], [2], [3], [4]]]}', "application/json", 422, "expected a 2-D input"),
    ("a nested value", b'{"inputs": [[1, {"a": 1}, 3, 4]]}', "application/json", 400, "each value must be"),
    ("rows as a string", b'{"inputs": "1,2,3,4"}', "application/json", 400, "list of rows"),
    ("split without data", b'{"dataframe_split": {"columns": ["a"]}}', "application/json", 400, '"data"'),
    (
        "split row too short",
        b'{"dataframe_split": {"columns": ["a","b"], "data": [[1]]}}',
        "application/json",
        400,
        "2",
    ),
    ("records not objects", b'{"dataframe_records": [[1, 2, 3, 4]]}', "application/json", 400, "list of records"),
    ("three columns", b'{"inputs": [[1, 2, 3]]}', "application/json", 422, "expected 4 features"),
    ("a string column", b'{"inputs": [["a", "b", "c", "d"]]}', "application/json", 422, "where float64"),
    ("NaN", b'{"inputs": [[NaN, 1, 2, 3]]}', "application/json", 422, "row 0, column 0 is NaN"),
    ("null", b'{"inputs": [[1, 2, null, 3]]}', "application/json", 422, "column 2 is NaN (or null)"),
    ("Infinity", b'{"inputs": [[1, 2, 3, Infinity]]}', "application/json", 422, "column 3 is inf"),
    ("deep nesting", b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400, "nested"),
    (
        "a huge integer",
        b'{"inputs": [[1' + b"0" * 400 + b", 1, 2, 3]]}",
        "application/json",
        400,
        "do not make a table",
    ),
    ("5,000 digits", b'{"inputs": [[' + b"9" * 5000 + b", 1, 2, 3]]}", "application/json", 400, "cannot be read"),
    ("XML", b"<inputs/>", "application/xml", 415, "application/json or text/csv"),
    ("Latin-1", b'{"inputs": [[1, 2, 3, 4]]}', "application/json; charset=latin-1", 415, "UTF-8"),
    ("empty CSV", b"", "text/csv", 400, "CSV body is empty"),
    ("CSV of another width", b"a,b\n1,2\n", "text/csv", 422, "expected 4 features"),
    ("CSV header only", b"a,b,c,d\n", "text/csv", 400, "no rows"),
]


@pytest.mark.parametrize(("what", "body", "kind", "status", "words"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_every_kind_of_bad_input_is_a_4xx_in_json_naming_what_was_wrong(
    shared: TestClient, what: str, body: bytes, kind: str, status: int, words: str
) -> None:
    for path in ("/predict", "/invocations"):
        response = shared.post(path, content=body, headers={"content-type": kind})
        assert response.status_code == status, (what, response.text)
        answer = response.json()
        assert set(answer) == {"error_code", "message"} and words in answer["message"], (what, answer)
        assert "Traceback" not in response.text


def test_a_body_over_the_limit_is_413_whether_its_length_is_declared_or_not(reg: Registry) -> None:
    reg.register("iris", KNeighborsClassifier().fit(X, y), data=(X, y))
    body = json.dumps({"inputs": X.tolist()}).encode()
    with client_of(app(reg, "iris", max_body=1000)) as client:
        declared = client.post("/predict", content=body)
        streamed = client.post("/predict", content=iter([body[:600], body[600:]]))  # chunked: no Content-Length
        small = client.post("/predict", json={"inputs": X[:1].tolist()})
    for response in (declared, streamed):
        assert response.status_code == 413 and response.json()["error_code"] == "PAYLOAD_TOO_LARGE"
        assert "larger than 1000 bytes" in response.json()["message"]
    assert small.status_code == 200


def test_nan_is_taken_by_a_model_that_takes_it_but_infinity_is_not(reg: Registry) -> None:
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    reg.register("hgb", model, data=(X, y))
    with client_of(app(reg, "hgb")) as client:
        nan = client.post("/predict", content=b'{"inputs": [[NaN, 3.5, null, 0.2]]}')
        infinite = client.post("/predict", content=b'{"inputs": [[5.1, 3.5, 1.4, -Infinity]]}')
    assert nan.status_code == 200, nan.text
    assert nan.json()["predictions"] == model.predict([[np.nan, 3.5, np.nan, 0.2]]).tolist()
    assert infinite.status_code == 422 and "column 3 is -inf" in infinite.json()["message"]


def test_a_model_that_refuses_input_is_422_and_one_that_crashes_is_500_without_a_traceback(reg: Registry) -> None:
    reg.register("linear", LinearRegression().fit(X, X[:, 0]), signature={"n_features": 4})
    with client_of(app(reg, "linear")) as client:
        client.app.state.follower.current.model.coef_ = np.zeros(3)  # type: ignore[attr-defined]
        response = client.post("/predict", json={"inputs": X[:2].tolist()})
    assert response.status_code == 422 and response.json()["error_code"] == "INVALID_INPUT"
    assert response.json()["message"].startswith("linear:1: predict refused this input: ")


def test_unknown_paths_and_methods_are_json_errors(shared: TestClient) -> None:
    missing = shared.get("/nowhere")
    wrong_method = shared.get("/predict")
    assert missing.status_code == 404 and missing.json()["error_code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_another_host_is_refused(shared: TestClient) -> None:
    response = shared.post("/predict", json={"inputs": X[:1].tolist()}, headers={"host": "rebound.example"})
    assert response.status_code == 400 and "modelshelf serve --allowed-host" in response.text
    with pytest.raises(InvalidArgument, match="allowed_hosts"):
        app(follower_of(shared).registry, "iris", allowed_hosts=["*"])


def test_metadata_health_and_mlflows_probes(served: TestClient, reg: Registry) -> None:
    mv = reg.get("iris:1")
    metadata = served.get("/metadata").json()
    assert metadata["ref"] == "iris:1" and metadata["digest"] == mv.checksum and metadata["aliases"] == ["production"]
    assert metadata["input_signature"] == mv.input_signature.to_json()  # type: ignore[union-attr]
    assert metadata["methods"] == ["predict", "predict_proba"] and metadata["canary"] == "passed"
    assert metadata["following"] == "iris@production" and metadata["environment"] == mv.environment
    assert served.get("/healthz").json() == {"status": "ok"}
    assert served.get("/readyz").json()["model"] == "iris:1"
    assert served.get("/ping").text == "\n" and served.get("/health").status_code == 200


def test_metrics_count_requests_errors_latency_and_the_served_version(served: TestClient) -> None:
    served.post("/predict", json={"inputs": X[:1].tolist()})
    served.post("/predict", json={"inputs": [[1, 2, 3]]})
    text = served.get("/metrics").text
    assert 'modelshelf_serve_requests_total{endpoint="/predict",code="200"} 1' in text
    assert 'modelshelf_serve_requests_total{endpoint="/predict",code="422"} 1' in text
    assert 'modelshelf_serve_errors_total{endpoint="/predict",error="SIGNATURE_MISMATCH"} 1' in text
    assert 'modelshelf_serve_request_duration_seconds_bucket{endpoint="/predict",le="+Inf"} 2' in text
    assert 'modelshelf_serve_request_duration_seconds_count{endpoint="/predict"} 2' in text
    assert 'modelshelf_serve_model_version{model="iris"} 1' in text
    assert "modelshelf_serve_swaps_total 0" in text


def test_a_version_whose_canary_fails_cannot_start_a_server(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canary_models, "SHIFT", 5.0)
    reg.register("shifted", canary_models.ShiftedRegressor().fit(X, X[:, 0]), data=X)
    monkeypatch.setattr(canary_models, "SHIFT", 0.0)  # the same bytes now predict otherwise
    with pytest.raises(CanaryMismatch, match="shifted:1 does not predict here"):
        app(reg, "shifted")


# -- following: the follower's decisions, one poll at a time ------------------------------------------------


def shifted(reg: Registry, monkeypatch: pytest.MonkeyPatch, shift: float, **options: Any) -> Any:
    """A version whose canary was recorded with ``SHIFT = shift``: it fails here unless shift is 0."""
    monkeypatch.setattr(canary_models, "SHIFT", shift)
    mv = reg.register("m", canary_models.ShiftedRegressor().fit(X, X[:, 0]), data=X, **options)
    monkeypatch.setattr(canary_models, "SHIFT", 0.0)
    return mv


def test_a_moved_alias_is_swapped_in_and_a_pin_never_moves(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    shifted(reg, monkeypatch, 0.0, alias="production")
    shifted(reg, monkeypatch, 0.0)
    with (
        client_of(app(reg, "m@production", poll=3600)) as following,
        client_of(app(reg, "m@production", pin=True)) as pinned,
    ):
        reg.set_alias("m", "production", 2)
        assert follower_of(following).poll() == "swapped" and follower_of(pinned).poll() == "same"
        assert following.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:2"
        assert pinned.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:1"
        assert follower_of(following).poll() == "same"
        assert "modelshelf_serve_swaps_total 1" in following.get("/metrics").text


def test_a_version_whose_canary_fails_is_never_served_and_the_trail_says_why(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shifted(reg, monkeypatch, 0.0, alias="production")
    shifted(reg, monkeypatch, 5.0)
    with client_of(app(reg, "m@production", poll=3600)) as client:
        reg.set_alias("m", "production", 2)
        with caplog.at_level(logging.INFO, logger="modelshelf.serve"):
            assert follower_of(client).poll() == "refused"
            assert follower_of(client).poll() == "refused"  # not retried, not recorded twice
        assert client.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:1"
        assert 'modelshelf_serve_swaps_refused_total{reason="canary"} 1' in client.get("/metrics").text
    (event,) = reg.events("m", action="serve.swap_refused")
    assert (event.version, event.alias, event.old, event.new["kind"]) == (2, "production", 1, "canary")
    assert "m:2 does not predict here what it predicted when registered" in event.new["reason"]
    assert "refused to serve m:2" in caplog.text and "still serving m:1" in caplog.text


def test_a_version_that_takes_other_input_or_lacks_a_method_is_refused(reg: Registry) -> None:
    reg.register("c", LogisticRegression(max_iter=500).fit(X, y), data=(X, y), alias="production")
    reg.register("c", LogisticRegression(max_iter=500).fit(X[:, :3], y), data=(X[:, :3], y))
    reg.register("c", canary_models.MappedClassifier().fit(X, y), data=(X, y))  # no predict_proba
    with client_of(app(reg, "c@production", poll=3600)) as client:
        reg.set_alias("c", "production", 2)
        assert follower_of(client).poll() == "refused"
        reg.set_alias("c", "production", 3)
        assert follower_of(client).poll() == "refused"
        assert follower_of(client).current.ref == "c:1"
    reasons = {event.version: event.new for event in reg.events("c", action="serve.swap_refused")}
    assert (
        reasons[2]["kind"] == "signature"
        and "takes 3 features where the served version takes 4" in reasons[2]["reason"]
    )
    assert reasons[3]["kind"] == "methods" and "c:3 has no predict_proba, which c:1 serves" in reasons[3]["reason"]


def test_a_swapped_blob_is_not_served(reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An attacker who rewrites the new version's blob: its checksum no longer matches, so it is refused."""
    shifted(reg, monkeypatch, 0.0, alias="production")
    before = set(blob_files(home))
    mv = reg.register("m", LinearRegression().fit(X, X[:, 0] + 100), data=X)
    (blob,) = set(blob_files(home)) - before
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with client_of(app(reg, "m@production", poll=3600)) as client:
        reg.set_alias("m", "production", mv.version)
        assert follower_of(client).poll() == "refused"
        assert client.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:1"
    (event,) = reg.events("m", action="serve.swap_refused")
    assert event.new["kind"] == "trust" and "CorruptedArtifact" in event.new["reason"]


def test_a_catalog_row_edited_while_the_new_version_loads_is_not_served(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the poll's read and the load, the row is pointed at an attacker's blob: the reread differs."""
    with Registry(home) as reg:
        shifted(reg, monkeypatch, 0.0, alias="production")
        shifted(reg, monkeypatch, 0.0)
        twin = canary_models.ShiftedRegressor().fit(X, X[:, 0])
        twin.planted = "other bytes that answer v2's canary as v2 does"  # so only the reread can tell
        reg.register("m", twin, canary=False)

    attack = (  # the fast digest goes along: a stale one would refuse the load before the reread could
        "UPDATE versions SET (blob_digest, size, blake3) = "
        "(SELECT blob_digest, size, blake3 FROM versions WHERE version = 3) WHERE version = 2"
    )

    class Racing(Registry):
        def load(self, *args: Any, **kwargs: Any) -> Any:
            if args and args[0] == "m:2":
                sql(home, attack)
            return super().load(*args, **kwargs)

    with Racing(home) as reg, client_of(app(reg, "m@production", poll=3600)) as client:
        reg.set_alias("m", "production", 2)
        assert follower_of(client).poll() == "refused"
        assert follower_of(client).current.ref == "m:1"
        (event,) = reg.events("m", action="serve.swap_refused")
    assert event.new["kind"] == "trust" and "changed while it was loading" in event.new["reason"]


def test_with_a_key_a_row_pointed_at_other_bytes_by_sql_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Registry(home, signing_key=KEY) as reg:
        shifted(reg, monkeypatch, 0.0, alias="production")
        shifted(reg, monkeypatch, 0.0)
        reg.register("other", LinearRegression().fit(X, X[:, 0] + 100), data=X)
        with client_of(app(reg, "m@production", poll=3600)) as client:
            sql(
                home,
                "UPDATE versions SET blob_digest = (SELECT v.blob_digest FROM versions v JOIN models m "
                "ON v.model_id = m.id WHERE m.name = 'other'), size = (SELECT v.size FROM versions v JOIN models m "
                "ON v.model_id = m.id WHERE m.name = 'other') WHERE version = 2 AND model_id = "
                "(SELECT id FROM models WHERE name = 'm')",
            )
            reg.set_alias("m", "production", 2)
            assert follower_of(client).poll() == "refused"
            assert client.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:1"
            assert 'reason="trust"' in client.get("/metrics").text


def test_read_only_logs_that_the_refusal_is_not_in_the_trail(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with Registry(home) as reg:
        shifted(reg, monkeypatch, 0.0, alias="production")
        shifted(reg, monkeypatch, 5.0)
    with Registry(home, read_only=True) as ro, client_of(app(ro, "m@production", poll=3600)) as client:
        with Registry(home) as writer:
            writer.set_alias("m", "production", 2)
        with caplog.at_level(logging.WARNING, logger="modelshelf.serve"):
            assert follower_of(client).poll() == "refused"
    assert "not in the audit trail: the registry is open read-only" in caplog.text
    with Registry(home) as reg:
        assert reg.events("m", action="serve.swap_refused") == []


def test_a_keyless_server_does_not_unseal_a_sealed_model_to_record_a_refusal(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with Registry(home, signing_key=KEY) as keyed:
        shifted(keyed, monkeypatch, 0.0, alias="production")
        shifted(keyed, monkeypatch, 5.0)
    with Registry(home) as keyless, client_of(app(keyless, "m@production", poll=3600)) as client:
        with Registry(home, signing_key=KEY) as keyed:
            keyed.set_alias("m", "production", 2)
        with caplog.at_level(logging.WARNING, logger="modelshelf.serve"):
            assert follower_of(client).poll() == "refused"
    assert "sealed and this server has no signing key" in caplog.text
    with Registry(home, signing_key=KEY) as keyed:
        assert keyed.get("m@production").version == 2  # still sealed: a keyed client reads it
        assert keyed.events("m", action="serve.swap_refused") == []


def test_an_alias_that_cannot_be_read_keeps_the_served_version(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    shifted(reg, monkeypatch, 0.0, alias="production")
    with client_of(app(reg, "m@production", poll=3600)) as client:
        reg.delete_alias("m", "production")
        assert follower_of(client).poll() == "error"
        assert client.get("/readyz").json()["last_poll_error"].startswith("AliasNotFound")
        assert client.post("/predict", json={"inputs": X[:1].tolist()}).json()["model"] == "m:1"
        assert "modelshelf_serve_poll_errors_total 1" in client.get("/metrics").text


def test_bad_options_are_refused(reg: Registry) -> None:
    reg.register("iris", KNeighborsClassifier().fit(X, y), data=(X, y))
    for options in ({"poll": 0}, {"poll": float("nan")}, {"max_body": 0}):
        with pytest.raises(InvalidArgument):
            app(reg, "iris", **options)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(SHAPES + ("columns", "data")), inner),
    max_leaves=30,
)


@settings(max_examples=examples(300, 40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=JSON | st.fixed_dictionaries({}, optional={shape: JSON for shape in SHAPES}))
def test_no_json_body_is_answered_with_a_500(shared: TestClient, document: Any) -> None:
    """Whatever JSON comes, in whatever shape: a 2xx or a 4xx, with a JSON body."""
    response = shared.post("/predict", content=json.dumps(document).encode())
    assert response.status_code < 500, (document, response.text)
    assert set(response.json()) in ({"error_code", "message"}, {"predictions", "model"})


def test_the_command_refuses_a_version_whose_canary_fails_with_exit_3_before_listening(
    reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.cli_helpers import run_cli

    shifted(reg, monkeypatch, 5.0, alias="production")
    result = run_cli(home, "serve", "m@production", "--port", "0", "--read-only")
    assert result.exit_code == 3, result.output
    assert "error: m:1 does not predict here what it predicted when registered" in result.output
    assert "serving" not in result.output
    missing = run_cli(home / "nowhere", "serve", "m@production")
    assert missing.exit_code == 1 and "no registry at" in missing.output
