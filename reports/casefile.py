"""A case's source as the report shows it: its lines, header comment and ``req:`` IDs.

A case names its script by path (``rfc_cases/rfc9293/handshake/x.pkt``, absolute, or
relative to where the run started); a Python case by its node id
(``path/test_x.py::test_name``).  :func:`read_case_file` tries each path it is given,
relative to the current directory or absolute, and returns None when none can be
read: the report then says the script is unavailable.

The header is the run of comment lines (``//`` in scripts, ``#`` in Python) at the top
of the file, blank lines before it skipped; the requirement IDs are the words after
``req:`` on any header line (``// req: SM-6 MUST-12``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MAX_BYTES", "CaseFile", "read_case_file"]

MAX_BYTES = 256 * 1024
"""A longer file is cut there (the report says so)."""

_REQ = re.compile(r"\breq:\s*(.*)$")
_COMMENT = re.compile(r"^\s*(//|#)\s?(.*)$")


@dataclass
class CaseFile:
    path: str  # as found (the string that opened it)
    lines: list[str]
    header: list[str] = field(default_factory=list)  # comment text, markers stripped
    reqs: list[str] = field(default_factory=list)
    truncated: bool = False


def script_path(case: str) -> str:
    """The file part of a case name (a Python node id loses its ``::test``)."""
    return case.partition("::")[0]


def read_case_file(candidates: list[str]) -> CaseFile | None:
    """The first candidate path that reads as a file, parsed; None if none does."""
    for candidate in dict.fromkeys(script_path(c) for c in candidates if c):
        p = Path(candidate)
        try:
            if not p.is_file():
                continue
            with p.open("rb") as f:
                data = f.read(MAX_BYTES + 1)
        except OSError:
            continue
        truncated = len(data) > MAX_BYTES
        text = data[:MAX_BYTES].decode("utf-8", errors="replace")
        return parse_case_text(candidate, text, truncated=truncated)
    return None


def parse_case_text(path: str, text: str, *, truncated: bool = False) -> CaseFile:
    lines = text.splitlines()
    header: list[str] = []
    reqs: list[str] = []
    started = False
    for line in lines:
        if not line.strip() and not started:
            continue
        if line.lstrip().startswith("#!") and not started:  # a Python shebang
            continue
        m = _COMMENT.match(line)
        if m is None:
            break
        started = True
        body = m.group(2).rstrip()
        req = _REQ.search(body)
        if req is not None:
            reqs.extend(word for word in re.split(r"[\s,]+", req.group(1)) if word)
            body = body[: req.start()].rstrip()
        if body:
            header.append(body)
    return CaseFile(path, lines, header, list(dict.fromkeys(reqs)), truncated)
