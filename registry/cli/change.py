"""Commands that write: alias, tag, delete, register, fetch, export, import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from registry.cli.app import cli, json_option, open_registry, parse_pairs, to_float, to_json_value, wants_json
from registry.cli.output import emit_json, emit_table, is_terminal, plural, version_json
from registry.names import parse_ref

EXTENSIONS = {"joblib": ".joblib", "pickle": ".pkl", "skops": ".skops"}


@cli.group()
def alias() -> None:
    """Point aliases such as 'production' at versions, or remove them.

    \b
    Example:
      modelshelf alias set iris-knn production 3
    """


@alias.command("set")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@click.argument("version", type=click.IntRange(min=1))
@json_option
@click.pass_context
def alias_set(ctx: click.Context, name: str, alias_name: str, version: int) -> None:
    """Point ALIAS of NAME at VERSION (moving it if it pointed elsewhere).

    \b
    Example:
      modelshelf alias set iris-knn production 3
    """
    with open_registry(ctx) as reg:
        mv = reg.set_alias(name, alias_name, version)
    if wants_json(ctx):
        emit_json(version_json(mv))
    else:
        click.echo(f"{name}@{alias_name} → {mv.ref}")


@alias.command("rm")
@click.argument("name")
@click.argument("alias_name", metavar="ALIAS")
@json_option
@click.pass_context
def alias_rm(ctx: click.Context, name: str, alias_name: str) -> None:
    """Remove ALIAS from NAME.

    \b
    Example:
      modelshelf alias rm iris-knn canary
    """
    with open_registry(ctx) as reg:
        version = reg.get(name, alias=alias_name).version
        reg.delete_alias(name, alias_name)
    if wants_json(ctx):
        emit_json({"name": name, "alias": alias_name, "version": version, "removed": True})
    else:
        click.echo(f"removed {name}@{alias_name} (it pointed at {name}:{version})")


@cli.command()
@click.argument("ref")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--rm", "remove", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
@json_option
@click.pass_context
def tag(ctx: click.Context, ref: str, pairs: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Set tags on a version (REF: NAME:VERSION, NAME@ALIAS or NAME:latest), or remove them with --rm.

    A bare NAME (deprecated) still tags the latest version and warns which one it chose.

    \b
    Example:
      modelshelf tag iris-knn:3 reviewed=yes owner=ana --rm draft
    """
    bare = _names_no_version(ref)
    tags = parse_pairs(pairs, "KEY=VALUE")
    with open_registry(ctx) as reg:
        mv = reg.get(ref)
        if bare:  # deprecated: it once tagged the latest without a word; it still does, and says which
            click.echo(
                f"warning: {ref!r} names no version, so this tagged {mv.ref}, the latest; give NAME:VERSION, "
                "NAME@ALIAS or NAME:latest (a bare NAME will be refused in a future release)",
                err=True,
            )
        mv = reg.set_tags(mv.name, mv.version, tags, remove=remove)
    if wants_json(ctx):
        emit_json(version_json(mv))
    else:
        click.echo(f"{mv.ref}: " + ", ".join(f"{k}={v}" for k, v in sorted(mv.tags.items())))


@cli.command()
@click.argument("ref")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def delete(ctx: click.Context, ref: str, yes: bool) -> None:
    """Delete one version: gone from every lookup, its number never reused.

    REF must name the version (NAME:3 or NAME@ALIAS). Asks for confirmation
    on a terminal; elsewhere --yes is required.

    \b
    Example:
      modelshelf delete iris-knn:2 --yes
    """
    parsed = parse_ref(ref)
    if parsed.version is None and parsed.alias is None:
        raise click.UsageError(f"{ref!r} names no version; give NAME:VERSION or NAME@ALIAS")
    with open_registry(ctx) as reg:
        mv = reg.get(ref)
        if not yes:
            if not is_terminal():
                raise click.UsageError("refusing to delete without confirmation: add --yes")
            click.confirm(f"delete {mv.ref} ({', '.join(mv.aliases) or 'no aliases'})?", abort=True)
        reg.delete_version(mv.name, mv.version)
    if wants_json(ctx):
        emit_json({**version_json(mv), "deleted": True})
    else:
        click.echo(f"deleted {mv.ref}")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name to register under.")
@click.option("--format", "fmt", type=click.Choice(sorted(EXTENSIONS)), default="joblib", show_default=True)
@click.option("--metric", multiple=True, metavar="KEY=NUMBER", help="A metric (repeatable).")
@click.option("--param", multiple=True, metavar="KEY=VALUE", help="A hyperparameter; JSON values are parsed.")
@click.option("--tag", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option("--description", default=None)
@click.option("--alias", "alias_name", default=None, help="Point this alias at the new version.")
@click.option("--parent", default=None, metavar="REF", help="The version this model was derived from.")
@click.option(
    "--unsafe-check",
    is_flag=True,
    help="Prove the file works by loading it with pickle/joblib as they are: this RUNS ANY CODE IN THE FILE.",
)
@click.option("--no-check", is_flag=True, help="Store the file without loading it (its imports are still read).")
@click.option(
    "--trust",
    "trusted",
    multiple=True,
    metavar="MODULE.NAME",
    help="A global the safe check may import beyond the policy (repeatable); see `modelshelf policy`.",
)
@json_option
@click.pass_context
def register(
    ctx: click.Context,
    file: Path,
    name: str,
    fmt: str,
    metric: tuple[str, ...],
    param: tuple[str, ...],
    tag: tuple[str, ...],
    description: str | None,
    alias_name: str | None,
    parent: str | None,
    unsafe_check: bool,
    no_check: bool,
    trusted: tuple[str, ...],
) -> None:
    """Register a model FILE made elsewhere, byte for byte.

    By default the file is first loaded with the safe unpickler, which runs
    no code outside `modelshelf policy`, to prove it works; a file that needs
    more is refused (exit 3). --unsafe-check loads it with pickle/joblib
    themselves, which runs whatever code the file contains: only for files
    you trust. --no-check stores it without loading it. In every mode the
    globals the file imports are read from its bytes and recorded.

    \b
    Example:
      modelshelf register model.joblib --name churn --metric auc=0.91 --param depth=8 --tag team=ds
    """
    with open_registry(ctx, create=True) as reg:
        mv = reg.register_file(
            name,
            file,
            format=fmt,
            metrics=parse_pairs(metric, "--metric", to_float),
            params=parse_pairs(param, "--param", to_json_value) if param else None,
            tags=parse_pairs(tag, "--tag"),
            description=description,
            alias=alias_name,
            check=_check_mode(unsafe_check, no_check),
            parent=parent,
            trusted=trusted,
        )
    if wants_json(ctx):
        emit_json(version_json(mv))
    else:
        click.echo(f"registered {mv.ref} {mv.checksum}")


def _names_no_version(ref: str) -> bool:
    """Whether ``ref`` is a bare NAME, which leaves the version to whatever is newest (``NAME:latest`` says it)."""
    parsed = parse_ref(ref)
    return parsed.version is None and parsed.alias is None and ":" not in ref


def _require_version(ref: str, command: str) -> None:
    """Refuse a bare NAME where a write must say which version it means (``NAME:latest`` says it)."""
    if _names_no_version(ref):
        raise click.UsageError(
            f"{ref!r} names no version; give NAME:VERSION, NAME@ALIAS or NAME:latest to {command} it",
        )


def _check_mode(unsafe_check: bool, no_check: bool) -> bool | str:
    if unsafe_check and no_check:
        raise click.UsageError("give --unsafe-check or --no-check, not both")
    return False if no_check else "unsafe" if unsafe_check else "safe"


@cli.command()
@click.argument("ref")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write [default: NAME-VERSION.EXT in the current directory].",
)
@json_option
@click.pass_context
def fetch(ctx: click.Context, ref: str, output: Path | None) -> None:
    """Write the verified artifact of REF to a file (for servers that load it themselves).

    \b
    Example:
      modelshelf fetch iris-knn@production -o /srv/model.joblib
    """
    with open_registry(ctx) as reg:
        mv = reg.get(ref)
        target = output or Path(f"{mv.name}-{mv.version}{EXTENSIONS.get(mv.format, '.bin')}")
        reg.fetch(mv.ref, target)
    if wants_json(ctx):
        emit_json({**version_json(mv), "path": str(target)})
    else:
        click.echo(f"wrote {mv.ref} to {target} ({mv.checksum})")


@cli.command("export")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle file to write (a tar).",
)
@click.option(
    "--sign-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Sign the bundle with this Ed25519 private key [env MODELSHELF_BUNDLE_KEY]; unsigned without one.",
)
@click.option(
    "--model-signing",
    "model_signing_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also (or instead) write each version to DIR/NAME-VERSION/ with an OpenSSF model-signing signature.",
)
@click.option(
    "--model-signing-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The ECDSA P-256 private key for --model-signing (`keys generate --algorithm ecdsa-p256`).",
)
@json_option
@click.pass_context
def export_command(
    ctx: click.Context,
    refs: tuple[str, ...],
    output: Path | None,
    sign_key: Path | None,
    model_signing_dir: Path | None,
    model_signing_key: Path | None,
) -> None:
    """Write versions with their metadata, history and artifacts to a bundle.

    With a key (--sign-key or $MODELSHELF_BUNDLE_KEY) the bundle's manifest,
    which lists every artifact's SHA-256, is signed, so the importer can
    check that nothing changed on the way and who sent it.

    With --model-signing DIR (and an ECDSA key), each version is also
    written as a directory that the OpenSSF `model_signing verify key`
    command checks without modelshelf.

    \b
    Example:
      modelshelf export iris-knn:3 iris-knn@production -o iris.tar --sign-key keys/team-a.pem
      modelshelf export iris-knn:3 --model-signing out --model-signing-key keys/ec.pem
    """
    from registry.bundles.checks import bundle_signer

    if output is None and model_signing_dir is None:
        raise click.UsageError("give -o BUNDLE.tar, --model-signing DIR, or both")
    if (model_signing_dir is None) != (model_signing_key is None):
        raise click.UsageError("--model-signing DIR and --model-signing-key FILE go together")
    as_json = wants_json(ctx)
    result: dict[str, Any] = {"path": None if output is None else str(output), "signer": None, "versions": []}
    with open_registry(ctx) as reg:
        if output is not None:
            exported = reg.export_bundle(list(refs), output, sign_with=sign_key)
            signer = bundle_signer(output)
            result.update(signer=signer, versions=[version_json(mv) for mv in exported])
            if not as_json:
                click.echo(
                    f"wrote {plural(len(exported), 'version')} to {output}: " + ", ".join(mv.ref for mv in exported)
                )
                click.echo(f"signed by {signer}" if signer else "unsigned: importers must pass --allow-unsigned")
        if model_signing_dir is not None and model_signing_key is not None:
            from registry.openssf import export_model_signed

            result["model_signing"] = []
            for signed in export_model_signed(reg, list(refs), model_signing_dir, model_signing_key):
                result["model_signing"].append(
                    {"ref": signed.ref, "directory": str(signed.directory), "signature": str(signed.signature)}
                )
                if not as_json:
                    click.echo(f"wrote {signed.ref} to {signed.directory} (model-signing signature {signed.signature})")
    if as_json:
        emit_json(result)


@cli.command("import")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    metavar="PUBKEY",
    help="Accept bundles signed by this public key, or any key file in this directory (repeatable) "
    "[default: env MODELSHELF_TRUSTED_KEYS].",
)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="Accept a bundle that is unsigned or signed by a key not trusted here; the audit trail records "
    "who accepted it. A signature that does not match is refused all the same.",
)
@json_option
@click.pass_context
def import_command(ctx: click.Context, bundle: Path, trust: tuple[Path, ...], allow_unsigned: bool) -> None:
    """Add the versions of a bundle; print old → new references.

    The bundle's signature is checked first, against the trusted public
    keys; then every artifact against the signed manifest's SHA-256. An
    unsigned bundle or an unknown signer is refused (exit 3) unless
    --allow-unsigned; so is a file that is not a bundle, or a damaged or
    malformed one (compressed bundles are refused: decompress them first).

    \b
    Example:
      modelshelf --home other-registry import iris.tar --trust keys/team-a.pub
    """
    with open_registry(ctx, create=True) as reg:
        results = reg.import_bundle(bundle, trusted_keys=list(trust) or None, allow_unsigned=allow_unsigned)
    if wants_json(ctx):
        fields = ("source", "target", "created", "signer", "verified")
        emit_json([{field: getattr(r, field) for field in fields} for r in results])
        return
    signer = results[0].signer if results else None
    verified = bool(results) and results[0].verified
    title = f"imported from {bundle}, " + (
        f"signed by {signer}" if verified else f"accepted unverified (signer {signer or 'none'})"
    )
    emit_table(
        title,
        ("source", "target", "status"),
        [(r.source, r.target, "imported" if r.created else "already present") for r in results],
    )
