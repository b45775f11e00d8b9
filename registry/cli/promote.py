"""Commands that move aliases through gates: promote, alias protect, alias unprotect.

Gates are given as specs (``--require no_regression:accuracy:0.005``, see
:mod:`registry.gates`); a refusal is one line naming each failed gate and
exits with :data:`~registry.cli.app.EXIT_REFUSED`.
"""

from __future__ import annotations

from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, wants_json
from registry.cli.change import alias
from registry.cli.output import emit_json, version_json
from registry.domain import Event

REQUIRE_HELP = (
    "A gate the version must pass (repeatable): no_regression:METRIC[:TOLERANCE[:max|min]], canary_passes, "
    "environment_matches:python=V:scikit_learn=V, signed, tagged:KEY=VALUE."
)


def gate_lines(event: Event | None) -> list[dict[str, Any]]:
    """The verdicts a promotion event recorded (empty for a plain alias move)."""
    if event is None or not isinstance(event.new, dict):
        return []
    return [verdict for verdict in event.new.get("verdicts", []) if isinstance(verdict, dict)]


def verdict_summary(event: Event) -> str:
    """One cell for ``log``: each gate with a mark, and the reason given."""
    new = event.new if isinstance(event.new, dict) else {}
    if event.action in ("alias.promote", "alias.refuse"):
        if new.get("operation") == "delete":
            return "removal refused: the alias is protected"
        marks = ", ".join(f"{'✓' if v.get('passed') else '✗'} {v.get('gate')}" for v in gate_lines(event))
        text = marks or "no gates"
        return f"{text} — {new['reason']}" if new.get("reason") else text
    if event.action == "alias.protect":
        return "require " + ", ".join(str(spec) for spec in new.get("require", []))
    if event.action == "alias.unprotect":
        return f"lifted — {new['reason']}" if new.get("reason") else "lifted"
    return ""


@cli.command()
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.argument("alias_name", metavar="ALIAS")
@click.option("--require", "-r", multiple=True, metavar="GATE", help=REQUIRE_HELP)
@click.option("--reason", default=None, help="Why: recorded in the audit trail with the gates' verdicts.")
@json_option
@click.pass_context
def promote(
    ctx: click.Context, name: str, version: int, alias_name: str, require: tuple[str, ...], reason: str | None
) -> None:
    """Point ALIAS of NAME at VERSION only if every gate passes (and the alias's own, if protected).

    The gates are checked in the transaction that moves the alias. A refusal
    names each failed gate with its numbers, moves nothing and exits 4.

    \b
    Examples:
      modelshelf promote iris-knn 3 production --require no_regression:accuracy:0.005
      modelshelf promote iris-knn 3 production -r signed -r tagged:reviewed=yes --reason "ticket ML-7"
    """
    with open_registry(ctx) as reg:
        mv = reg.promote(name, version, alias_name, require=list(require), reason=reason)
        # the newest promotion of this alias, found by the database (a busy trail cannot push it out of reach)
        newest = reg.events(name, alias=alias_name, action="alias.promote", limit=1)
    event = next((e for e in newest if e.version == version), None)
    verdicts = gate_lines(event)
    if wants_json(ctx):
        emit_json({**version_json(mv), "alias": alias_name, "promoted": True, "verdicts": verdicts})
        return
    click.echo(f"{name}@{alias_name} → {mv.ref} ({len(verdicts)} gate{'s' if len(verdicts) != 1 else ''} passed)")
    for verdict in verdicts:
        click.echo(f"  ✓ {verdict.get('gate')}: {verdict.get('reason')}")


@alias.command("protect")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--require", "-r", multiple=True, required=True, metavar="GATE", help=REQUIRE_HELP)
@json_option
@click.pass_context
def alias_protect(ctx: click.Context, name: str, alias_name: str, require: tuple[str, ...]) -> None:
    """Protect ALIAS of NAME: every later move (alias set, promote) must pass these gates.

    Protecting again replaces the gates. A protected alias cannot be
    removed, nor its version deleted, until it is unprotected.

    \b
    Example:
      modelshelf alias protect iris-knn production -r no_regression:accuracy:0.005 -r signed
    """
    with open_registry(ctx) as reg:
        stored = reg.protect_alias(name, alias_name, require=list(require))
    specs = [gate.spec for gate in stored]
    if wants_json(ctx):
        emit_json({"name": name, "alias": alias_name, "protected": True, "require": specs})
    else:
        click.echo(f"protected {name}@{alias_name}: moves require {', '.join(specs)}")


@alias.command("unprotect")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.option("--reason", default=None, help="Why: recorded in the audit trail with who lifted which gates.")
@json_option
@click.pass_context
def alias_unprotect(ctx: click.Context, name: str, alias_name: str, reason: str | None) -> None:
    """Lift the protection of ALIAS of NAME (an audited event, with who and why).

    \b
    Example:
      modelshelf alias unprotect iris-knn production --reason "rollback during incident 42"
    """
    with open_registry(ctx) as reg:
        dropped = reg.unprotect_alias(name, alias_name, reason=reason)
    specs = [gate.spec for gate in dropped]
    if wants_json(ctx):
        emit_json({"name": name, "alias": alias_name, "protected": False, "lifted": specs, "reason": reason})
    else:
        click.echo(f"unprotected {name}@{alias_name} (it required {', '.join(specs)})")
