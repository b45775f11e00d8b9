"""What a model accepts: input signatures (inferred, coerced, checked) and the wrapper that checks them on use.

:mod:`~registry.inputs.signature` needs numpy and is imported only when a
signature is inferred or checked; :mod:`~registry.inputs.validated` does not,
so ``import registry`` stays cheap.
"""
