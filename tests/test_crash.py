"""SIGKILL a process in the middle of registering, again and again: nothing committed is lost.

The kill moments are drawn from a seeded generator; set MODELSHELF_CRASH_SEED
to replay a failure, MODELSHELF_CRASH_KILLS for a longer soak.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry import Registry
from tests.conftest import blob_files

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("MODELSHELF_CRASH_SEED", "20261123"))
KILLS = int(os.environ.get("MODELSHELF_CRASH_KILLS", "30"))


class Killer:
    """Starts victims from a warm zygote process and SIGKILLs them at random moments."""

    def __init__(self, home: Path, rng: random.Random) -> None:
        self.rng = rng
        self.zygote = subprocess.Popen(
            [sys.executable, "-m", "tests.workers", str(home)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run_and_kill(self) -> list[int]:
        """Fork a victim, let it register for a random while, SIGKILL it; return the versions it reported."""
        assert self.zygote.stdin is not None and self.zygote.stdout is not None
        self.zygote.stdin.write("go\n")
        self.zygote.stdin.flush()
        pid = int(self.zygote.stdout.readline())
        assert self.zygote.stdout.readline().strip() == "ready"  # the victim shares the zygote's stdout
        time.sleep(self.rng.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        versions = []
        for line in self.zygote.stdout:  # what the victim printed before dying, then the zygote's "exit"
            if line.strip() == "exit":
                return versions
            versions.append(int(line))
        raise AssertionError("the zygote died")

    def close(self) -> None:
        self.zygote.kill()
        self.zygote.wait()


@pytest.mark.slow
def test_repeated_sigkill_loses_nothing_and_leaves_only_garbage(home: Path) -> None:
    killer = Killer(home, random.Random(SEED))
    committed: list[int] = []
    checked = 0  # versions up to this one were loaded and verified after an earlier kill
    hashed: set[Path] = set()  # blob files already checked to hash to their names
    for kill in range(KILLS):
        committed += killer.run_and_kill()
        context = f"seed {SEED}, after kill {kill + 1}"
        with Registry(home) as reg:
            versions = [mv.version for mv in reg.versions("victim")] if reg.models() else []
            assert set(committed) <= set(versions), f"{context}: a reported version was lost"
            assert versions == list(range(1, len(versions) + 1)), f"{context}: numbering has gaps"
            report = reg.verify(deep=False)  # every version's blob present with the right size
            assert report.ok, (context, report.problems)
            for mv in reg.versions("victim")[checked:]:  # the new ones: loaded, hence hash-verified
                assert reg.load(mv.ref)["i"] == int(mv.tags["i"]), context
            for blob in set(blob_files(home)) - hashed:  # no partial file under a final name, orphan or not
                digest = blob.parent.name + blob.name
                assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest, f"{context}: {blob}"
                hashed.add(blob)
            following = reg.register("victim", {"i": -1}, format="pickle", tags={"i": "-1"})
            assert following.version == len(versions) + 1, context
            committed.append(following.version)
            checked = following.version
    killer.close()
    with Registry(home) as reg:
        reg.gc(dry_run=False, min_age=0)
        after = reg.verify(deep=True)
        assert after.ok and after.problems == [], after.problems
        assert list((home / "tmp").iterdir()) == []
        for mv in reg.versions("victim"):
            assert reg.load(mv.ref)["i"] == int(mv.tags["i"])
        assert len(reg.versions("victim")) >= KILLS
