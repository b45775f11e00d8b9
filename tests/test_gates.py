"""The gates themselves (registry.gates): specs, stored form, and verdicts with their numbers, on plain records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry import (
    InvalidArgument,
    InvalidType,
    ModelVersion,
    Verdict,
    canary_passes,
    environment_matches,
    no_regression,
    signed,
    tagged,
)
from registry.gates import Evidence, as_gates, evaluate, gate_from_json, parse_gate, storable


def version(number: int, **fields: object) -> ModelVersion:
    return ModelVersion(
        name="m",
        version=number,
        checksum="sha256:" + "ab" * 32,
        size=1,
        format="pickle",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        **fields,  # type: ignore[arg-type]
    )


SPECS = [
    ("no_regression:accuracy:0.005", no_regression("accuracy", 0.005)),
    ("no_regression:log_loss:0.01:min", no_regression("log_loss", 0.01, mode="min")),
    ("no_regression:accuracy:0", no_regression("accuracy")),
    ("canary_passes", canary_passes()),
    ("environment_matches:python=3.12:scikit_learn=1.5", environment_matches(python="3.12", scikit_learn="1.5")),
    ("signed", signed()),
    ("tagged:reviewed=yes", tagged("reviewed", "yes")),
    ("tagged:ticket=ML-7:b=c", tagged("ticket", "ML-7:b=c")),
]


@pytest.mark.parametrize(("spec", "gate"), SPECS, ids=[spec for spec, _ in SPECS])
def test_every_builtin_gate_round_trips_through_its_spec_and_its_stored_form(spec: str, gate: object) -> None:
    parsed = parse_gate(spec)
    assert parsed == gate
    assert parse_gate(parsed.spec) == gate
    assert gate_from_json(parsed.to_json()) == gate


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_regresion:accuracy", "unknown gate"),
        ("no_regression", "no_regression:METRIC"),
        ("no_regression:accuracy:lots", "not a number"),
        ("no_regression:accuracy:-0.1", ">= 0"),
        ("no_regression:accuracy:nan", "finite"),
        ("no_regression:accuracy:0.1:up", "max or min"),
        ("signed:yes", "takes no arguments"),
        ("environment_matches", "at least one version"),
        ("environment_matches:sklearn=1.5", "keys python, scikit_learn, numpy"),
        ("tagged:reviewed", "tagged:KEY=VALUE"),
    ],
)
def test_a_bad_spec_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_gate(spec)


def test_a_callable_cannot_be_stored_and_says_why() -> None:
    chosen = as_gates([signed(), lambda candidate, current: (True, "fine")])
    with pytest.raises(InvalidArgument, match="stores its gates as data"):
        storable(chosen)
    with pytest.raises(InvalidType, match="not int"):
        as_gates([3])
    with pytest.raises(InvalidArgument, match="newer version"):
        gate_from_json({"gate": "quorum", "votes": 2})


def test_no_regression_compares_with_the_current_target_and_reports_the_numbers() -> None:
    gate = no_regression("accuracy", 0.005)
    current = version(2, metrics={"accuracy": 0.95})
    (passed,) = evaluate([gate], version(3, metrics={"accuracy": 0.946}), current, Evidence())
    assert passed.passed and passed.gate == "no_regression:accuracy:0.005"
    (failed,) = evaluate([gate], version(3, metrics={"accuracy": 0.944}), current, Evidence())
    assert not failed.passed
    assert failed.numbers == {"candidate": 0.944, "current": 0.95, "tolerance": 0.005, "bound": pytest.approx(0.945)}
    assert "0.944" in failed.reason and "m:2 has 0.95" in failed.reason


def test_no_regression_in_min_mode_lets_a_loss_rise_only_by_the_tolerance() -> None:
    gate = no_regression("log_loss", 0.01, mode="min")
    current = version(1, metrics={"log_loss": 0.30})
    assert gate.evaluate(version(2, metrics={"log_loss": 0.305}), current, Evidence()).passed
    assert not gate.evaluate(version(2, metrics={"log_loss": 0.32}), current, Evidence()).passed


def test_no_regression_passes_on_an_unset_alias_and_fails_on_a_missing_metric() -> None:
    gate = no_regression("accuracy")
    first = gate.evaluate(version(1, metrics={"accuracy": 0.5}), None, Evidence())
    assert first.passed and "not set yet" in first.reason
    missing = gate.evaluate(version(2), version(1, metrics={"accuracy": 0.5}), Evidence())
    assert not missing.passed and "has no metric 'accuracy'" in missing.reason
    unknown_current = gate.evaluate(version(2, metrics={"accuracy": 0.9}), version(1), Evidence())
    assert not unknown_current.passed and "current target m:1 has no metric" in unknown_current.reason


def test_environment_tags_and_signature_gates() -> None:
    built = version(1, environment={"python": "3.12.4", "scikit-learn": "1.5.2", "numpy": "2.1.0"})
    assert environment_matches(python="3.12", scikit_learn="1.5").evaluate(built, None, Evidence()).passed
    wrong = environment_matches(scikit_learn="1.50").evaluate(built, None, Evidence())
    assert not wrong.passed and "scikit-learn 1.5.2 (wanted 1.50)" in wrong.reason
    assert tagged("reviewed", "yes").evaluate(version(1, tags={"reviewed": "yes"}), None, Evidence()).passed
    assert not tagged("reviewed", "yes").evaluate(version(1, tags={"reviewed": "no"}), None, Evidence()).passed
    unkeyed = signed().evaluate(built, None, Evidence())
    assert not unkeyed.passed and "without the signing key" in unkeyed.reason
    assert signed().evaluate(built, None, Evidence(signature=lambda mv: "valid")).passed
    assert not signed().evaluate(built, None, Evidence(signature=lambda mv: "missing")).passed


def test_canary_gate_uses_the_verdict_run_before_and_rechecks_the_bytes() -> None:
    candidate = version(1)
    ran = Verdict(True, "the canary of m:1 passes")
    assert canary_passes().evaluate(candidate, None, Evidence(ran, candidate.checksum)).passed
    assert not canary_passes().evaluate(candidate, None, Evidence()).passed  # not run: never passes unrun
    other = canary_passes().evaluate(candidate, None, Evidence(ran, "sha256:" + "cd" * 32))
    assert not other.passed and "changed while its canary ran" in other.reason
    damaged = canary_passes().evaluate(candidate, None, Evidence(ran, candidate.checksum, damage="missing"))
    assert not damaged.passed and "damaged" in damaged.reason


def test_a_callable_gate_that_raises_or_returns_junk_refuses() -> None:
    def broken(candidate: ModelVersion, current: ModelVersion | None) -> Verdict:
        raise RuntimeError("no database")

    (raised, junk, pair) = evaluate(
        as_gates([broken, lambda c, p: 42, lambda c, p: (False, "too big")]), version(1), None, Evidence()
    )
    assert not raised.passed and "RuntimeError: no database" in raised.reason
    assert not junk.passed and "not a Verdict" in junk.reason
    assert not pair.passed and pair.reason == "too big" and pair.gate.startswith("callable:")
