"""The bundle format: a tar of a manifest, its signature and one blob per digest (air-gapped transfer).

A bundle is an uncompressed tar holding ``manifest.json`` (for each version:
name, source version, checksum, size, format, params, tags, description,
environment, imports, lineage, input signature, creation time and full
metric history), ``manifest.sig`` when signed, and one member
``blobs/<digest>`` per distinct artifact; :mod:`~registry.bundles.archive`
writes it and reads its blobs back.

What a bundle must be before anything in it is believed lives here too: its
raw tar headers (:mod:`~registry.bundles.headers`), its members and
signature (:mod:`~registry.bundles.checks`) and every field of its manifest
(:mod:`~registry.bundles.manifest`). Recording its versions is the
registry's job (``Registry.export_bundle`` and ``Registry.import_bundle``),
through the same write pipeline as ``register`` (:mod:`registry.drafting`).

Importing is all or nothing: the tar's structure and every field of the
manifest are checked first, then every blob is streamed into the target
store, exactly its declared size, and hashed on the way; if any digest
differs from the manifest the bundle is refused before a single version is
recorded. Versions get new numbers in the target (the mapping is
returned), keep their history and tags, and are tagged
``modelshelf.imported-from`` with their origin, so importing the same
bundle again finds them and records nothing twice. Aliases are not carried
over: promoting is a decision for the target registry. Nor is a lineage's
parent, which names a version of the source registry; the origin tag keeps
the way back.

Signed bundles (:mod:`registry.trust.keys`): a registry with a bundle key
signs the exact manifest bytes it exports and adds the member
``manifest.sig``. An import reads the manifest and its signature before
believing anything in either, checks the signature, and goes on only if the
signer's public key is trusted, or if the caller said ``allow_unsigned``
(for an unsigned bundle or an unknown signer; never for a signature that
does not match). Then the tar must hold exactly the manifest, the signature
and one blob per digest the manifest lists, each of the listed size, and
every blob is hashed against the now authenticated manifest. So a bundle
whose blob was replaced and whose manifest was rewritten to the new digest
is refused, and the target's HMAC signing key never signs bytes nobody
vouched for. Who signed the bundle, or who accepted it unsigned, is kept in
each imported version's register event (``reg.events()``, ``modelshelf log``).
"""
