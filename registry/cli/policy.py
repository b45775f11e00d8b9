"""``modelshelf policy``: what ``load(..., safe=True)`` admits, printed from the policy itself."""

from __future__ import annotations

import click

from registry.cli.app import cli, json_option, wants_json
from registry.cli.output import emit_json, emit_table, plural


@cli.command()
@click.option("--role", type=click.Choice(["class", "callable", "reference"]), help="Show only entries of this role.")
@json_option
@click.pass_context
def policy(ctx: click.Context, role: str | None) -> None:
    """Print the safe-load policy: every global a safe load may import, its role and why.

    A global is admitted only by its exact module.qualname, and only if the
    imported object really is that (re-exports are refused). Roles: "class"
    may be created empty and given state; "callable" may be called, with its
    arguments checked; "reference" may only appear as a value.

    \b
    Examples:
      modelshelf policy --role callable
      modelshelf policy --json
    """
    from registry.formats import describe_policy

    description = describe_policy()
    entries = [e for e in description["entries"] if role is None or e["role"] == role]
    if wants_json(ctx):
        emit_json({**description, "entries": entries})
        return
    limit = description["size_limit"]
    click.echo(
        f"safe-load policy {description['version']}: {plural(len(entries), 'entry', 'entries')}; "
        "a safe load allocates at most "
        f"{limit['multiple_of_artifact']} x the artifact's size + {limit['constant_bytes'] >> 20} MiB"
    )
    rows = [
        (e["name"], e["role"], e["why"] + (f" (alias of {e['identity']})" if "identity" in e else "")) for e in entries
    ]
    emit_table("safe-load policy", ["global", "role", "why"], rows)
