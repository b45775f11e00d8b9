"""The bundle format: a tar of a manifest, its signature and one blob per digest.

What a bundle must be before anything in it is believed lives here: its raw
tar headers (:mod:`~registry.bundles.headers`), its members and signature
(:mod:`~registry.bundles.checks`) and every field of its manifest
(:mod:`~registry.bundles.manifest`). Recording its versions is the
registry's job (``Registry.import_bundle``).
"""
