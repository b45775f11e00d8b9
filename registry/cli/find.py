"""Commands that find versions and tell their story: search, best, log."""

from __future__ import annotations

from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, wants_json
from registry.cli.output import (
    emit_json,
    emit_table,
    event_json,
    period_json,
    plural,
    timestamp,
    version_json,
)
from registry.cli.promote import verdict_summary
from registry.domain import Event, ModelVersion
from registry.humanize import human_size
from registry.query import parse_order_by


def _ordering_metrics(order_by: str | None, found: list[ModelVersion]) -> list[str]:
    """The metrics worth a column: those named in the ordering, else the most common ones."""
    named = [key.field.key for key in parse_order_by(order_by) if key.field.kind == "metrics"] if order_by else []
    keys = [key for key in named if key is not None and any(key in mv.metrics for mv in found)]
    common = sorted({key for mv in found for key in mv.metrics}, key=lambda k: -sum(k in mv.metrics for mv in found))
    return (keys + [key for key in common if key not in keys])[:3]


def _deprecated_o(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``search -o`` was --order-by, while ``-o`` is --output everywhere else: it still works, with a warning."""
    if value is not None:
        click.echo(
            "warning: `search -o` is deprecated (-o means --output in other commands) and will be removed; "
            "write --order-by",
            err=True,
        )
    return value


@cli.command()
@click.argument("where", required=False)
@click.option("--name", "-n", help="Search the versions of this model only.")
@click.option("--order-by", help='Sort key(s), e.g. "metrics.accuracy desc, version".')
@click.option("-o", "order_by_short", hidden=True, callback=_deprecated_o, help="Deprecated spelling of --order-by.")
@click.option("--limit", "-l", type=click.IntRange(min=1), help="Return at most this many versions.")
@json_option
@click.pass_context
def search(
    ctx: click.Context,
    where: str | None,
    name: str | None,
    order_by: str | None,
    order_by_short: str | None,
    limit: int | None,
) -> None:
    """Find versions matching WHERE, a filter over metrics, params, tags, lineage and columns.

    \b
    Examples:
      modelshelf search "metrics.accuracy > 0.9 and params.n_neighbors <= 8" --order-by "metrics.accuracy desc"
      modelshelf search "tags.team = 'cv' and created_at >= '2026-11-01'" --name iris-knn
      modelshelf search "lineage.data = 'sha256:…'"
    """
    if order_by is not None and order_by_short is not None:
        raise click.UsageError("give --order-by once (-o is its old spelling)")
    order_by = order_by if order_by is not None else order_by_short
    with open_registry(ctx) as reg:
        found = reg.search(name, where=where, order_by=order_by, limit=limit)
    if wants_json(ctx):
        emit_json([version_json(mv) for mv in found])
        return
    keys = _ordering_metrics(order_by, found)
    rows = [
        (mv.ref, timestamp(mv.created_at), mv.format, human_size(mv.size), ", ".join(mv.aliases))
        + tuple(mv.metrics.get(key) for key in keys)
        for mv in found
    ]
    emit_table(
        plural(len(found), "matching version"), ("ref", "created (UTC)", "format", "size", "aliases", *keys), rows
    )


@cli.command()
@click.argument("name")
@click.argument("metric")
@click.option("--min", "minimize", is_flag=True, help="The lowest value wins (for losses and errors).")
@click.option("--where", "-w", help="Only consider versions matching this filter.")
@json_option
@click.pass_context
def best(ctx: click.Context, name: str, metric: str, minimize: bool, where: str | None) -> None:
    """Print the version of NAME with the best METRIC (highest, or lowest with --min).

    \b
    Examples:
      modelshelf best iris-knn accuracy
      modelshelf best iris-knn log_loss --min --where "params.n_neighbors <= 8"
    """
    with open_registry(ctx) as reg:
        mv = reg.best(name, metric, mode="min" if minimize else "max", where=where)
    if wants_json(ctx):
        emit_json(version_json(mv))
        return
    click.echo(f"{mv.ref}\t{metric}={mv.metrics[metric]:.6g}")


#: The audit actions of promotion gates and protected aliases (see :mod:`registry.cli.promote`).
GATE_ACTIONS = ("alias.promote", "alias.refuse", "alias.protect", "alias.unprotect")


def _change(event: Event) -> str:
    if event.action in ("alias.set", "alias.move", "alias.delete"):
        before = "" if event.old is None else f"{event.old}"
        after = "(removed)" if event.new is None else f"{event.new}"
        return f"{before} → {after}" if before else after
    if event.action in GATE_ACTIONS:
        return verdict_summary(event)
    if event.action == "tags.set":
        return ", ".join(
            f"{key}: {'(removed)' if value is None else value}" for key, value in sorted((event.new or {}).items())
        )
    if event.action == "metrics.log":
        step = (event.new or {}).get("step")
        values = ", ".join(f"{k}={v:.6g}" for k, v in sorted((event.new or {}).get("metrics", {}).items()))
        return values if step is None else f"{values} (step {step})"
    if event.action == "register":
        parent = (event.new or {}).get("parent")
        bundle = (event.new or {}).get("bundle")
        checksum: str = (event.new or {}).get("checksum", "")
        text = checksum[:19] + (f" from {parent}" if parent else "")
        if isinstance(bundle, dict) and bundle.get("accepted_unsigned_by"):
            return f"{text}, unverified bundle accepted by {bundle['accepted_unsigned_by']}"
        if isinstance(bundle, dict) and bundle.get("signer"):
            return f"{text}, bundle signed by {str(bundle['signer'])[:19]}"
        return text
    if event.action in ("version.damage", "version.heal"):
        checksum = str((event.new or {}).get("checksum", ""))[:19]
        damage = (event.new or {}).get("damage")
        return f"{checksum} {damage}" if damage else f"{checksum} healed"
    return ""


def _who(user: str | None, host: str | None) -> str:
    return "@".join(part for part in (user, host) if part)


@cli.command()
@click.argument("name")
@click.option("--alias", "-a", "alias_name", help="Show which version this alias pointed at, and when.")
@click.option("--since", help="Only events from this UTC date or time on (ISO 8601, e.g. 2026-03-03).")
@click.option("--limit", "-l", type=click.IntRange(min=1), help="Only the most recent events.")
@json_option
@click.pass_context
def log(ctx: click.Context, name: str, alias_name: str | None, since: str | None, limit: int | None) -> None:
    """Show the audit trail of NAME: every register, alias move, tag change, metric log and deletion.

    \b
    Examples:
      modelshelf log iris-knn
      modelshelf log iris-knn --alias production
      modelshelf log iris-knn --since 2026-03-01 --json
    """
    if alias_name is not None and (since is not None or limit is not None):
        raise click.UsageError("--alias lists every period of the alias; it takes no --since or --limit")
    with open_registry(ctx) as reg:
        if alias_name is not None:
            periods = reg.alias_history(name, alias_name)
            gated = [e for e in reg.events(name) if e.alias == alias_name and e.action in GATE_ACTIONS]
        else:
            events = reg.events(name, since=since, limit=limit)
    if alias_name is not None:
        if wants_json(ctx):
            emit_json([period_json(p) for p in periods])
            return
        rows: list[tuple[Any, ...]] = [
            (p.version, timestamp(p.since), timestamp(p.until) if p.until else "now", p.set_by or "") for p in periods
        ]
        emit_table(f"{name}@{alias_name}", ("version", "since (UTC)", "until (UTC)", "set by"), rows)
        if gated:  # promotions, refusals and protection changes: who, which gates, their verdicts, why
            click.echo("")
            gate_rows = [
                (timestamp(e.at), e.action, e.version or "", verdict_summary(e), _who(e.user, e.host)) for e in gated
            ]
            emit_table(f"gates of {name}@{alias_name}", ("time (UTC)", "action", "version", "gates", "by"), gate_rows)
        return
    if wants_json(ctx):
        emit_json([event_json(e) for e in events])
        return
    rows = [
        (timestamp(e.at), e.action, e.version or "", e.alias or "", _change(e), _who(e.user, e.host)) for e in events
    ]
    emit_table(f"log of {name}", ("time (UTC)", "action", "version", "alias", "change", "by"), rows)
