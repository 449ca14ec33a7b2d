"""``python -m refstack``: the stack tools (see :mod:`refstack.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
