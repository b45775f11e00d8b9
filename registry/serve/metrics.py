"""What ``GET /metrics`` says, in Prometheus' text exposition format (version 0.0.4).

Written here rather than with ``prometheus_client``: a dozen series need
no dependency, and that library's default registry is process-global,
where each application here keeps its own counts (a test builds several
in one process). Each uvicorn worker counts its own requests; Prometheus
adds them up across the targets it scrapes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict

#: Latency histogram bounds, in seconds: from a one-row predict to a large batch.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "modelshelf_serve_"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_label(value)}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """Counters, a latency histogram per endpoint, and the served version; safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._errors: dict[tuple[str, str], int] = defaultdict(int)
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: dict[str, float] = defaultdict(float)
        self._swaps = 0
        self._refused: dict[str, int] = defaultdict(int)
        self._polls = 0
        self._poll_errors = 0
        self._notices = 0
        self._listening: bool | None = None  # None: the catalog cannot notify (SQLite, MariaDB), or pinned
        self._served: tuple[str, int, str] = ("", 0, "")
        self._loaded_at = 0.0

    def request(self, endpoint: str, status: int, seconds: float, error: str | None = None) -> None:
        with self._lock:
            self._requests[endpoint, str(status)] += 1
            if error is not None:
                self._errors[endpoint, error] += 1
            counts = self._latency.setdefault(endpoint, [0] * (len(BUCKETS) + 1))
            index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
            counts[index] += 1
            self._latency_sum[endpoint] += seconds

    def served(self, name: str, version: int, digest: str, loaded_at: float) -> None:
        with self._lock:
            self._served = (name, version, digest)
            self._loaded_at = loaded_at

    def swapped(self) -> None:
        with self._lock:
            self._swaps += 1

    def refused(self, kind: str) -> None:
        with self._lock:
            self._refused[kind] += 1

    def polled(self, ok: bool) -> None:
        with self._lock:
            self._polls += 1
            if not ok:
                self._poll_errors += 1

    def noticed(self) -> None:
        with self._lock:
            self._notices += 1

    def listening(self, up: bool) -> None:
        with self._lock:
            self._listening = up

    def can_listen(self) -> None:
        """The catalog can notify: show the gauge, at 0 unless the watch already said it listens."""
        with self._lock:
            if self._listening is None:
                self._listening = False

    def count(self, what: str) -> int:
        """A counter's total, for ``/readyz`` and tests: swaps, refused, polls, poll_errors, notices."""
        with self._lock:
            return {
                "swaps": self._swaps,
                "refused": sum(self._refused.values()),
                "polls": self._polls,
                "poll_errors": self._poll_errors,
                "notices": self._notices,
            }[what]

    def render(self) -> str:
        """Every series as Prometheus text: HELP and TYPE lines, then the samples."""
        with self._lock:
            lines: list[str] = []

            def family(name: str, kind: str, help_text: str) -> None:
                lines.append(f"# HELP {PREFIX}{name} {help_text}")
                lines.append(f"# TYPE {PREFIX}{name} {kind}")

            def sample(name: str, value: float, **labels: str) -> None:
                lines.append(f"{PREFIX}{name}{_labels(**labels)} {_number(value)}")

            family("requests_total", "counter", "HTTP requests answered, by endpoint and status code.")
            for (endpoint, code), count in sorted(self._requests.items()):
                sample("requests_total", count, endpoint=endpoint, code=code)
            family("errors_total", "counter", "Requests answered with an error, by endpoint and error code.")
            for (endpoint, error), count in sorted(self._errors.items()):
                sample("errors_total", count, endpoint=endpoint, error=error)
            family("request_duration_seconds", "histogram", "Time from request to response, by endpoint.")
            for endpoint, counts in sorted(self._latency.items()):
                total = 0
                for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                    total += count
                    sample("request_duration_seconds_bucket", total, endpoint=endpoint, le=_number(bound))
                sample("request_duration_seconds_sum", self._latency_sum[endpoint], endpoint=endpoint)
                sample("request_duration_seconds_count", total, endpoint=endpoint)
            name, version, digest = self._served
            family("model_version", "gauge", "The version being served.")
            sample("model_version", version, model=name)
            family("model_info", "gauge", "The version being served, with its digest, as labels (always 1).")
            sample("model_info", 1, model=name, version=str(version), digest=digest)
            family("model_loaded_timestamp_seconds", "gauge", "When the served version was loaded (Unix time).")
            sample("model_loaded_timestamp_seconds", self._loaded_at, model=name)
            family("swaps_total", "counter", "Times a new version replaced the served one.")
            sample("swaps_total", self._swaps)
            family("swaps_refused_total", "counter", "Versions the alias moved to that were not served, by reason.")
            for kind, count in sorted(self._refused.items()):
                sample("swaps_refused_total", count, reason=kind)
            family("polls_total", "counter", "Reads of the followed alias.")
            sample("polls_total", self._polls)
            family("poll_errors_total", "counter", "Reads of the followed alias that failed (the old version stays).")
            sample("poll_errors_total", self._poll_errors)
            if self._listening is not None:
                family("alias_notices_total", "counter", "Notices that the followed alias may have moved (PostgreSQL).")
                sample("alias_notices_total", self._notices)
                family("alias_notices_listening", "gauge", "1 while listening for alias notices, 0 while reconnecting.")
                sample("alias_notices_listening", int(self._listening))
            family("start_time_seconds", "gauge", "When this server process started (Unix time).")
            sample("start_time_seconds", self.started)
            return "\n".join(lines) + "\n"
