"""Web UI benchmark: the versions page and the metric chart of a model with 10,000 versions.

The target is under 200 ms for each, served on this machine. Each request
goes through the whole application (routing, the registry reads, Jinja2,
the SVG renderer) with Starlette's test client, in process; no network.
Run it with ``python -m benchmarks.bench_ui [VERSIONS]``; it prints the
median and the slowest of a few runs per page, and is not a test.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.search import populate_for_search

TARGET_MS = 200.0

PAGES = {
    "versions page 1 (newest first)": "/models/tuned",
    "versions page 1 sorted by a metric": "/models/tuned?sort=metric:m2&dir=desc",
    "versions page 100 of 200, 3 metric columns": "/models/tuned?page=100&m=m0&m=m1&m=m2",
    "versions page, 500 per page": "/models/tuned?per=500",
    "versions page, filtered": "/models/tuned?q=metrics.m1+%3E+0.5+and+tags.team+%3D+%27cv%27",
    "metric chart, one panel": "/models/tuned/metrics?m=m0",
    "metric chart, five panels": "/models/tuned/metrics",
    "a version page (not a target: reads 5 histories)": "/models/tuned/versions/5000",
    "compare two versions (not a target)": "/compare?ref=tuned:10&ref=tuned:9000",
    "models page (not a target)": "/",
    "models page, filter matching 1/3 (not a target)": "/?q=tags.team+%3D+%27cv%27",
    "alias timeline (not a target)": "/models/tuned/aliases",
    "audit log, newest 500 (not a target)": "/audit",
}


def main(versions: int = 10_000, repeat: int = 7) -> dict[str, tuple[float, float]]:
    from starlette.testclient import TestClient

    from registry import Registry
    from registry.ui import app

    with tempfile.TemporaryDirectory() as work, Registry(Path(work) / "reg") as reg:
        started = time.perf_counter()
        populate_for_search(reg, "tuned", versions)
        for version in range(100, versions, max(versions // 12, 1)):  # a dozen alias moves to mark
            reg.set_alias("tuned", "production", version)
        print(f"seeded {versions} versions in {time.perf_counter() - started:.1f} s")
        client = TestClient(app(reg), base_url="http://127.0.0.1")
        results: dict[str, tuple[float, float]] = {}
        for title, url in PAGES.items():
            response = client.get(url)  # warm: the first request compiles the templates
            assert response.status_code == 200, (url, response.status_code)
            times = []
            for _ in range(repeat):
                begin = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - begin) * 1000)
            results[title] = (statistics.median(times), max(times))
            verdict = "ok" if statistics.median(times) < TARGET_MS else "OVER"
            print(
                f"{title:50s} median {statistics.median(times):7.1f} ms  slowest {max(times):7.1f} ms  "
                f"{len(response.content) / 1024:7.1f} KiB  {verdict}"
            )
        return results


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
