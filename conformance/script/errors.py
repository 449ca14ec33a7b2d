"""Errors in a ``.pkt`` script, each with the place it was found.

A :class:`ScriptError` prints as ``path:line:col: message`` (1-based line and
column), the form compilers use, so editors can jump to it.  The parser collects
every error it can find in one pass and raises the first; the others ride along in
:attr:`ScriptError.errors`.
"""

from __future__ import annotations


class ScriptError(Exception):
    """A malformed script: where (``path``, ``line``, ``col``) and why (``message``)."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        self.line = line
        self.col = col
        self.message = message
        # Every error found in the same file, in source order; this one is the first.
        self.errors: tuple[ScriptError, ...] = (self,)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    def __repr__(self) -> str:
        return f"ScriptError({self.path!r}, {self.line}, {self.col}, {self.message!r})"


def raise_first(errors: list[ScriptError]) -> None:
    """Raise the first of ``errors`` (in source order) carrying all of them; no-op if empty."""
    if not errors:
        return
    ordered = sorted(errors, key=lambda e: (e.line, e.col))
    first = ordered[0]
    first.errors = tuple(ordered)
    raise first
