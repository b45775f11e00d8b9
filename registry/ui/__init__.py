"""``modelshelf ui``: a local web interface over a registry (``pip install 'modelshelf[ui]'``).

Starlette and Jinja2 are imported here and nowhere else in modelshelf, and
only when this package is imported: the command line imports it inside the
``ui`` command. The pages read the registry through its public API:

>>> from registry import Registry                                         # doctest: +SKIP
>>> from registry.ui import app                                           # doctest: +SKIP
>>> application = app(Registry("models"))   # any ASGI server can run it  # doctest: +SKIP
"""

from __future__ import annotations

from registry.ui.routes import app

__all__ = ["app"]
