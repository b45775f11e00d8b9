"""Who vouches for what: version HMACs, Ed25519 bundle keys, and the client's memory against rollback.

:mod:`~registry.trust.keys` imports ``cryptography`` and is loaded only when a
bundle is signed or checked.
"""
