"""Upgrade pre-flight: would these versions load, and predict the same, under another interpreter?

The question before upgrading a serving image is not whether *this*
process can load a model but whether *that* one can. So each version is
handed to the other interpreter in a subprocess: the bytes are read and
verified here (checksum, and the signature with a key), then written to the
child's standard input with the version's canary. The child runs the source
of :mod:`registry.inputs.canary_child` with ``python -c``, so it needs
numpy, joblib and scikit-learn (and what the model imports), not modelshelf;
it answers with one JSON object, and the comparison with the recorded
outputs happens here, with the same code as :meth:`Registry.check`.

One subprocess per version: a model that crashes or hangs the interpreter
(a segfault in an extension, an endless ``__setstate__``) is that version's
failure, not the end of the run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from importlib import resources
from typing import IO, Any

from registry.domain import Canary, CheckReport, ModelVersion, PreflightResult
from registry.errors import InvalidArgument
from registry.inputs import canary as canaries
from registry.provenance.environment import environment_differences

#: Seconds a version may take to load and answer its canary in the other interpreter.
DEFAULT_TIMEOUT = 300.0
#: Lines of the child's standard error kept in a failure's message.
STDERR_LINES = 5


#: Bytes of the child's output kept: the answer is small, and a model flooding its output must not fill memory.
MAX_OUTPUT = 4 * 1024 * 1024
#: Variables the child never inherits: it runs the model's code, which has no use for this registry's keys.
_WITHHELD = ("MODELSHELF_SIGNING_KEY", "MODELSHELF_BUNDLE_KEY")


def child_source() -> str:
    """The program the other interpreter runs: this package's canary codec and child, as one file."""
    return resources.files("registry.inputs").joinpath("canary_child.py").read_text(encoding="utf-8")


def child_environment() -> dict[str, str]:
    """This process's environment, less the keys (see :data:`_WITHHELD`)."""
    return {name: value for name, value in os.environ.items() if name not in _WITHHELD}


def check_interpreter(python: object) -> str:
    """``python`` as an absolute path to an executable file, or :class:`InvalidArgument` saying what is wrong."""
    if not isinstance(python, str | os.PathLike) or not str(python):
        raise InvalidArgument(f"python must be the path of an interpreter, such as venv/bin/python, not {python!r}")
    text = os.fspath(python)
    found = shutil.which(text) if os.sep not in text else text
    if found is None or not os.path.isfile(found):
        raise InvalidArgument(f"no interpreter at {text!r}: give the path of the other environment's bin/python")
    if not os.access(found, os.X_OK):
        raise InvalidArgument(f"{found} is not executable: give the path of the other environment's bin/python")
    return os.path.abspath(found)


def check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
        raise InvalidArgument(f"timeout must be a number of seconds > 0, not {timeout!r}")
    return float(timeout)


def probe(python: str, timeout: float) -> dict[str, str | None]:
    """The versions of Python, scikit-learn, numpy, joblib and scipy in the other interpreter.

    Raises :class:`InvalidArgument` when it cannot run the child at all
    (no numpy) or lacks scikit-learn or joblib: nothing could load there.
    """
    answer = run_child(python, {"probe": True}, None, timeout)
    if "environment" not in answer:
        said = str(answer.get("error"))
        needs = "; it needs numpy, joblib and scikit-learn" if "No module named" in said else ""
        raise InvalidArgument(f"{python} cannot run the pre-flight: {said}{needs} (and Python 3.8 or later)")
    environment: dict[str, str | None] = answer["environment"]
    missing = [key for key in ("scikit-learn", "joblib") if not environment.get(key)]
    if missing:
        raise InvalidArgument(
            f"{python} has no {' and no '.join(missing)}: install them in that environment (it needs scikit-learn "
            "and joblib, and whatever the models import; modelshelf itself is not needed there)"
        )
    return environment


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"the interpreter was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the interpreter was killed by signal {-code}"
    return f"the interpreter exited with status {code}"


def _tail(stream: IO[bytes]) -> str:
    size = stream.seek(0, os.SEEK_END)
    stream.seek(max(0, size - 64 * 1024))
    lines = [line for line in stream.read().decode("utf-8", "replace").splitlines() if line.strip()]
    return " | ".join(lines[-STDERR_LINES:])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Kill the child and whatever it started (loky workers, say): it leads a process group of its own."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def run_child(
    python: str, header: dict[str, Any], write_artifact: Callable[[IO[bytes]], None] | None, timeout: float
) -> dict[str, Any]:
    """Run the child with ``header`` and the artifact ``write_artifact`` writes; its answer, or ``{"error"}``.

    The child runs in an empty temporary directory (a ``joblib.py`` where
    the command was started must not stand in for the real one), without
    this registry's keys, in a process group of its own. Its answer comes on
    standard output; a crash, a timeout or output that is not JSON becomes an
    ``error`` naming what happened and the last lines it wrote.
    """
    with (
        tempfile.TemporaryDirectory(prefix="modelshelf-preflight-") as workdir,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        process = subprocess.Popen(
            [python, "-c", child_source()],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            cwd=workdir,
            env=child_environment(),
            start_new_session=True,
        )
        try:
            return _answer(process, header, write_artifact, timeout, out, err)
        finally:
            if process.poll() is None:  # an exception here (Ctrl-C): the child must not outlive the call
                _stop(process)


def _answer(
    process: subprocess.Popen[bytes],
    header: dict[str, Any],
    write_artifact: Callable[[IO[bytes]], None] | None,
    timeout: float,
    out: IO[bytes],
    err: IO[bytes],
) -> dict[str, Any]:
    assert process.stdin is not None
    stdin = process.stdin
    failure: list[BaseException] = []

    def feed() -> None:
        try:
            stdin.write(json.dumps(header).encode() + b"\n")
            if write_artifact is not None:
                write_artifact(stdin)
        except BrokenPipeError:
            pass  # the child ended early; its exit status says why
        except BaseException as exc:
            failure.append(exc)
        finally:
            try:
                stdin.close()
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, name="preflight-feed", daemon=True)
    writer.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(process)
        writer.join(timeout=10)
        return {"error": f"it did not finish within {timeout:g} s (the interpreter was stopped)"}
    writer.join(timeout=10)
    if failure:
        raise failure[0]  # reading the verified bytes here failed: that is this side's error, not the child's
    out.seek(0)
    raw = out.read(MAX_OUTPUT + 1)
    text = raw.decode("utf-8", "replace").strip()
    answer: Any = None
    if code == 0:
        try:
            answer = json.loads(text)
        except json.JSONDecodeError:
            said = f"its answer is not JSON ({text[:80]!r}…)" if text else "it gave no answer"
            return {"error": f"the interpreter exited with status 0 but {said}"}
    if isinstance(answer, dict):
        return answer
    said = _tail(err)
    return {"error": _describe_exit(code) + (f": {said}" if said else "")}


def result_of(
    mv: ModelVersion,
    aliases: tuple[str, ...],
    canary: Canary | None,
    answer: dict[str, Any],
    target: dict[str, str | None],
    *,
    rtol: float,
    atol: float,
) -> PreflightResult:
    """What the child's answer means for ``mv``: loads / warns / fails / changed, with the canary's report."""
    differences = tuple(environment_differences(mv.environment, dict(target), where="there"))
    warned = tuple(str(text) for text in answer.get("warnings") or ())
    ref = mv.ref
    if not answer.get("loaded"):
        error = str(answer.get("error") or "it did not load")
        return PreflightResult(
            ref, aliases, status="fails", canary="not run", warnings=warned, error=error, environment=differences
        )
    loaded = "warns" if warned else "loads"
    if canary is None:
        return PreflightResult(
            ref, aliases, status=loaded, canary="no canary", warnings=warned, environment=differences
        )
    if "outputs" not in answer:
        note = str(answer.get("canary_error") or "it did not answer its canary")
        return PreflightResult(
            ref, aliases, status=loaded, canary="not run", warnings=warned, canary_note=note, environment=differences
        )
    _, expected = canaries.decoded(canary, mv.ref)
    answers: dict[str, Any] = {}
    for method, spec in (answer.get("outputs") or {}).items():
        if isinstance(spec, dict) and "error" in spec:
            answers[method] = str(spec["error"])
            continue
        try:
            answers[method] = canaries.decode_array(spec)
        except (KeyError, TypeError, ValueError) as exc:
            answers[method] = f"its answer could not be read back: {type(exc).__name__}: {exc}"
    report: CheckReport = canaries.report_of(
        canary, mv.ref, expected, answers, rtol=rtol, atol=atol, environment=differences
    )
    status = "changed" if report.changed else loaded
    later = tuple(str(text) for text in answer.get("canary_warnings") or () if text not in warned)
    return PreflightResult(
        ref,
        aliases,
        status=status,
        canary=report.status,
        warnings=warned + later,
        report=report,
        environment=differences,
    )


def refused_here(mv: ModelVersion, exc: Exception, target: dict[str, str | None]) -> PreflightResult:
    """A version whose bytes or signature did not verify here: a failure, and nothing was handed over."""
    differences = tuple(environment_differences(mv.environment, dict(target), where="there"))
    error = f"refused here, never handed over: {exc}"
    return PreflightResult(mv.ref, mv.aliases, "fails", "not run", error=error, environment=differences)
