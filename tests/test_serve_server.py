"""`modelshelf serve` as a process: real HTTP on 127.0.0.1 while the test moves the alias under it.

Each test starts the command as a subprocess, reads the JSON line it
prints once it listens, and talks to it over the loopback interface, as
a client or a load balancer would. Slow lane (tests/lanes.py): each one
starts an interpreter that imports scikit-learn.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris

from registry import Registry
from tests import canary_models, serve_models
from tests.servers import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
X, y = load_iris(return_X_y=True)
PROBE = X[:1].tolist()
#: A safety net for waits, never a performance target: a loaded CI machine may be slow.
PATIENCE = 60.0


def register_versions(reg: Registry, count: int) -> dict[str, float]:
    """``m:1``…``m:count``, each predicting the probe row differently; the prediction each version gives."""
    expected = {}
    for k in range(1, count + 1):
        model = canary_models.ShiftedRegressor().fit(X, X[:, 0] * k)
        mv = reg.register("m", model, data=X, alias="production" if k == 1 else None)
        expected[mv.ref] = float(model.predict(X[:1])[0])
    return expected


@contextmanager
def server(
    home: Path, *options: str, env: dict[str, str] | None = None, at: Sequence[str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], Any]]:
    """``modelshelf --home HOME serve … --port 0 --json``, and the JSON line it printed once listening.

    ``at`` replaces ``--home HOME`` with other options naming the registry (``--catalog URL --store DIR``).
    """
    where = ["--home", str(home)] if at is None else list(at)
    command = [sys.executable, "-m", "registry", *where, "serve", *options, "--port", "0", "--json"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,  # the models' classes are imported from tests/
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the server did not start: {process.communicate(timeout=30)[1]}")
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def readyz(url: str) -> dict[str, Any]:
    response = httpx.get(url + "readyz", timeout=10)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class Client(threading.Thread):
    """Sends the probe row to ``/predict`` over one keep-alive connection until stopped; keeps every answer."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.answers: list[tuple[int, str, Any, str | None]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("predict", json={"inputs": PROBE})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                body = response.json()
                model = body.get("model", "")
                self.answers.append(
                    (response.status_code, model, body.get("predictions"), response.headers.get("modelshelf-model"))
                )

    def latest(self) -> str:
        return self.answers[-1][1] if self.answers else ""

    def __enter__(self) -> Client:
        self.start()
        wait_for(lambda: self.answers or self.failures, "a first answer")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join(timeout=30)


def test_three_alias_moves_under_load_fail_no_request_and_each_answer_names_its_version(home: Path) -> None:
    with Registry(home) as reg:
        expected = register_versions(reg, 4)
    with server(home, "m@production", "--poll", "0.2", "--no-access-log") as (process, where):
        assert where["ref"] == "m:1" and where["following"] == "m@production" and where["canary"] == "passed"
        assert where["url"] == f"http://127.0.0.1:{where['port']}/" and where["digest"].startswith("sha256:")
        url = where["url"]
        with Client(url) as client, Registry(home) as reg:
            for target in (2, 3, 4):
                reg.set_alias("m", "production", target)
                before = readyz(url)["polls"]  # counted once the move is committed: polls during the write read the old
                wait_for(lambda target=target: client.latest() == f"m:{target}", f"m:{target} to be served")
                ready = readyz(url)
                assert ready["model"] == f"m:{target}"
                assert ready["served_since_poll"] - before <= 2  # it came in at the first or second read after
            time.sleep(0.3)  # a few more answers from the last version
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        stderr = process.stderr.read() if process.stderr else ""
    assert client.failures == []
    assert client.answers and all(status == 200 for status, *_ in client.answers)
    versions = [int(model.split(":")[1]) for _, model, _, _ in client.answers]
    assert versions == sorted(versions) and set(versions) == {1, 2, 3, 4}  # in order, none skipped or half-served
    for _, model, predictions, header in client.answers:
        assert header == model and predictions == pytest.approx([expected[model]])
    assert "modelshelf serve: serving m:1 (sha256:" in stderr and "following m@production every 0.2s" in stderr
    assert re.search(r"now serving m:4 \(was m:3; canary: passed\)", stderr)


def test_a_version_whose_canary_fails_in_the_server_is_never_served(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its canary was recorded where ``SHIFT`` was 5; the server's module says 0, so its bytes predict otherwise."""
    with Registry(home) as reg:
        register_versions(reg, 1)
        monkeypatch.setattr(canary_models, "SHIFT", 5.0)
        bad = reg.register("m", canary_models.ShiftedRegressor().fit(X, X[:, 0] * 7), data=X)
        monkeypatch.setattr(canary_models, "SHIFT", 0.0)
    with server(home, "m@production", "--poll", "0.2", "--no-access-log") as (process, where):
        url = where["url"]
        with Client(url) as client, Registry(home) as reg:
            reg.set_alias("m", "production", bad.version)
            wait_for(lambda: readyz(url)["refused"] == 1, "the refusal")
            time.sleep(0.5)  # polls after the refusal do not retry it
            metrics = httpx.get(url + "metrics", timeout=10).text
        process.terminate()
        process.wait(timeout=30)
        stderr = process.stderr.read() if process.stderr else ""
    assert {model for _, model, _, _ in client.answers} == {"m:1"} and client.failures == []
    assert 'modelshelf_serve_swaps_refused_total{reason="canary"} 1' in metrics
    assert "modelshelf_serve_swaps_total 0" in metrics
    assert stderr.count("refused to serve m:2") == 1 and "CanaryMismatch" in stderr
    with Registry(home) as reg:
        (event,) = reg.events("m", action="serve.swap_refused")
    assert event.version == 2 and event.new["kind"] == "canary" and event.new["served"] == 1


def test_bad_requests_over_http_are_4xx_and_the_server_keeps_serving(home: Path) -> None:
    with Registry(home) as reg:
        register_versions(reg, 1)
    with server(home, "m:1", "--max-body", "4096") as (_, where):
        url = where["url"]
        with httpx.Client(base_url=url, timeout=10) as http:
            cases = {
                "malformed": http.post("predict", content=b'{"inputs": [[1,'),
                "columns": http.post("predict", json={"inputs": [[1.0, 2.0]]}),
                "nan": http.post("predict", content=b'{"inputs": [[NaN, 1, 2, 3]]}'),
                "large": http.post("predict", json={"inputs": np.tile(X, (3, 1)).tolist()}),
                "type": http.post("invocations", content=b"x", headers={"content-type": "application/x-npy"}),
                "host": http.post("predict", json={"inputs": PROBE}, headers={"host": "rebound.example"}),
            }
            fine = http.post("predict", json={"inputs": PROBE})
        statuses = {name: response.status_code for name, response in cases.items()}
        assert statuses == {"malformed": 400, "columns": 422, "nan": 422, "large": 413, "type": 415, "host": 400}
        assert fine.status_code == 200 and fine.json()["model"] == "m:1"
        # a declared length over the limit is refused before the body is sent
        host, port = "127.0.0.1", where["port"]
        with socket.create_connection((host, port), timeout=10) as raw:
            raw.sendall(
                b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 999999999\r\n\r\n"
            )
            answer = b""
            while b"PAYLOAD_TOO_LARGE" not in answer and (chunk := raw.recv(4096)):  # headers and body may come apart
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413") and b"PAYLOAD_TOO_LARGE" in answer


def test_a_stop_lets_the_request_in_flight_finish(home: Path, tmp_path: Path) -> None:
    with Registry(home) as reg:
        reg.register("slow", serve_models.SlowRegressor().fit(X, X[:, 0]), data=X[:3])
    marker = tmp_path / "calls"
    with server(home, "slow", env={"SLOW_MARKER": str(marker)}) as (process, where):
        started = marker.read_text().count("predict")  # the canary's call, at startup
        answers: list[httpx.Response] = []
        flight = threading.Thread(
            target=lambda: answers.append(httpx.post(where["url"] + "predict", json={"inputs": PROBE}, timeout=60))
        )
        flight.start()
        wait_for(lambda: marker.read_text().count("predict") > started, "the request to be inside predict")
        process.send_signal(signal.SIGINT)
        flight.join(timeout=60)
        assert process.wait(timeout=30) == 0
    assert answers and answers[0].status_code == 200 and answers[0].json()["predictions"] == PROBE[0][:1]


def test_two_workers_both_follow_the_alias(home: Path) -> None:
    with Registry(home) as reg:
        register_versions(reg, 2)
    with server(home, "m@production", "--workers", "2", "--poll", "0.2", "--no-access-log") as (process, where):
        assert where["workers"] == 2 and where["ref"] == "m:1"
        url = where["url"]
        with Registry(home) as reg:
            reg.set_alias("m", "production", 2)

        def all_new() -> bool:  # new connections each time: uvicorn's workers share one listening socket
            return all(
                httpx.post(url + "predict", json={"inputs": PROBE}, timeout=PATIENCE).json()["model"] == "m:2"
                for _ in range(20)
            )

        wait_for(all_new, "both workers to serve m:2")


def worker_pids(process: subprocess.Popen[str], count: int) -> list[int]:
    """The pids of ``count`` workers, from their "worker PID serving REF" lines (each is logged once loaded)."""
    assert process.stderr is not None
    pids: list[int] = []
    while len(pids) < count:
        line = process.stderr.readline()
        assert line, "the server stopped before its workers loaded"
        found = re.search(r"worker (\d+) serving ", line)
        if found:
            pids.append(int(found.group(1)))
    return pids


def anonymous_kib(pid: int) -> int:
    """The process's anonymous memory (heap, private copies), from the kernel: mapped file pages are not in it."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Anonymous:\s+(\d+) kB", rollup, re.MULTILINE).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux's /proc/PID/smaps_rollup")
def test_workers_share_one_mapped_copy_of_a_large_model_instead_of_one_each(home: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    features = rng.standard_normal((100_000, 50))  # 40 MB of float64 the model keeps
    with Registry(home) as reg:
        reg.register("big", KNeighborsClassifier(algorithm="brute").fit(features, rng.integers(0, 2, 100_000)))
    anonymous: dict[str, list[int]] = {}
    for mode in ("--mmap", "--no-mmap"):
        with server(home, "big", "--workers", "2", mode, "--no-access-log") as (process, where):
            assert where["mapped"] is (mode == "--mmap") and where["workers"] == 2
            assert process.stderr is not None
            start = ""
            while "modelshelf serve: serving" not in start:  # the parent's line, before its workers'
                start = process.stderr.readline()
                assert start, "the server stopped before saying what it serves"
            assert ("2 workers, memory-mapped;" in start) is (mode == "--mmap"), start
            anonymous[mode] = sorted(anonymous_kib(pid) for pid in worker_pids(process, 2))
            answer = httpx.post(where["url"] + "predict", json={"inputs": features[:2].tolist()}, timeout=PATIENCE)
            assert answer.status_code == 200 and answer.json()["model"] == "big:1"
    saved = [plain - mapped for mapped, plain in zip(anonymous["--mmap"], anonymous["--no-mmap"], strict=True)]
    assert all(kib >= 0.8 * features.nbytes / 1024 for kib in saved), (anonymous, features.nbytes // 1024)


#: A Python with MLflow's scoring client (mlflow-skinny, pandas): .ci/run builds one. MLflow is too heavy for `test`.
MLFLOW_PYTHON = os.environ.get("MODELSHELF_TEST_MLFLOW_PYTHON")


def test_mlflows_own_scoring_client_works_against_a_modelshelf_server(home: Path) -> None:
    """The client MLflow's tests use for `mlflow models serve`: its ping, its payloads, its response parsing.

    It runs in its own interpreter (tests/mlflow_scoring_client.py) and talks to the server over HTTP.
    """
    if not MLFLOW_PYTHON:
        skip_or_fail(
            "MLflow's scoring client runs in an environment of its own: set MODELSHELF_TEST_MLFLOW_PYTHON to a "
            "Python with mlflow-skinny and pandas installed (.ci/run builds .ci-venv-mlflow and sets it)"
        )
    from sklearn.linear_model import LogisticRegression

    from registry import __version__

    model = LogisticRegression(max_iter=500).fit(X, y)
    rows = X[::21]  # seven rows, of all three classes
    expected = model.predict(rows).tolist()
    assert len(set(expected)) == 3
    with Registry(home) as reg:
        reg.register("iris", model, data=(X, y), alias="production")
    with server(home, "iris@production") as (_, where):
        result = subprocess.run(
            [str(MLFLOW_PYTHON), str(ROOT / "tests" / "mlflow_scoring_client.py"), "127.0.0.1", str(where["port"])],
            input=json.dumps(rows.tolist()),
            capture_output=True,
            text=True,
            timeout=300,
            env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
        )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["version"] == __version__
    for kind in ("frame", "array", "list"):
        assert got[kind] == {"ndarray": expected, "dataframe": expected}, kind
