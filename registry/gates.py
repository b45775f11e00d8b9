"""Promotion gates: the conditions a version must meet before an alias may point at it.

A gate looks at two catalog records, the *candidate* version and the
alias's *current* target (``None`` when the alias is not set), and returns a
:class:`Verdict`: passed or not, a reason a person can act on, and the
numbers it compared. This module is pure: it never touches the catalog or
the store, so the same gates give the same answers in every process, and
the registry can evaluate them inside the transaction that moves the alias
(see :meth:`registry.facade.Registry.promote`).

Built-in gates are frozen dataclasses that know how to write themselves as
data (:meth:`BuiltinGate.to_json`) and as a command-line spec
(:attr:`BuiltinGate.spec`), so a protected alias stores its rules and the
CLI and every other process enforce the same ones::

    no_regression:accuracy:0.005         no_regression("accuracy", 0.005)
    no_regression:log_loss:0.01:min      no_regression("log_loss", 0.01, mode="min")
    canary_passes                        canary_passes()
    environment_matches:scikit_learn=1.5 environment_matches(scikit_learn="1.5")
    signed                               signed()
    tagged:reviewed=yes                  tagged("reviewed", "yes")

Any callable ``(candidate, current) -> Verdict`` (or a ``(passed, reason)``
pair) is a gate too, for :meth:`~registry.facade.Registry.promote`; it
cannot be stored for a protected alias, since code is not data.

>>> gate = parse_gate("no_regression:accuracy:0.005")
>>> gate == no_regression("accuracy", 0.005)
True
>>> gate_from_json(gate.to_json()).spec
'no_regression:accuracy:0.005'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeAlias

from registry.domain import ModelVersion
from registry.errors import InvalidArgument, InvalidType

#: A number or text a verdict reports (a metric value, a tolerance, a version string).
Number: TypeAlias = float | int | str | None


@dataclass(frozen=True)
class Verdict:
    """What one gate decided: ``passed``, the ``reason`` in words, and the ``numbers`` it compared.

    ``gate`` is the gate's spec (``no_regression:accuracy:0.005``), filled in
    by :func:`evaluate` so a refusal can name each failed gate.

    >>> Verdict(False, "accuracy 0.91 is below 0.95 - 0.005", numbers={"candidate": 0.91}).passed
    False
    """

    passed: bool
    reason: str
    gate: str = ""
    numbers: Mapping[str, Number] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The verdict as the audit trail records it."""
        return {"gate": self.gate, "passed": self.passed, "reason": self.reason, "numbers": dict(self.numbers)}


@dataclass(frozen=True)
class Evidence:
    """Facts a gate may need beyond the two records, gathered by the registry before it decides.

    ``canary`` is the verdict of the candidate's prediction canary and
    ``canary_checksum`` the checksum of the bytes it ran on (the canary
    loads the model, which is too slow to do under the catalog's write
    lock, so it runs first); ``damage`` is what ``repair`` found wrong with
    the candidate's bytes, read in the deciding transaction.
    ``signature`` tells the state of a version's HMAC under the registry's
    signing key (``valid``, ``legacy``, ``missing``, ``invalid``); ``None``
    when the registry has no key and cannot check one.
    ``environment_signed`` tells whether that HMAC also binds the recorded
    environment (``None`` without a key: the catalog's word is all there is).
    """

    canary: Verdict | None = None
    canary_checksum: str | None = None
    damage: str | None = None
    signature: Callable[[ModelVersion], str] | None = None
    environment_signed: Callable[[ModelVersion], bool] | None = None


class Gate(Protocol):
    """What :func:`evaluate` runs: a named check of a candidate against the alias's current target."""

    @property
    def spec(self) -> str: ...

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict: ...


class BuiltinGate:
    """Base of the built-in gates: each is stored as data (its name and arguments)."""

    name: ClassVar[str]

    @property
    def spec(self) -> str:
        """The gate as ``--require`` takes it on the command line: its name, for a gate without arguments."""
        return self.name

    def to_json(self) -> dict[str, Any]:
        """The gate as a protected alias stores it: ``{"gate": name, ...arguments}``."""
        return {"gate": self.name}

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        raise NotImplementedError


def _number(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True)
class NoRegression(BuiltinGate):
    """The candidate's latest ``metric`` is no worse than the current target's, within ``tolerance``.

    ``mode="max"`` (higher is better, as accuracy): passes when candidate
    >= current - tolerance; ``mode="min"`` (lower is better, as a loss):
    when candidate <= current + tolerance. An alias not set yet has nothing
    to regress from: the gate passes and says so. A candidate without the
    metric fails; so does a current target without it, since "no worse
    than an unknown value" cannot be checked (log the metric on the current
    target, or promote without this gate).
    """

    name: ClassVar[str] = "no_regression"
    metric: str
    tolerance: float = 0.0
    mode: Literal["max", "min"] = "max"

    @property
    def spec(self) -> str:
        text = f"{self.name}:{self.metric}:{self.tolerance:g}"
        return text if self.mode == "max" else f"{text}:{self.mode}"

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.name, "metric": self.metric, "tolerance": self.tolerance, "mode": self.mode}

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        value = candidate.metrics.get(self.metric)
        numbers: dict[str, Number] = {"candidate": value, "current": None, "tolerance": self.tolerance}
        if value is None:
            return Verdict(False, f"{candidate.ref} has no metric {self.metric!r} to compare", numbers=numbers)
        if current is None:
            reason = f"the alias is not set yet: {candidate.ref} has no version to regress from"
            return Verdict(True, reason, numbers=numbers)
        before = current.metrics.get(self.metric)
        numbers["current"] = before
        if before is None:
            return Verdict(
                False,
                f"the current target {current.ref} has no metric {self.metric!r}: log it there "
                "(Registry.log_metrics) or promote without this gate",
                numbers=numbers,
            )
        if self.mode == "max":
            bound, passed, word = before - self.tolerance, value >= before - self.tolerance, "below"
            how = f"{_number(before)} - {_number(self.tolerance)}"
        else:
            bound, passed, word = before + self.tolerance, value <= before + self.tolerance, "above"
            how = f"{_number(before)} + {_number(self.tolerance)}"
        numbers["bound"] = bound
        if passed:
            return Verdict(
                True,
                f"{self.metric} {_number(value)} of {candidate.ref} is within {how} of {current.ref}",
                numbers=numbers,
            )
        return Verdict(
            False,
            f"{self.metric} {_number(value)} of {candidate.ref} is {word} {how} = {_number(bound)} "
            f"({current.ref} has {_number(before)})",
            numbers=numbers,
        )


@dataclass(frozen=True)
class CanaryPasses(BuiltinGate):
    """The candidate's prediction canary still gives the outputs recorded at registration.

    The canary loads the model, so the registry runs it before the deciding
    transaction (its result does not depend on where the alias points);
    inside the transaction this gate only checks that the candidate is
    still the bytes the canary ran on, and that ``repair`` has not marked
    them damaged since.
    """

    name: ClassVar[str] = "canary_passes"

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        if evidence.canary is None:
            return Verdict(
                False,
                f"no canary check was run on {candidate.ref} for this decision (the alias's rules changed while "
                "it ran?): promote it again",
            )
        if evidence.canary_checksum is not None and evidence.canary_checksum != candidate.checksum:
            return Verdict(False, f"{candidate.ref} changed while its canary ran (another checksum): promote it again")
        if evidence.damage is not None:
            return Verdict(False, f"{candidate.ref}'s bytes are marked damaged: {evidence.damage}")
        return evidence.canary


#: ``environment_matches`` keyword → the key of ``ModelVersion.environment`` it compares.
ENVIRONMENT_KEYS = {"python": "python", "scikit_learn": "scikit-learn", "numpy": "numpy"}


def _version_matches(recorded: object, wanted: str) -> bool:
    """``1.5`` matches ``1.5`` and ``1.5.2`` but not ``1.50``: compared part by dotted part."""
    if not isinstance(recorded, str):
        return False
    parts = wanted.split(".")
    return recorded.split(".")[: len(parts)] == parts


@dataclass(frozen=True)
class EnvironmentMatches(BuiltinGate):
    """The candidate was registered under these versions (a prefix: ``"1.5"`` matches ``1.5.2``).

    Keys not given are not compared. Use it to promote only models built
    with what the serving image runs.
    """

    name: ClassVar[str] = "environment_matches"
    python: str | None = None
    scikit_learn: str | None = None
    numpy: str | None = None

    def _wanted(self) -> dict[str, str]:
        given = {"python": self.python, "scikit_learn": self.scikit_learn, "numpy": self.numpy}
        return {key: value for key, value in given.items() if value is not None}

    @property
    def spec(self) -> str:
        return ":".join([self.name, *(f"{key}={value}" for key, value in self._wanted().items())])

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.name, **self._wanted()}

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        numbers: dict[str, Number] = {}
        if evidence.environment_signed is not None and not evidence.environment_signed(candidate):
            return Verdict(
                False,
                f"the environment recorded for {candidate.ref} is not covered by a signature under this registry's "
                "key (it was registered without the key, or before signatures covered environments), so anyone "
                "who can write the catalog could have set it: re-register it with the key (or `modelshelf migrate` it "
                "there, if it has a prediction canary)",
                numbers=numbers,
            )
        wrong = []
        for key, wanted in self._wanted().items():
            recorded = candidate.environment.get(ENVIRONMENT_KEYS[key])
            numbers[key] = recorded if isinstance(recorded, str) else None
            numbers[f"wanted_{key}"] = wanted
            if not _version_matches(recorded, wanted):
                wrong.append(f"{ENVIRONMENT_KEYS[key]} {recorded or 'not recorded'} (wanted {wanted})")
        if wrong:
            return Verdict(False, f"{candidate.ref} was registered with {', '.join(wrong)}", numbers=numbers)
        return Verdict(True, f"{candidate.ref} was registered with the wanted versions", numbers=numbers)


@dataclass(frozen=True)
class Signed(BuiltinGate):
    """The candidate carries a signature that verifies under the registry's signing key.

    A registry opened without the key cannot check a signature, so the gate
    fails there rather than trusting an HMAC it cannot verify.
    """

    name: ClassVar[str] = "signed"

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        if evidence.signature is None:
            return Verdict(
                False,
                "this registry was opened without the signing key, so the signature of "
                f"{candidate.ref} cannot be checked: set $MODELSHELF_SIGNING_KEY (Registry(signing_key=...))",
            )
        state = evidence.signature(candidate)
        numbers: dict[str, Number] = {"signature": state}
        if state in ("valid", "legacy"):
            return Verdict(True, f"{candidate.ref} is signed with this registry's key", numbers=numbers)
        if state == "missing":
            return Verdict(False, f"{candidate.ref} was registered without the signing key", numbers=numbers)
        return Verdict(False, f"{candidate.ref}'s signature does not match its catalog entry", numbers=numbers)


@dataclass(frozen=True)
class Tagged(BuiltinGate):
    """The candidate has tag ``key`` set to ``value`` (a review sign-off, a ticket)."""

    name: ClassVar[str] = "tagged"
    key: str
    value: str

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.key}={self.value}"

    def to_json(self) -> dict[str, Any]:
        return {"gate": self.name, "key": self.key, "value": self.value}

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        found = candidate.tags.get(self.key)
        numbers: dict[str, Number] = {"tag": found, "wanted": self.value}
        if found == self.value:
            return Verdict(True, f"{candidate.ref} is tagged {self.key}={self.value}", numbers=numbers)
        has = "has no such tag" if found is None else f"has {self.key}={found}"
        return Verdict(False, f"{candidate.ref} {has}, not {self.key}={self.value}", numbers=numbers)


@dataclass(frozen=True)
class CallableGate:
    """A gate written as a function ``(candidate, current) -> Verdict | (passed, reason)``; never stored.

    A function that raises fails its gate, with the exception as the reason:
    a promotion is refused rather than let through by a broken check.
    """

    function: Callable[[ModelVersion, ModelVersion | None], Any]

    @property
    def spec(self) -> str:
        name = getattr(self.function, "__qualname__", None) or type(self.function).__name__
        return f"callable:{name}"

    def evaluate(self, candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence) -> Verdict:
        try:
            result = self.function(candidate, current)
        except Exception as exc:  # a broken check refuses, it does not let the version through
            return Verdict(False, f"the gate raised {type(exc).__name__}: {exc}")
        if isinstance(result, Verdict):
            return result
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool):
            return Verdict(result[0], str(result[1]))
        return Verdict(False, f"the gate returned {type(result).__name__}, not a Verdict or a (passed, reason) pair")


def no_regression(metric: str, tolerance: float = 0.0, mode: Literal["max", "min"] = "max") -> NoRegression:
    """A gate: ``metric`` may not get worse than the alias's current target's by more than ``tolerance``.

    >>> no_regression("accuracy", 0.005).spec
    'no_regression:accuracy:0.005'
    """
    if not isinstance(metric, str) or not metric:
        raise InvalidArgument(f"no_regression: the metric must be a non-empty name, not {metric!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise InvalidArgument(f"no_regression: the tolerance must be a number, not {tolerance!r}")
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InvalidArgument(f"no_regression: the tolerance must be a finite number >= 0, not {tolerance!r}")
    if mode not in ("max", "min"):
        raise InvalidArgument(
            f"no_regression: mode must be 'max' (higher is better) or 'min' (lower is better), not {mode!r}"
        )
    return NoRegression(metric, float(tolerance), mode)


def canary_passes() -> CanaryPasses:
    """A gate: the candidate's prediction canary passes here (see :class:`CanaryPasses`)."""
    return CanaryPasses()


def environment_matches(
    python: str | None = None, scikit_learn: str | None = None, numpy: str | None = None
) -> EnvironmentMatches:
    """A gate: the candidate was registered under these versions (``"3.12"`` matches ``3.12.4``).

    >>> environment_matches(scikit_learn="1.5").spec
    'environment_matches:scikit_learn=1.5'
    """
    given = {"python": python, "scikit_learn": scikit_learn, "numpy": numpy}
    for key, value in given.items():
        if value is not None and (not isinstance(value, str) or not value.strip() or ":" in value or "," in value):
            raise InvalidArgument(f"environment_matches: {key} must be a version such as '1.5', not {value!r}")
    if all(value is None for value in given.values()):
        raise InvalidArgument(
            "environment_matches needs at least one version to compare: python=, scikit_learn= or numpy="
        )
    return EnvironmentMatches(python, scikit_learn, numpy)


def signed() -> Signed:
    """A gate: the candidate's signature verifies under the registry's signing key."""
    return Signed()


def tagged(key: str, value: str) -> Tagged:
    """A gate: the candidate carries tag ``key=value``.

    >>> tagged("reviewed", "yes").spec
    'tagged:reviewed=yes'
    """
    if not isinstance(key, str) or not key or "=" in key:
        raise InvalidArgument(f"tagged: the key must be a non-empty tag name without '=', not {key!r}")
    if not isinstance(value, str):
        raise InvalidArgument(f"tagged: the value must be a string, not {value!r}")
    return Tagged(key, value)


_SPEC_HELP = (
    "gates are no_regression:METRIC[:TOLERANCE[:max|min]], canary_passes, "
    "environment_matches:python=V[:scikit_learn=V][:numpy=V], signed, tagged:KEY=VALUE"
)


#: The longest ``reason`` a promotion or an unprotect records.
MAX_REASON_LENGTH = 2000


def validate_reason(reason: object) -> str | None:
    """A promotion's or an unprotect's ``reason``: ``None`` or a short text, recorded in the audit trail."""
    if reason is None:
        return None
    if not isinstance(reason, str):
        raise InvalidType(f"reason must be a string or None, not {type(reason).__name__}")
    if len(reason) > MAX_REASON_LENGTH or "\x00" in reason:
        raise InvalidArgument(f"reason must be at most {MAX_REASON_LENGTH} characters without NUL")
    return reason


def parse_gate(text: str) -> BuiltinGate:
    """A built-in gate from its command-line spec, such as ``no_regression:accuracy:0.005``.

    >>> parse_gate("tagged:ticket=ML-7:a").value
    'ML-7:a'
    """
    if not isinstance(text, str):
        raise InvalidType(f"a gate spec is a string such as 'signed', not {type(text).__name__}")
    kind, _, rest = text.partition(":")
    if kind == NoRegression.name:
        parts = rest.split(":") if rest else []
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise InvalidArgument(f"gate {text!r}: write no_regression:METRIC[:TOLERANCE[:max|min]]")
        try:
            tolerance = float(parts[1]) if len(parts) > 1 else 0.0
        except ValueError:
            raise InvalidArgument(f"gate {text!r}: the tolerance {parts[1]!r} is not a number") from None
        mode = parts[2] if len(parts) > 2 else "max"
        if mode not in ("max", "min"):
            raise InvalidArgument(f"gate {text!r}: the mode must be max or min, not {mode!r}")
        return no_regression(parts[0], tolerance, "max" if mode == "max" else "min")
    if kind in (CanaryPasses.name, Signed.name):
        if rest:
            raise InvalidArgument(f"gate {text!r}: {kind} takes no arguments")
        return canary_passes() if kind == CanaryPasses.name else signed()
    if kind == EnvironmentMatches.name:
        versions: dict[str, str] = {}
        for part in rest.split(":") if rest else []:
            key, sep, value = part.partition("=")
            if not sep or key not in ENVIRONMENT_KEYS or key in versions:
                raise InvalidArgument(
                    f"gate {text!r}: write environment_matches:python=3.12:scikit_learn=1.5 (keys python, "
                    "scikit_learn, numpy, each once)"
                )
            versions[key] = value
        return environment_matches(**versions)
    if kind == Tagged.name:
        key, sep, value = rest.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"gate {text!r}: write tagged:KEY=VALUE")
        return tagged(key, value)
    raise InvalidArgument(f"unknown gate {text!r}: {_SPEC_HELP}")


def gate_from_json(value: Mapping[str, Any]) -> BuiltinGate:
    """A built-in gate from what :meth:`BuiltinGate.to_json` wrote (a protected alias's stored rules)."""
    if not isinstance(value, Mapping) or not isinstance(value.get("gate"), str):
        raise InvalidArgument(f"a stored gate must be an object with a 'gate' name, not {value!r}")
    arguments = {key: item for key, item in value.items() if key != "gate"}
    factories: dict[str, Callable[..., BuiltinGate]] = {
        NoRegression.name: no_regression,
        CanaryPasses.name: canary_passes,
        EnvironmentMatches.name: environment_matches,
        Signed.name: signed,
        Tagged.name: tagged,
    }
    factory = factories.get(value["gate"])
    if factory is None:
        raise InvalidArgument(
            f"stored gate {value['gate']!r} is not one this modelshelf knows (written by a newer version?): "
            "upgrade modelshelf before changing this alias"
        )
    try:
        return factory(**arguments)
    except TypeError:
        raise InvalidArgument(f"stored gate {dict(value)!r} has arguments {value['gate']} does not take") from None


def as_gate(item: object) -> Gate:
    """One entry of ``require=``: a built-in gate, its spec string, or a callable."""
    if isinstance(item, (BuiltinGate, CallableGate)):
        return item
    if isinstance(item, str):
        return parse_gate(item)
    if callable(item):
        return CallableGate(item)
    raise InvalidType(
        f"require= takes gates (no_regression(...), signed(), ...), their specs ('signed') or callables, "
        f"not {type(item).__name__}"
    )


def as_gates(require: Iterable[object] | None) -> list[Gate]:
    """``require=`` as a list of gates, in the order given: a built-in gate once (by spec), every callable.

    Two callables may share a name (two lambdas): they are told apart by identity, not by spec.
    """
    if require is None:
        return []
    if isinstance(require, (str, bytes)) or not isinstance(require, Iterable):
        raise InvalidType(f"require= takes a list of gates, not {type(require).__name__}")
    gates: list[Gate] = []
    seen: set[object] = set()
    for item in require:
        gate = as_gate(item)
        identity: object = gate.spec if isinstance(gate, BuiltinGate) else gate
        if identity not in seen:
            seen.add(identity)
            gates.append(gate)
    return gates


def storable(gates: Iterable[Gate]) -> list[dict[str, Any]]:
    """The gates as a protected alias stores them; a callable cannot be stored (code is not data)."""
    stored = []
    for gate in gates:
        if not isinstance(gate, BuiltinGate):
            raise InvalidArgument(
                f"gate {gate.spec} is a Python callable: a protected alias stores its gates as data, so that the "
                "command line and every other process enforce them. Protect it with built-in gates, and pass the "
                "callable to promote(require=[...]) instead"
            )
        stored.append(gate.to_json())
    return stored


def evaluate(
    gates: Iterable[Gate], candidate: ModelVersion, current: ModelVersion | None, evidence: Evidence
) -> list[Verdict]:
    """Run every gate (none stops the others, so a refusal lists every failure), each verdict named."""
    verdicts = []
    for gate in gates:
        verdict = gate.evaluate(candidate, current, evidence)
        numbers = {str(key): _plain(value) for key, value in verdict.numbers.items()}
        verdicts.append(Verdict(bool(verdict.passed), str(verdict.reason), gate.spec, numbers))
    return verdicts


def _plain(value: object) -> Number:
    """A number a verdict reports, as JSON holds it (a callable gate may hand back numpy scalars)."""
    if value is None or isinstance(value, (str, int, float)):
        return value if not isinstance(value, float) or math.isfinite(value) else str(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
