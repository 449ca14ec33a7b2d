"""``refstack run``: the LD_PRELOAD analogue -- an unmodified Python program on refstack.

``python -m refstack run --tap tap0 --address 198.51.100.2/24 -- server.py args`` opens the
device, builds a :class:`~refstack.stack.Stack` (EF_* options from the environment and
``--ef``), starts a :class:`~refstack.run.readiness.ShimDriver` (a real-time driver serving
``refstack stackdump``), puts shim ``socket``/``select``/``selectors`` modules into
``sys.modules`` (:mod:`refstack.run.shim`) and runs the program with ``runpy``
(``-- -m module args`` runs a module).  Readiness: :mod:`refstack.run.readiness`.
"""

from __future__ import annotations

from .readiness import ShimDriver, Signal
from .shim import ShimSocket, install, socket_module, uninstall

__all__ = ["ShimDriver", "ShimSocket", "Signal", "install", "socket_module", "uninstall"]
