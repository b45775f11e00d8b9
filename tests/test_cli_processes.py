"""The command line as a real process: Ctrl-C, and writing into a read-only mount (slow lane: subprocesses, mounts)."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from registry import Registry
from tests.mounts import ReadOnlyDir, read_only_dir  # noqa: F401  (a fixture)


def _workdir(tmp_path: Path) -> Path:
    """A directory to run in that holds no ``registry`` folder (the ``home`` fixture's would shadow the package)."""
    path = tmp_path / "cwd"
    path.mkdir(exist_ok=True)
    return path


def _start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "registry", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    # a "database server" that accepts the connection and never answers: the command waits inside libpq
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(60)
        url = f"postgresql+psycopg://nobody@127.0.0.1:{server.getsockname()[1]}/models"
        process = _start("--catalog", url, "--store", str(tmp_path / "store"), "models", cwd=_workdir(tmp_path))
        try:
            connection, _ = server.accept()  # the command is now inside, waiting for the server's reply
            with connection:
                process.send_signal(signal.SIGINT)
                out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 130, err
    assert err == "error: interrupted\n" and out == ""


def test_fetch_export_and_keys_into_a_read_only_mount_are_one_line_errors(
    home: Path,
    tmp_path: Path,
    read_only_dir: ReadOnlyDir,  # noqa: F811  (the fixture imported above)
) -> None:
    with Registry(home) as reg:
        reg.register("m", {"w": 1}, format="pickle")
    commands = {
        "fetch": ("fetch", "m:1", "-o", str(read_only_dir.path / "m.pkl")),
        "export": ("export", "m:1", "-o", str(read_only_dir.path / "m.tar")),
        "keys": ("keys", "generate", "--out", str(read_only_dir.path), "--name", "k"),
    }
    for what, args in commands.items():
        result = subprocess.run(
            [sys.executable, "-m", "registry", "--home", str(home), *args],
            capture_output=True,
            text=True,
            cwd=_workdir(tmp_path),
            timeout=120,
        )
        # an output path the user can change is a usage error; the key files go through the generic net
        assert result.returncode == (1 if what == "keys" else 2), (what, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), (what, result.stderr)
        assert "Read-only file system" in result.stderr and "Traceback" not in result.stderr, what
    assert list(read_only_dir.source.iterdir()) == []  # nothing half-written


def test_debug_still_shows_the_traceback(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "dir" / "x.tar"
    with Registry(home) as reg:
        reg.register("m", {"w": 1}, format="pickle")
    result = subprocess.run(
        [sys.executable, "-m", "registry", "--debug", "--home", str(home), "export", "m:1", "-o", str(target)],
        capture_output=True,
        text=True,
        cwd=_workdir(tmp_path),
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr and "InvalidPath" in result.stderr


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    # `modelshelf policy | head -0`: the read end is closed before the command (still importing) writes a byte
    process = _start("policy", cwd=_workdir(tmp_path))
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert err == ""  # no traceback, no "error: Broken pipe"


def test_ctrl_c_at_a_confirmation_prompt_exits_130(home: Path, tmp_path: Path) -> None:
    with Registry(home) as reg:
        reg.register("m", {"w": 1}, format="pickle")
    leader, follower = pty.openpty()  # a real terminal, so that `delete` asks
    process = subprocess.Popen(
        [sys.executable, "-m", "registry", "--home", str(home), "delete", "m:1"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=_workdir(tmp_path),
        start_new_session=True,
    )
    os.close(follower)
    seen = b""
    try:
        while b"delete m:1" not in seen:
            seen += os.read(leader, 1024)
        # The prompt is on the terminal a moment before the process blocks reading its answer, and a
        # SIGINT landing in that gap is only noticed once input arrives (readline's wait has already
        # begun): press Ctrl-C as a person would, after the prompt, and once more if the first went unseen.
        time.sleep(0.3)
        os.killpg(process.pid, signal.SIGINT)  # what the terminal sends its foreground job on Ctrl-C
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 130
        with contextlib.suppress(OSError):  # the terminal's far end is gone once the process exits
            while chunk := os.read(leader, 1024):
                seen += chunk
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert b"error: interrupted" in seen and b"Traceback" not in seen and b"Aborted" not in seen
    with Registry(home) as reg:
        assert reg.get("m:1").version == 1  # nothing deleted
