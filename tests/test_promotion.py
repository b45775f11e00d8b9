"""Promotion gates and protected aliases on real SQLite catalogs: what moves, what is refused, what is recorded."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import (
    CheckReport,
    InvalidArgument,
    ModelVersion,
    PromotionRefused,
    Registry,
    TrustError,
    UntrustedArtifact,
    Verdict,
    canary_passes,
    no_regression,
    signed,
    tagged,
)
from registry.cli import EXIT_REFUSED
from tests import canary_models
from tests.canary_models import ShiftedRegressor
from tests.cli_helpers import run_cli
from tests.conftest import sql

KEY = "promotion-gates-key-of-at-least-32-bytes"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    return cache


def fill(reg: Registry) -> None:
    """m:1 (0.90) @production, m:2 (0.95, reviewed), m:3 (0.93)."""
    reg.register("m", {"v": 1}, format="pickle", metrics={"accuracy": 0.90}, alias="production")
    reg.register("m", {"v": 2}, format="pickle", metrics={"accuracy": 0.95}, tags={"reviewed": "yes"})
    reg.register("m", {"v": 3}, format="pickle", metrics={"accuracy": 0.93})


@pytest.fixture
def filled(reg: Registry) -> Registry:
    fill(reg)
    return reg


def gate_events(reg: Registry, alias: str = "production") -> list[tuple[str, int | None]]:
    actions = ("alias.promote", "alias.refuse", "alias.protect", "alias.unprotect")
    return [(e.action, e.version) for e in reg.events("m") if e.alias == alias and e.action in actions]


def test_promote_moves_when_every_gate_passes_and_records_the_verdicts(filled: Registry) -> None:
    mv = filled.promote("m", 2, "production", require=[no_regression("accuracy", 0.005), "tagged:reviewed=yes"])
    assert mv.ref == "m:2" and mv.aliases == ("production",)
    assert filled.get("m@production").version == 2
    promoted, moved = [e for e in filled.events("m") if e.alias == "production"][-2:]
    assert (promoted.action, moved.action) == ("alias.promote", "alias.move")
    assert promoted.old == 1 and promoted.user is not None
    verdicts = promoted.new["verdicts"]
    assert [v["gate"] for v in verdicts] == ["no_regression:accuracy:0.005", "tagged:reviewed=yes"]
    assert all(v["passed"] for v in verdicts)
    assert verdicts[0]["numbers"] == {"candidate": 0.95, "current": 0.9, "tolerance": 0.005, "bound": 0.895}


def test_a_refusal_names_each_failed_gate_with_its_numbers_and_moves_nothing(filled: Registry) -> None:
    filled.promote("m", 2, "production")
    with pytest.raises(PromotionRefused) as refused:
        filled.promote(
            "m", 3, "production", require=[no_regression("accuracy", 0.005), tagged("reviewed", "yes")], reason="try 3"
        )
    message = str(refused.value)
    assert "no_regression:accuracy:0.005 failed: accuracy 0.93 of m:3 is below 0.95 - 0.005 = 0.945" in message
    assert "tagged:reviewed=yes failed" in message and "Nothing moved" in message
    assert [v.gate for v in refused.value.failed] == ["no_regression:accuracy:0.005", "tagged:reviewed=yes"]
    assert refused.value.failed[0].numbers["current"] == 0.95
    assert isinstance(refused.value, PermissionError) and (refused.value.alias, refused.value.version) == (
        "production",
        3,
    )
    assert filled.get("m@production").version == 2
    assert [p.version for p in filled.alias_history("m", "production")] == [1, 2]
    refusal = filled.events("m")[-1]
    assert refusal.action == "alias.refuse" and refusal.version == 3 and refusal.old == 2
    assert refusal.new["reason"] == "try 3" and [v["passed"] for v in refusal.new["verdicts"]] == [False, False]


def test_no_regression_on_an_unset_alias_passes_and_says_so(filled: Registry) -> None:
    filled.promote("m", 3, "staging", require=[no_regression("accuracy")])
    (verdict,) = filled.events("m")[-2].new["verdicts"]
    assert verdict["passed"] and "not set yet" in verdict["reason"]


def test_a_callable_gate_gets_the_candidate_and_the_current_target(filled: Registry) -> None:
    seen: list[tuple[str, str | None]] = []

    def smaller_is_fine(candidate: ModelVersion, current: ModelVersion | None) -> Verdict:
        seen.append((candidate.ref, None if current is None else current.ref))
        return Verdict(candidate.version > 2, f"version {candidate.version}", numbers={"v": candidate.version})

    with pytest.raises(PromotionRefused, match="smaller_is_fine failed: version 2"):
        filled.promote("m", 2, "production", require=[smaller_is_fine])
    filled.promote("m", 3, "production", require=[smaller_is_fine])
    assert seen == [("m:2", "m:1"), ("m:3", "m:1")]


def test_a_protected_alias_applies_its_gates_to_set_alias_with_the_same_error(filled: Registry, home: Path) -> None:
    filled.promote("m", 2, "production")
    stored = filled.protect_alias("m", "production", require=["no_regression:accuracy:0.005"])
    assert [gate.spec for gate in stored] == ["no_regression:accuracy:0.005"]
    assert filled.alias_protections("m") == {"production": [no_regression("accuracy", 0.005)]}
    with Registry(home) as other:  # another client reads the same rules from the catalog
        with pytest.raises(PromotionRefused, match="accuracy 0.93 of m:3 is below 0.95 - 0.005"):
            other.set_alias("m", "production", 3)
        with pytest.raises(PromotionRefused, match="accuracy 0.93"):
            other.promote("m", 3, "production")  # the alias's gates apply to promote without require= too
    assert filled.get("m@production").version == 2
    filled.log_metrics("m", 3, {"accuracy": 0.96})
    assert filled.set_alias("m", "production", 3).ref == "m:3"
    assert filled.set_alias("m", "canary", 1).ref == "m:1"  # an unprotected alias moves as before, no gate event
    assert gate_events(filled) == [
        ("alias.promote", 2),  # a promotion with no gates is recorded as one, with its (empty) verdicts
        ("alias.protect", None),
        ("alias.refuse", 3),
        ("alias.refuse", 3),
        ("alias.promote", 3),
    ]
    assert gate_events(filled, "canary") == []


def test_promote_on_a_protected_alias_needs_both_its_gates_and_the_callers(filled: Registry) -> None:
    filled.protect_alias("m", "production", require=[tagged("reviewed", "yes")])
    with pytest.raises(PromotionRefused) as refused:
        filled.promote("m", 3, "production", require=[no_regression("accuracy", 0.1)])
    assert [(v.gate, v.passed) for v in refused.value.verdicts] == [
        ("tagged:reviewed=yes", False),
        ("no_regression:accuracy:0.1", True),
    ]


def test_a_callable_cannot_protect_an_alias_and_nothing_is_stored(filled: Registry) -> None:
    with pytest.raises(InvalidArgument, match="stores its gates as data"):
        filled.protect_alias("m", "production", require=[signed(), lambda candidate, current: (True, "ok")])
    with pytest.raises(InvalidArgument, match="at least one gate"):
        filled.protect_alias("m", "production", require=[])
    assert filled.alias_protections("m") == {}
    assert gate_events(filled) == []


def test_a_protected_alias_cannot_be_removed_deleted_under_or_set_by_register(filled: Registry) -> None:
    filled.protect_alias("m", "production", require=["signed"])
    with pytest.raises(PromotionRefused, match="protected .by signed., so it cannot be removed"):
        filled.delete_alias("m", "production")
    with pytest.raises(PromotionRefused, match="target of protected alias"):
        filled.delete_version("m", 1)
    with pytest.raises(PromotionRefused, match="register without alias="):
        filled.register("m", {"v": 4}, format="pickle", alias="production")
    assert [mv.version for mv in filled.versions("m")] == [1, 2, 3]  # nothing registered
    assert filled.get("m@production").version == 1
    refusals = filled.events("m", alias="production", action="alias.refuse")
    # the refused removal and the refused registration are in the trail (the registration itself rolled back)
    assert [event.new for event in refusals[-2:]] == [
        {"operation": "delete"},
        {"operation": "register", "protected": True},
    ]
    assert gate_events(filled)[-1] == ("alias.refuse", 1)


def test_unprotecting_is_an_audited_event_and_lifts_the_gates(filled: Registry) -> None:
    filled.protect_alias("m", "production", require=["signed", "tagged:reviewed=yes"])
    lifted = filled.unprotect_alias("m", "production", reason="incident 42: roll back now")
    assert [gate.spec for gate in lifted] == ["signed", "tagged:reviewed=yes"]
    event = filled.events("m")[-1]
    assert event.action == "alias.unprotect" and event.alias == "production" and event.user is not None
    assert event.new == {"reason": "incident 42: roll back now"}
    assert event.old == [{"gate": "signed"}, {"gate": "tagged", "key": "reviewed", "value": "yes"}]
    assert filled.set_alias("m", "production", 3).version == 3
    filled.delete_alias("m", "production")
    with pytest.raises(InvalidArgument, match="is not protected"):
        filled.unprotect_alias("m", "production")


def test_canary_passes_refuses_a_version_without_a_canary(filled: Registry) -> None:
    with pytest.raises(PromotionRefused, match="the canary of m:2 is missing"):
        filled.promote("m", 2, "production", require=[canary_passes()])
    assert filled.get("m@production").version == 1


def fill_with_canaries(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """m:1 @production, m:2, m:3 with real canaries; m:3's was recorded under another SHIFT, so it fails here.

    The shifted regressor's outputs depend on ``tests.canary_models.SHIFT`` in
    the loading process: the same verified bytes, another result, as after an
    upgrade (see that module).
    """
    X = [[float(i), float(i % 3)] for i in range(12)]
    y = [2.0 * row[0] - row[1] for row in X]
    reg.register("m", ShiftedRegressor().fit(X, y), input_example=X, alias="production")
    reg.register("m", ShiftedRegressor().fit(X, y), input_example=X)
    monkeypatch.setattr(canary_models, "SHIFT", 0.5)
    reg.register("m", ShiftedRegressor().fit(X, y), input_example=X)
    monkeypatch.setattr(canary_models, "SHIFT", 0.0)


class CanaryRegistry(Registry):
    """A registry whose canary check first runs ``during``: what another process does meanwhile."""

    during: list[object] = []

    def check(self, ref_or_name: str, *args: Any, **kwargs: Any) -> CheckReport:
        for step in self.during:
            assert callable(step)
            step()
        return super().check(ref_or_name, *args, **kwargs)


def test_the_canary_runs_before_the_transaction_and_the_bytes_are_rechecked_in_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CanaryRegistry(home) as reg:
        fill_with_canaries(reg, monkeypatch)
        assert reg.promote("m", 2, "production", require=[canary_passes()]).version == 2
        with pytest.raises(PromotionRefused, match=r"the canary of m:3 CHANGED \(12 rows\): predict: 12 cells"):
            reg.promote("m", 3, "production", require=["canary_passes"])
        mv = reg.get("m:1")
        # `repair` marks the candidate's bytes damaged while its canary runs: the transaction sees the mark.
        reg.during = [lambda: reg._catalog.mark_damaged(mv.digest, mv.size, "missing from the store")]
        with pytest.raises(PromotionRefused, match="marked damaged: missing from the store"):
            reg.promote("m", 1, "production", require=[canary_passes()])
        assert reg.get("m@production").version == 2


def test_an_alias_protected_by_the_canary_runs_it_outside_the_lock_then_decides(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with CanaryRegistry(home) as reg:
        fill_with_canaries(reg, monkeypatch)
        reg.protect_alias("m", "production", require=[canary_passes()])
        calls: list[str] = []
        reg.during = [lambda: calls.append("check")]
        assert reg.set_alias("m", "production", 2).version == 2  # the stored gate alone asks for the canary
        with pytest.raises(PromotionRefused, match="the canary of m:3 CHANGED"):
            reg.set_alias("m", "production", 3)
        assert calls == ["check", "check"]  # once per decision
        # one event per decision: the transaction abandoned to run the canary recorded nothing
        assert gate_events(reg) == [("alias.protect", None), ("alias.promote", 2), ("alias.refuse", 3)]
    monkeypatch.setattr(canary_models, "SHIFT", 0.5)  # another process, where m:1's outputs moved
    with Registry(home) as plain, pytest.raises(PromotionRefused, match="the canary of m:1 CHANGED"):
        plain.set_alias("m", "production", 1)


def test_signed_passes_only_for_versions_signed_with_the_key(home: Path) -> None:
    with Registry(home) as unkeyed:
        unkeyed.register("m", {"v": 1}, format="pickle")
    with Registry(home, signing_key=KEY) as reg:
        reg.seal("m")
        reg.register("m", {"v": 2}, format="pickle")
        assert reg.promote("m", 2, "production", require=[signed()]).version == 2
        with pytest.raises(PromotionRefused, match="m:1 was registered without the signing key"):
            reg.promote("m", 1, "production", require=[signed()])
    with Registry(home) as unkeyed, pytest.raises(PromotionRefused, match="cannot be checked"):
        unkeyed.promote("m", 2, "staging", require=["signed"])


@pytest.fixture
def keyed(home: Path) -> Iterator[Registry]:
    with Registry(home, signing_key=KEY) as reg:
        fill(reg)
        reg.protect_alias("m", "production", require=[no_regression("accuracy", 0.005)])
        reg.promote("m", 2, "production")
        yield reg


@pytest.mark.parametrize(
    "attack",
    [
        "DELETE FROM alias_protection",
        """UPDATE alias_protection SET gates = '[{"gate": "no_regression", "metric": "accuracy", "tolerance": 1.0,
        "mode": "max"}]'""",
    ],
    ids=["protection-deleted", "gates-weakened"],
)
def test_raw_sql_cannot_lift_a_protection_on_a_keyed_registry(keyed: Registry, home: Path, attack: str) -> None:
    sql(home, attack)
    with pytest.raises(UntrustedArtifact, match="protect") as caught:
        keyed.set_alias("m", "production", 3)  # 0.93 < 0.95 - 0.005: only a lifted rule would let it through
    assert isinstance(caught.value, TrustError)
    with Registry(home, signing_key=KEY) as other, pytest.raises(UntrustedArtifact, match="protect"):
        other.get("m@production")
    sql(home, "UPDATE aliases SET version_id = 3")  # even moving the alias by SQL as well is seen
    with pytest.raises(UntrustedArtifact):
        keyed.get("m@production")


def test_a_seal_made_before_protections_existed_still_verifies(home: Path) -> None:
    with Registry(home, signing_key=KEY) as reg:
        fill(reg)
        state = reg._catalog.engine.connect().exec_driver_sql("SELECT state FROM models").scalar_one()
        assert "protections" not in (json.loads(state) if isinstance(state, str) else state)
        reg.protect_alias("m", "production", require=["signed"])
        reg.unprotect_alias("m", "production", reason="done")
        assert reg.get("m@production").version == 1


def test_the_cli_promotes_protects_and_shows_the_trail(home: Path) -> None:
    with Registry(home) as reg:
        fill(reg)
    done = run_cli(home, "promote", "m", "2", "production", "-r", "no_regression:accuracy:0.005", "--reason", "r1")
    assert done.exit_code == 0, done.output
    assert "m@production → m:2 (1 gate passed)" in done.stdout
    assert "✓ no_regression:accuracy:0.005" in done.stdout
    protected = run_cli(home, "alias", "protect", "m", "production", "-r", "no_regression:accuracy:0.005", "--json")
    assert json.loads(protected.stdout) == {
        "name": "m",
        "alias": "production",
        "protected": True,
        "require": ["no_regression:accuracy:0.005"],
    }
    refused = run_cli(home, "alias", "set", "m", "production", "3")
    assert refused.exit_code == EXIT_REFUSED == 4
    assert refused.stderr.startswith("error: refused to point m@production at m:3: no_regression:accuracy:0.005")
    assert refused.stderr.count("\n") == 1
    bad = run_cli(home, "promote", "m", "3", "production", "-r", "no_regression:accuracy:lots")
    assert bad.exit_code == 2 and "not a number" in bad.stderr
    removed = run_cli(home, "alias", "rm", "m", "production")
    assert removed.exit_code == EXIT_REFUSED and "unprotect it first" in removed.stderr
    lifted = run_cli(home, "alias", "unprotect", "m", "production", "--reason", "incident 42")
    assert lifted.exit_code == 0 and "it required no_regression:accuracy:0.005" in lifted.stdout
    log = run_cli(home, "log", "m", "--alias", "production")
    assert log.exit_code == 0, log.output
    lines = log.stdout.splitlines()
    gates_at = lines.index("time (UTC)\taction\tversion\tgates\tby")
    rows = [line.split("\t") for line in lines[gates_at + 1 :]]
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("alias.promote", "2", "✓ no_regression:accuracy:0.005 — r1"),
        ("alias.protect", "", "require no_regression:accuracy:0.005"),
        ("alias.refuse", "3", "✗ no_regression:accuracy:0.005"),
        ("alias.refuse", "2", "removal refused: the alias is protected"),
        ("alias.unprotect", "", "lifted — incident 42"),
    ]


def test_the_readme_promotion_gates_section_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("\n## Promotion gates\n")
    text = readme[start : readme.index("\n## ", start + 1)]
    (code,) = re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md Promotion gates", "exec"), {"__name__": "__readme__"})
    lines = printed.getvalue().splitlines()
    assert lines[0] == "promoted: churn:2"
    assert lines[1] == (
        "refused: no_regression:accuracy:0.005 {'candidate': 0.93, 'current': 0.97, 'tolerance': 0.005, 'bound': 0.965}"
    )
    assert lines[2] == "refused: tagged:reviewed=yes {'tag': 'no', 'wanted': 'yes'}"
    assert lines[3] == "production: churn:2"
    assert lines[4] == (
        "trail: ['alias.promote', 'alias.set', 'alias.protect', 'alias.promote', 'alias.move', 'alias.refuse']"
    )
    (sh,) = re.findall(r"^```sh\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    for line in sh.strip().splitlines():
        args = shlex.split(line)[3:]  # after `modelshelf --home gated`
        result = run_cli(tmp_path / "gated", *args)
        assert result.exit_code == 0, (line, result.output)
    assert "alias.refuse" in result.stdout and "✗ tagged:reviewed=yes" in result.stdout


def test_the_web_ui_moves_a_protected_alias_only_through_its_gates(filled: Registry) -> None:
    import re

    from starlette.testclient import TestClient

    from registry.ui.csrf import FIELD
    from registry.ui.routes import app

    filled.promote("m", 2, "production")
    filled.protect_alias("m", "production", require=["no_regression:accuracy:0.005"])
    writer = TestClient(app(filled, allow_writes=True), base_url="http://127.0.0.1")
    token = re.search(rf'name="{FIELD}" value="([^"]+)"', writer.get("/models/m/aliases").text)
    assert token is not None
    form = {"alias": "production", FIELD: token.group(1)}
    refused = writer.post("/models/m/aliases", data={**form, "version": "3"}, follow_redirects=False)
    assert refused.status_code == 409 and "no_regression:accuracy:0.005 failed" in refused.text
    assert filled.get("m@production").version == 2
    filled.log_metrics("m", 3, {"accuracy": 0.951})
    moved = writer.post("/models/m/aliases", data={**form, "version": "3"}, follow_redirects=False)
    assert moved.status_code == 303 and filled.get("m@production").version == 3
    assert gate_events(filled)[-2:] == [("alias.refuse", 3), ("alias.promote", 3)]


def test_environment_matches_reads_what_register_recorded(filled: Registry) -> None:
    import platform

    here = ".".join(platform.python_version().split(".")[:2])
    assert filled.promote("m", 2, "production", require=[f"environment_matches:python={here}"]).version == 2
    with pytest.raises(PromotionRefused, match=rf"m:3 was registered with python {platform.python_version()}"):
        filled.promote("m", 3, "production", require=["environment_matches:python=2.7"])


def test_the_catalog_itself_refuses_to_move_a_protected_alias_without_a_decision(filled: Registry) -> None:
    """Behind the registry, a catalog caller that cannot evaluate gates is refused too (a second guard)."""
    filled.protect_alias("m", "production", require=["signed"])
    _, decision = filled._catalog.set_alias("m", "production", 2)
    assert not decision.allowed and filled.get("m@production").version == 1
    _, plain = filled._catalog.set_alias("m", "canary", 2)
    assert plain.allowed and plain.record is None and filled.get("m@canary").version == 2


def test_every_action_the_trail_records_can_be_filtered_on(home: Path) -> None:
    """The gates' own events (and a seal) are found by events(action=...) and the UI's audit filter alike."""
    with Registry(home, signing_key=KEY) as reg:
        fill(reg)
        reg.protect_alias("m", "production", require=[no_regression("accuracy", 0.005)])
        reg.promote("m", 2, "production")
        with pytest.raises(PromotionRefused):
            reg.promote("m", 1, "production")
        reg.unprotect_alias("m", "production", reason="done")
        reg.seal("m")
        for action in ("alias.protect", "alias.promote", "alias.refuse", "alias.unprotect", "state.seal"):
            assert [e.action for e in reg.events("m", action=action)] == [action], action
