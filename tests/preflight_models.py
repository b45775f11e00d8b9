"""A model whose loading misbehaves in the process that loads it, as ``$QUIRK`` says there.

:class:`Quirky`'s ``__setstate__`` runs when its artifact is unpickled, in
whichever interpreter does it; it warns, prints to standard output, crashes
the interpreter, hangs or exits as ``$QUIRK`` says in *that* process. The
registering process never unpickles it, so only the other interpreter of a
pre-flight misbehaves — for real, not by a mock.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import time
import warnings
from typing import Any

import numpy as np


class Quirky:
    """Predicts the sum of each row; loading does what ``$QUIRK`` says."""

    def fit(self, X: Any, y: Any = None) -> Quirky:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> Any:
        return np.asarray(X, dtype=float).sum(axis=1)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        quirk = os.environ.get("QUIRK", "")
        if quirk == "warn":
            warnings.warn("quirky: loaded in another interpreter", UserWarning, stacklevel=2)
        elif quirk == "print":
            print("hello from the model, on standard output")
        elif quirk == "crash":
            sys.stderr.write("about to crash\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGSEGV)
        elif quirk == "hang":
            time.sleep(120)
        elif quirk == "exit":
            sys.exit(7)
        elif quirk == "snoop":  # what a model could read where it is loaded
            key = os.environ.get("MODELSHELF_SIGNING_KEY")
            warnings.warn(f"snooped key={key} cwd={os.getcwd()}", UserWarning, stacklevel=2)
        elif quirk == "fd1":  # below Python's sys.stdout, as C code writes, and once more at exit
            os.write(1, b'{"loaded": false, "error": "forged"}')
            atexit.register(os.write, 1, b"written at exit\n")
