"""The one write pipeline: a version is drafted from validated input, then a batch of drafts is committed.

Every way a version comes in — :meth:`~registry.facade.Registry.register`,
:meth:`~registry.facade.Registry.register_file`, a bundle import — differs
only in where its bytes and fields come from. Each builds a
:class:`~registry.domain.Draft`
from input it has already validated, stages the bytes in the store, and
hands ``(draft, staged)`` pairs to :func:`commit`, which does the rest the
same way for all of them::

    push every staged blob to its content address (outside any catalog lock)
    → one catalog transaction: allocate each version, sign it (with a key),
      publish its blob under the blob's row lock, insert it → commit

so a batch is recorded whole or not at all, and a version row never points
at a blob that is not there. Adding a field to a version means adding it to
:class:`~registry.domain.Draft`, which the catalog's ``NewVersion``
extends with the blob's digest and size, not to three builders.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from registry import formats
from registry.bundles.manifest import BundleEntry
from registry.catalog import Catalog, NewVersion
from registry.digests import checksum_of
from registry.domain import Draft as Draft
from registry.domain import ModelVersion
from registry.names import validate_alias, validate_model_name
from registry.provenance.environment import current_environment
from registry.store import StagedBlob
from registry.trust import signing
from registry.validation import validate_description, validate_metrics, validate_tags


def draft_from_input(name: str, format: str, *, alias: str | None) -> Draft:
    """The draft of a version registered in this process: its name, alias and format checked, in that order.

    Each check raises naming the bad value; the environment is the current
    one. The rest is added by :func:`with_values` (what the caller recorded
    about the version) and by the caller (params, imports, lineage and input
    signature, whose sources differ), so a caller with checks of its own
    between the two (``register_file``'s check mode and file) keeps the
    order its errors have always come in.
    """
    name = validate_model_name(name)
    if alias is not None:
        alias = validate_alias(alias)
    fmt = formats.get_format(format)
    return Draft(name=name, format=fmt.name, environment=current_environment(), alias=alias)


def with_values(
    draft: Draft, *, metrics: dict[str, float] | None, tags: dict[str, str] | None, description: str | None
) -> Draft:
    """``draft`` with the metrics, tags and description a caller gave, each validated (in that order)."""
    return dataclasses.replace(
        draft,
        metrics=validate_metrics(metrics),
        tags=validate_tags(tags),
        description=validate_description(description),
    )


def draft_from_entry(entry: BundleEntry, provenance: dict[str, Any], imports: tuple[str, ...] | None) -> Draft:
    """The draft of one imported version (its fields were checked by :mod:`registry.bundles.manifest`).

    ``imports`` is the inventory scanned from the blob itself: the manifest's
    list is the exporter's word (and, from an older registry, a tracer's
    incomplete one), while the safe loader holds the version to this list.
    """
    return Draft(
        name=entry.name,
        format=entry.format,
        params=entry.params,
        tags=entry.tags,
        description=entry.description,
        environment=entry.environment,
        imports=imports,
        history=entry.history,
        lineage=entry.lineage,
        input_signature=entry.input_signature,
        provenance=provenance,
        canary=entry.canary,
    )


def with_blob(draft: Draft, staged: StagedBlob) -> NewVersion:
    """What the catalog records: ``draft`` and the content address of its staged bytes."""
    values = {f.name: getattr(draft, f.name) for f in dataclasses.fields(draft)}
    return NewVersion(digest=staged.digest, size=staged.size, blake3=staged.blake3, **values)


def commit(catalog: Catalog, key: bytes | None, batch: list[tuple[Draft, StagedBlob]]) -> list[ModelVersion]:
    """Record every draft of ``batch`` with its staged blob, in one catalog transaction: all or none.

    Each blob is pushed to its content address first, outside any catalog
    lock, so a slow object store holds up only this writer; the transaction
    then only confirms it is still there under the blob's row lock. With
    ``key`` every version is signed once its number is known.
    """

    def sign(new: NewVersion, version: int) -> str | None:
        if key is None:
            return None
        checksum = checksum_of(new.digest)
        return signing.sign_version(
            key,
            new.name,
            version,
            new.format,
            checksum,
            new.size,
            new.imports,
            new.params,
            environment=new.environment,
            input_signature=None if new.input_signature is None else new.input_signature.to_json(),
            blake3=new.blake3,
        )

    def sealed(draft: Draft, staged: StagedBlob) -> Draft:
        """``draft`` with its canary MACed to its name and bytes (with a key): SQL cannot rewrite it unnoticed."""
        if key is None or draft.canary is None:
            return draft
        mac = signing.sign_canary(key, draft.name, checksum_of(staged.digest), draft.canary.to_json())
        return dataclasses.replace(draft, canary=dataclasses.replace(draft.canary, hmac=mac))

    for _, staged in batch:
        staged.push()
    return catalog.add_versions(
        [(with_blob(sealed(draft, staged), staged), staged.publish) for draft, staged in batch], sign
    )
