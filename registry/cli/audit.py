"""Trust commands: ``audit --deny`` (who imports a global) and ``seal`` (adopt a model's state under the key)."""

from __future__ import annotations

import sys

import click

from registry.cli.app import EXIT_INTEGRITY, cli, json_option, open_registry, wants_json
from registry.cli.output import emit_json, emit_table, version_json


def _globals(value: tuple[str, ...]) -> list[str]:
    names = [name.strip() for item in value for name in item.split(",")]
    if not names or not all(names):
        raise click.BadParameter("give GLOBAL[,GLOBAL…] names such as posix.system", param_hint="--deny")
    return names


@cli.command()
@click.option(
    "--deny",
    "deny",
    multiple=True,
    required=True,
    metavar="GLOBAL[,GLOBAL…]",
    help="Globals (module.qualname) no served version may import; repeat or separate with commas.",
)
@json_option
@click.pass_context
def audit(ctx: click.Context, deny: tuple[str, ...]) -> None:
    """List every live version whose recorded import inventory imports a denied global; exit 3 if any does.

    Aliased versions (what is served) come first. This reads the catalog's
    imports index only, never an artifact, so it is fast on any registry;
    only a file that is no pickle at all, registered with --no-check, has no
    inventory and is not listed.

    \b
    Example:
      modelshelf audit --deny posix.system,builtins.exec --json
    """
    names = _globals(deny)
    with open_registry(ctx) as reg:
        found = reg.versions_importing(names)
    denied = set(names)
    if wants_json(ctx):
        emit_json(
            {
                "denied": sorted(denied),
                "versions": [
                    {**version_json(mv), "denied_imports": sorted(denied & set(mv.imports or ()))} for mv in found
                ],
            }
        )
    elif found:
        rows = [(mv.ref, ", ".join(mv.aliases), ", ".join(sorted(denied & set(mv.imports or ())))) for mv in found]
        emit_table("Versions importing denied globals", ["version", "aliases", "denied imports"], rows)
    else:
        click.echo(f"ok: no live version imports {', '.join(sorted(denied))}")
    if found:
        sys.exit(EXIT_INTEGRITY)


@cli.command()
@click.argument("names", nargs=-1, required=True)
@json_option
@click.pass_context
def seal(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Adopt the current state of models NAMES under the signing key ($MODELSHELF_SIGNING_KEY).

    A registry with a signing key refuses a model whose aliases, deletions or
    latest version were changed without the key (or were never sealed, as in
    catalogs made before sealing). Check the model first (`modelshelf log`,
    `modelshelf versions`), then seal it; the seal is recorded in the audit
    trail with your user and host.

    \b
    Example:
      MODELSHELF_SIGNING_KEY=… modelshelf seal iris-knn
    """
    with open_registry(ctx) as reg:
        sealed = {name: reg.seal(name) for name in names}
    if wants_json(ctx):
        emit_json({"sealed": sealed})
    else:
        for name, seq in sealed.items():
            click.echo(f"sealed {name} at state {seq}")
