"""Prediction server benchmark: `modelshelf serve` against a bare Starlette endpoint and `mlflow models serve`.

The same model (a logistic regression on 20 features) is served three
ways, each by uvicorn with one worker and its default access log, on
127.0.0.1:

* **floor**: a Starlette endpoint that parses ``{"inputs": rows}`` and calls
  ``model.predict`` on the event loop, nothing else;
* **modelshelf**: ``modelshelf serve m@production`` (signature check,
  missing-value check, a worker thread, metrics, alias polling);
* **mlflow**: ``mlflow models serve --env-manager local`` on the same
  fitted model saved with ``mlflow.sklearn.save_model`` (skipped when
  MLflow is not installed: ``pip install 'modelshelf[bench]'``).

One client (httpx, one keep-alive connection, requests one after the
other) sends single-row and 1,000-row requests; each server is measured
in rounds taken in turn, and the medians over rounds are reported with
the ratios to the floor. Run it with ``python -m benchmarks.bench_serve
[ROUNDS]``; ``python -m benchmarks.bench_serve memory`` measures the
memory (PSS) of 1, 2 and 4 workers instead. It is not a test, and on a
shared machine its numbers are only as steady as the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = 20
#: Requests per round: single-row requests, then 1,000-row ones.
SHAPES = {"1 row": (1, 400), "1,000 rows": (1000, 60)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def floor_app(path: str) -> Any:
    """The floor: parse the JSON, ``model.predict``, answer; run with ``uvicorn --factory``."""
    import joblib
    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    model = joblib.load(path)

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        return JSONResponse({"predictions": model.predict(np.asarray(body["inputs"])).tolist()})

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def _floor_factory() -> Any:
    return floor_app(os.environ["BENCH_SERVE_MODEL"])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _measure(url: str, rows: list[list[float]], count: int) -> list[float]:
    """Latencies in milliseconds of ``count`` sequential requests over one connection (after a few warm ones)."""
    import httpx

    body = json.dumps({"inputs": rows}).encode()
    times = []
    with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as client:
        for _ in range(5):
            client.post(url, content=body).raise_for_status()
        for _ in range(count):
            started = time.perf_counter()
            response = client.post(url, content=body)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return times


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(rounds: int = 3) -> dict[str, dict[str, dict[str, float]]]:
    import joblib
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from registry import Registry

    X, y = make_classification(n_samples=2000, n_features=FEATURES, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    servers: dict[str, tuple[list[str], dict[str, str], str]] = {}
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "reg"
        with Registry(home) as reg:
            reg.register("m", model, data=(X, y), alias="production")
        joblib.dump(model, Path(work) / "model.joblib")
        bin_dir = str(Path(sys.executable).parent)  # mlflow runs `uvicorn` from the PATH
        env = {
            **os.environ,
            "BENCH_SERVE_MODEL": str(Path(work) / "model.joblib"),
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        }
        port = _free_port()
        servers["floor"] = (
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.bench_serve:_floor_factory",
                "--port",
                str(port),
            ],
            env,
            f"http://127.0.0.1:{port}/predict",
        )
        port = _free_port()
        servers["modelshelf"] = (
            [sys.executable, "-m", "registry", "--home", str(home), "serve", "m@production", "--port", str(port)],
            env,
            f"http://127.0.0.1:{port}/predict",
        )
        mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent))
        if mlflow_cli is not None:
            import mlflow.sklearn

            mlflow.sklearn.save_model(model, str(Path(work) / "mlflow-model"))
            port = _free_port()
            servers["mlflow"] = (
                [mlflow_cli, "models", "serve", "-m", str(Path(work) / "mlflow-model"), "-p", str(port), "-w", "1"]
                + ["--env-manager", "local"],
                env,
                f"http://127.0.0.1:{port}/invocations",
            )
        else:
            print("mlflow is not installed (pip install 'modelshelf[bench]'): its rows are left out")
        try:
            for command, environment, url in servers.values():
                process = subprocess.Popen(
                    command, env=environment, cwd=Path(__file__).resolve().parents[1],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                processes.append(process)
                _wait(url.rsplit("/", 1)[0] + "/", process)
            samples: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
            for _ in range(rounds):
                for shape, (n, count) in SHAPES.items():
                    rows = np.asarray(X[:n]).tolist()
                    for name, (_, _, url) in servers.items():
                        times = _measure(url, rows, count)
                        rate = 1000 / statistics.mean(times)
                        point = (statistics.median(times), _percentile(times, 0.99), rate)
                        samples.setdefault(shape, {}).setdefault(name, []).append(point)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for shape, by_server in samples.items():
        results[shape] = {}
        for name, points in by_server.items():
            results[shape][name] = {
                "p50_ms": statistics.median(p[0] for p in points),
                "p99_ms": statistics.median(p[1] for p in points),
                "requests_per_s": statistics.median(p[2] for p in points),
            }
    for shape, by_server in results.items():
        floor = by_server["floor"]
        print(f"\n{shape} per request ({rounds} rounds, medians):")
        for name, figures in by_server.items():
            ratio = figures["p50_ms"] / floor["p50_ms"]
            print(
                f"  {name:<11} p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
                f"{figures['requests_per_s']:7.0f} req/s  p50 x{ratio:.2f} of the floor"
            )
    return results


def _rss_mib(pid: int) -> float:
    """Proportional set size: pages shared between processes (libraries, the parent's) counted once in all."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _workers_of(pid: int) -> list[int]:
    """The worker processes of a uvicorn parent (multiprocessing's resource tracker is a child too: left out)."""
    children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [child for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _settled(pids: list[int]) -> dict[int, float]:
    """Resident memory of ``pids`` once it has stopped growing (each worker loads its model after it starts)."""
    before = {pid: _rss_mib(pid) for pid in pids}
    while True:
        time.sleep(2)
        now = {pid: _rss_mib(pid) for pid in pids}
        if all(abs(now[pid] - before[pid]) <= 0.01 * before[pid] for pid in pids):
            return now
        before = now


def memory(worker_counts: tuple[int, ...] = (1, 2, 4)) -> dict[int, dict[str, float]]:
    """Memory (PSS) of `modelshelf serve --workers N` serving a model holding a 31 MiB array (Linux only).

    Each worker loads its own copy, so the total grows by about one model
    per worker; this measures it rather than assuming it.
    """
    import numpy as np
    from sklearn.neighbors import KNeighborsRegressor

    from registry import Registry

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, FEATURES))
    model = KNeighborsRegressor(algorithm="brute").fit(X, X[:, 0])
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "reg"
        with Registry(home) as reg:
            reg.register("big", model, input_example=X[:5], alias="production")
        for workers in worker_counts:
            port = _free_port()
            command = [sys.executable, "-m", "registry", "--home", str(home), "serve", "big@production"]
            command += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}/readyz"
                _wait(url, process, timeout=600)
                deadline = time.monotonic() + 600
                while workers > 1 and len(_workers_of(process.pid)) < workers and time.monotonic() < deadline:
                    time.sleep(0.5)
                serving = _workers_of(process.pid) if workers > 1 else [process.pid]
                rss = _settled([process.pid, *serving] if workers > 1 else serving)
            finally:
                process.terminate()
                process.wait(timeout=60)
            per_worker = statistics.mean(rss[pid] for pid in serving)
            results[workers] = {"total_mib": sum(rss.values()), "per_worker_mib": per_worker}
            print(
                f"  --workers {workers}: {sum(rss.values()):7.0f} MiB in all (PSS), {per_worker:.0f} MiB per "
                f"serving process (the model's array is {X.nbytes / 2**20:.0f} MiB)"
            )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        memory()
    else:
        main(*(int(arg) for arg in sys.argv[1:2]))
