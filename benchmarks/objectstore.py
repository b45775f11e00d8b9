"""Group 11: a ~100 MB model registered on PostgreSQL + an S3-protocol server, against the client's own upload.

    python -m benchmarks --only objectstore
    python -m benchmarks.objectstore 100 5      # this group alone, printed (MEGABYTES ROUNDS)

The server is moto's (``python -m moto.server`` on a free port of
127.0.0.1, the one the tests start); the catalog a fresh database on the
PostgreSQL server of ``MODELSHELF_BENCH_POSTGRES_URL`` (else
``MODELSHELF_TEST_POSTGRES_URL``, else the local one with trust
authentication). Every round registers new bytes (one number of the model
changed), so nothing is skipped as already stored, and the rounds of every
contender are interleaved so drift on a shared machine hits them alike.

The floor is uploading the same bytes with the same client: s3fs's
``put_file`` of the model's ``joblib.dump`` to the same server, once with
its defaults (one ``PUT`` up to 100 MiB) and once as a multipart upload with
the part size and concurrency the store uses; the ratio is against the
faster of the two. SQLite + a local directory is the other baseline. The
load side reads the blob back into an empty cache (download, verify,
unpickle) against s3fs's ``get_file`` and ``joblib.load`` of the same bytes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

GROUP = "11 object store"
POSTGRES_URL = os.environ.get(
    "MODELSHELF_BENCH_POSTGRES_URL",
    os.environ.get("MODELSHELF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
#: What moto accepts (any credentials); the endpoint is added once the server runs.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "modelshelf-bench",
    "AWS_SECRET_ACCESS_KEY": "modelshelf-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class Unavailable(Exception):
    """A server this group needs cannot be had here; the group is skipped with the reason."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, with the AWS variables s3fs reads pointing at it."""
    try:
        import moto.server  # noqa: F401
        import s3fs
    except ImportError as exc:
        raise Unavailable(f"moto's server and s3fs are needed ({exc}); pip install -e '.[test]'") from None
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in (*CREDENTIALS, "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE")}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise Unavailable("moto's server did not start") from None
                time.sleep(0.1)
        os.environ.pop("AWS_CONFIG_FILE", None)
        os.environ.update({**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
        s3fs.S3FileSystem.clear_instance_cache()
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = make_url(POSTGRES_URL)
    name = f"modelshelf_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        raise Unavailable(f"no PostgreSQL server ({type(exc).__name__}); set MODELSHELF_BENCH_POSTGRES_URL") from None
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def measure(work: Path, megabytes: int, rounds: int) -> dict[str, float]:
    """Medians in ms of every contender, rounds interleaved; also the blob's size in MB."""
    import joblib
    import s3fs

    from benchmarks.child import big_model
    from registry import Registry
    from registry.store import multipart, open_store

    model = big_model(megabytes)
    data = model._fit_X  # changed by one number a round: new bytes, never deduplicated
    dumped = work / "model.joblib"
    times: dict[str, list[float]] = {}

    def record(name: str, ms: float) -> None:
        times.setdefault(name, []).append(ms)

    def get_and_load(key: str) -> None:
        fs.get_file(key, str(work / "fetched.joblib"))
        joblib.load(work / "fetched.joblib")

    with moto_server(), postgres_database() as catalog:
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        bucket = f"modelshelf-bench-{uuid.uuid4().hex[:8]}"
        fs.mkdir(bucket)
        url = f"s3://{bucket}/registry"
        remote_reg = Registry(catalog=catalog, store=open_store(url, work / "cache-writer"))
        local_reg = Registry(work / "local")
        part, parallel = multipart.PART_SIZE, multipart.PART_CONCURRENCY

        def one_round(number: int) -> None:
            """Every contender once, on this round's bytes (``dumped`` holds them for s3fs)."""
            floor = f"{bucket}/floor/{number}"
            record("put defaults", _timed(lambda: fs.put_file(str(dumped), f"{floor}-a")))
            shaped = {"chunksize": part, "max_concurrency": parallel}
            record("put multipart", _timed(lambda: fs.put_file(str(dumped), f"{floor}-b", **shaped)))
            fs.rm([f"{floor}-a", f"{floor}-b"])  # moto holds objects in memory
            record("register s3", _timed(lambda: remote_reg.register("big", model)))
            record("register local", _timed(lambda: local_reg.register("big", model)))
            # The load side: a machine with an empty cache reads the version back.
            fs.put_file(str(dumped), f"{floor}-c")
            record("get+load", _timed(lambda: get_and_load(f"{floor}-c")))
            fs.rm(f"{floor}-c")
            shutil.rmtree(work / "cache-reader", ignore_errors=True)
            with Registry(catalog=catalog, store=open_store(url, work / "cache-reader")) as reader:
                record("load s3", _timed(lambda: reader.load(f"big:{number + 1}")))

        try:
            remote_reg.register("warm-up", {"x": 1}, format="pickle")  # connections and migrations, not measured
            local_reg.register("warm-up", {"x": 1}, format="pickle")
            for round_ in range(rounds):
                data[0, 0] = round_ + 1
                with open(dumped, "wb") as file:
                    joblib.dump(model, file)
                one_round(round_)
        finally:
            remote_reg.close()
            local_reg.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    medians["megabytes"] = dumped.stat().st_size / 1e6
    medians["part_mb"] = part / 2**20
    medians["parallel"] = parallel
    return medians


def bench_object_store(work: Path, results: Any, summary: Any, megabytes: int, rounds: int) -> None:
    """Group 11 and the table's row: register on PostgreSQL + S3 (moto) against s3fs's put and SQLite + local."""
    target = work / "objectstore"
    target.mkdir()
    try:
        m = measure(target, megabytes, rounds)
    except Unavailable as reason:
        print(f"{GROUP:<22} skipped: {reason}", flush=True)
        summary.set("object store", f"register {megabytes} MB, PostgreSQL + S3", modelshelf=f"not run ({reason})")
        return
    floor = min(m["put defaults"], m["put multipart"])
    size = f"{m['megabytes']:.0f} MB"
    results.add(GROUP, f"s3fs put_file {size}, defaults", m["put defaults"])
    shape = f"{m['part_mb']:.0f} MiB parts, {m['parallel']:.0f} at once"
    results.add(GROUP, f"s3fs put_file {size}, {shape}", m["put multipart"])
    results.add(
        GROUP,
        f"register {size}, PostgreSQL + S3 (moto)",
        m["register s3"],
        baseline=floor,
        baseline_name="s3fs put (floor)",
        target="target <= 1.30x",
    )
    results.add(
        GROUP,
        f"register {size}, PostgreSQL + S3 vs local",
        m["register s3"],
        baseline=m["register local"],
        baseline_name="SQLite + local",
    )
    results.add(
        GROUP,
        f"load {size}, empty cache, PostgreSQL + S3",
        m["load s3"],
        baseline=m["get+load"],
        baseline_name="s3fs get_file + joblib.load",
    )
    summary.set(
        "object store",
        f"register {size}, PostgreSQL + S3 (moto server)",
        joblib=floor,
        joblib_note="s3fs put_file, the floor",
        modelshelf=m["register s3"],
        mlflow="—",
        mlflow_note="",
    )


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    from benchmarks.run import Results
    from benchmarks.summary import Summary

    work = Path(tempfile.mkdtemp(prefix="modelshelf-bench-", dir=os.environ.get("MODELSHELF_BENCH_DIR")))
    try:
        summary = Summary()
        bench_object_store(work, Results(), summary, megabytes, rounds)
        summary.finish()
        print(summary.text())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
