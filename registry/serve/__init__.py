"""``modelshelf serve``: an HTTP prediction server that follows an alias (``pip install 'modelshelf[serve]'``).

Starlette and uvicorn are imported here, and only when this package is
imported: the command line imports it inside the ``serve`` command. The
version is loaded through :meth:`Registry.load` (checksum, signature, and
its canary), and a version the alias moves to is swapped in only once it
has passed the same checks:

>>> from registry import Registry                                         # doctest: +SKIP
>>> from registry.serve import app                                        # doctest: +SKIP
>>> application = app(Registry("models"), "iris-knn@production")  # any ASGI server  # doctest: +SKIP
"""

from __future__ import annotations

from registry.serve.routes import app

__all__ = ["app"]
