"""Commands for the keys that sign bundles (Ed25519; ECDSA for model-signing): keys generate, keys fingerprint."""

from __future__ import annotations

from pathlib import Path

import click

from registry.cli.app import cli, json_option, wants_json
from registry.cli.output import emit_json


@cli.group()
def keys() -> None:
    """Make and inspect the Ed25519 keys that sign bundles between registries.

    The exporting side signs with its private key (`export --sign-key`); the
    importing side trusts the public key (`import --trust`).

    \b
    Example:
      modelshelf keys generate --out ~/.modelshelf-keys --name team-a
    """


@keys.command("generate")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write NAME.pem (private, mode 0600) and NAME.pub (public) into.",
)
@click.option("--name", default="modelshelf-bundle", show_default=True, help="File name of the pair, no suffix.")
@click.option(
    "--algorithm",
    type=click.Choice(["ed25519", "ecdsa-p256"]),
    default="ed25519",
    show_default=True,
    help="ed25519 signs bundles; ecdsa-p256 signs `export --model-signing` directories.",
)
@json_option
@click.pass_context
def generate(ctx: click.Context, out: Path, name: str, algorithm: str) -> None:
    """Create a new key pair; existing files are never overwritten.

    Keep NAME.pem secret (it signs in your name); hand NAME.pub, or just its
    fingerprint for checking, to the registries that import your bundles.

    \b
    Example:
      modelshelf keys generate --out keys --name team-a
      modelshelf export iris-knn@production -o iris.tar --sign-key keys/team-a.pem
    """
    from registry.trust.keys import generate_key_pair

    pair = generate_key_pair(out, name, algorithm)
    if wants_json(ctx):
        emit_json({"private": str(pair.private_path), "public": str(pair.public_path), "fingerprint": pair.fingerprint})
        return
    click.echo(f"private key {pair.private_path} (keep it secret)")
    use = "import --trust" if algorithm == "ed25519" else "model_signing verify key --public_key"
    click.echo(f"public key  {pair.public_path} (give it to those who check your signatures: {use})")
    click.echo(f"fingerprint {pair.fingerprint}")


@keys.command("fingerprint")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def fingerprint_command(ctx: click.Context, file: Path) -> None:
    """Print the fingerprint (SHA-256 of the raw public key) of a public or private key FILE.

    It is the name `import` gives a bundle's signer, to compare with what
    the exporter tells you over another channel.

    \b
    Example:
      modelshelf keys fingerprint keys/team-a.pub
    """
    from registry.trust.keys import key_file_fingerprint

    shown = key_file_fingerprint(file)
    if wants_json(ctx):
        emit_json({"file": str(file), "fingerprint": shown})
    else:
        click.echo(shown)
