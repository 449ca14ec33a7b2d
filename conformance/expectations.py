"""Known divergences per target: the expectations files that turn fail into xfail.

A target that is known to depart from a case's script for a good reason lists the
case in its expectations file, with the reason.  A result that the entry explains
then becomes ``xfail`` instead of ``fail``, and a listed case that starts passing
becomes ``xpass`` -- the expectation no longer holds and the file needs updating.

File format
-----------
One small TOML file per target, named after the target, in the corpus's
``expectations/`` directory, e.g. ``rfc_cases/expectations/linux.toml``::

    # Known divergences of the Linux target.

    [[xfail]]
    case = "rfc9293/segment_arrival/**/rst_*.pkt"
    reason = "Linux answers an in-window RST with a challenge ACK (RFC 5961 §3.2)"

    [[xfail]]
    case = "rfc1122/keepalive/idle_default.pkt"
    reason = "the script waits for the RFC's 2 h default; Linux is configured for 75 s here"
    verdicts = ["fail", "error"]

Each ``[[xfail]]`` table is one entry, with exactly these keys:

``case`` (required)
    A glob matched against the case path relative to the corpus root, with ``/`` as
    separator: ``*`` matches any run of characters within one path segment, ``?``
    one character, ``[abc]``/``[a-z]``/``[!abc]`` one character of a set, and a
    segment that is exactly ``**`` any number of directories, none included
    (``rfc9293/**/rst_*.pkt`` matches ``rfc9293/rst_a.pkt`` and
    ``rfc9293/x/y/rst_b.pkt``).  Python cases are matched by node id with the file
    part relative to the root, e.g. ``python/test_frag.py::test_overlap``.
``reason`` (required)
    Why the target diverges: a non-empty string, shown as the xfail's reason.
``verdicts`` (optional, default ``["fail"]``)
    The verdicts the divergence explains: ``"fail"`` and/or ``"error"``.
``line`` (optional)
    The script line where the divergence shows: the entry then explains only a
    failure whose first mismatch is at that line, so the same case failing anywhere
    else is still a failure (and says which line the entry expected).

Anything else -- a missing or empty reason, a bad glob, an unknown key, a verdict
other than fail or error, a TOML syntax error -- raises :class:`ExpectationsError`
naming the file and the entry.  A file with no entries is valid.

How a result is rewritten (:func:`apply`)
-----------------------------------------
- a verdict the first matching entry lists (fail by default) becomes ``xfail`` with
  the entry's reason; the mismatch and the trace are kept;
- ``pass`` with a matching entry becomes ``xpass``, its reason saying that the
  expectation no longer holds;
- ``skip`` never changes, nor do ``error`` (unless listed) and results that are
  already ``xfail`` or ``xpass`` (so applying twice changes nothing).

Entries are tried in file order; for a verdict other than pass the first entry that
matches the case *and* lists the verdict is used.  After a run,
:meth:`Expectations.unused_entries` gives the entries whose glob matched no case, to
be reported as stale.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.results import CaseResult, Verdict

__all__ = [
    "EXPLAINABLE",
    "Entry",
    "Expectations",
    "ExpectationsError",
    "GlobError",
    "apply",
    "compile_glob",
    "nearest",
]

EXPLAINABLE = frozenset({Verdict.FAIL, Verdict.ERROR})
"""The verdicts an entry may list in ``verdicts``."""

_ENTRY_KEYS = frozenset({"case", "reason", "verdicts", "line"})
_TOP_KEYS = frozenset({"xfail"})
_HEADER = re.compile(r"^\s*\[\[\s*xfail\s*\]\]\s*(#.*)?$")


class ExpectationsError(ValueError):
    """An expectations file that cannot be used; the message names file and entry."""

    def __init__(self, path: str, message: str, entry: int | None = None, line: int | None = None) -> None:
        self.path = path
        self.entry = entry  # 1-based index of the [[xfail]] entry, if the error is in one
        self.line = line  # line of that entry's [[xfail]] header, when it can be found
        self.reason = message
        where = path if line is None else f"{path}:{line}"
        if entry is not None:
            where += f": [[xfail]] entry {entry}"
        super().__init__(f"{where}: {message}")


class GlobError(ValueError):
    """A ``case`` glob that is malformed."""


def compile_glob(pattern: str) -> re.Pattern[str]:
    """The regular expression for a ``case`` glob (see the module docstring)."""
    if not pattern:
        raise GlobError("the glob is empty")
    if pattern.startswith("/"):
        raise GlobError("the glob must be relative to the corpus root (no leading '/')")
    if "\\" in pattern:
        raise GlobError("use '/' as the path separator; '\\' is not allowed")
    segments = pattern.split("/")
    if any(not s for s in segments):
        raise GlobError("the glob has an empty path segment ('//' or a trailing '/')")
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == "**":
            # Any number of whole directories (none included); as the last segment,
            # anything at all below this point.
            out.append(".*" if last else "(?:[^/]+/)*")
            continue
        if "**" in seg:
            raise GlobError(f"'**' must be a whole path segment, not part of {seg!r}")
        out.append(_segment(seg) + ("" if last else "/"))
    return re.compile("".join(out) + r"\Z")


def _segment(seg: str) -> str:
    parts: list[str] = []
    i = 0
    while i < len(seg):
        c = seg[i]
        if c == "*":
            parts.append("[^/]*")
        elif c == "?":
            parts.append("[^/]")
        elif c == "[":
            j = i + 1
            negate = j < len(seg) and seg[j] == "!"
            if negate:
                j += 1
            start = j
            if j < len(seg) and seg[j] == "]":  # a ']' first is a member, as in fnmatch
                j += 1
            while j < len(seg) and seg[j] != "]":
                j += 1
            if j >= len(seg):
                raise GlobError(f"unclosed '[' in {seg!r}")
            members = seg[start:j]
            if "/" in members:
                raise GlobError(f"a character set cannot match '/' (in {seg!r})")
            body = "".join("\\" + m if m in "\\^[]" else m for m in members)
            try:
                re.compile(f"[{body}]")
            except re.error as exc:
                raise GlobError(f"bad character set [{members}] in {seg!r}: {exc}") from None
            parts.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")  # a range may span '/'
            i = j
        elif c == "]":
            raise GlobError(f"unmatched ']' in {seg!r}")
        else:
            parts.append(re.escape(c))
        i += 1
    return "".join(parts)


@dataclass(frozen=True)
class Entry:
    """One known divergence: the cases it covers, why, and which verdicts it explains."""

    case: str
    reason: str
    verdicts: frozenset[Verdict] = frozenset({Verdict.FAIL})
    source: str = ""  # "<file>:<line>" or "<file> entry <n>", for messages and reports
    line: int | None = None  # the script line the divergence shows at; None: any
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", compile_glob(self.case))  # raises GlobError

    def matches(self, relpath: str) -> bool:
        """Whether the glob covers ``relpath`` (already relative to the corpus root)."""
        return self._regex.match(relpath) is not None

    def explains_line(self, line: int | None) -> bool:
        """Whether a failure whose first mismatch is at ``line`` is this divergence."""
        return self.line is None or line == self.line


class Expectations:
    """The known divergences of one target, matched against case paths.

    ``root`` is the corpus root the globs are relative to.  :meth:`load` takes it
    from the file's place (``<root>/expectations/<target>.toml``).
    """

    def __init__(
        self,
        target: str,
        entries: Iterable[Entry] = (),
        root: str | os.PathLike[str] = ".",
        source: str = "",
    ) -> None:
        self.target = target
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.root = Path(os.path.abspath(root))
        self.source = source
        self._used: set[int] = set()

    @classmethod
    def load(
        cls,
        path_or_dir: str | os.PathLike[str],
        target: str,
        *,
        root: str | os.PathLike[str] | None = None,
    ) -> Expectations:
        """Read the expectations of ``target``.

        ``path_or_dir`` is either the file itself or a directory holding
        ``<target>.toml``; a directory without that file means the target has no
        known divergences (an empty set).  The corpus root is ``root`` when given,
        else the parent of the ``expectations`` directory the file is in, else the
        file's own directory.
        """
        path = Path(path_or_dir)
        if path.is_dir():
            file = path / f"{target}.toml"
            if not file.exists():
                return cls(target, (), root if root is not None else _default_root(file), str(file))
        else:
            file = path
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ExpectationsError(str(file), f"not UTF-8: {exc}") from None
        return cls.parse(
            text, target, source=str(file), root=root if root is not None else _default_root(file)
        )

    @classmethod
    def parse(
        cls,
        text: str,
        target: str,
        *,
        source: str = "<string>",
        root: str | os.PathLike[str] = ".",
    ) -> Expectations:
        """Parse the TOML text of an expectations file (``source`` names it in errors)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ExpectationsError(source, f"not valid TOML: {exc}") from None
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ExpectationsError(
                source, f"unknown top-level key(s) {', '.join(map(repr, unknown))}; only [[xfail]] entries"
            )
        raw = data.get("xfail", [])
        if not isinstance(raw, list):
            raise ExpectationsError(
                source, "'xfail' must be an array of tables: write [[xfail]], not [xfail]"
            )
        headers = [n for n, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]
        lines: list[int | None] = list(headers) if len(headers) == len(raw) else [None] * len(raw)
        entries = [
            _entry(item, source, index, line)
            for index, (item, line) in enumerate(zip(raw, lines, strict=True), 1)
        ]
        return cls(target, entries, root, source)

    def match(self, case: str, verdict: Verdict | None = None, line: int | None = None) -> Entry | None:
        """The first entry covering ``case`` (and listing ``verdict``, when given).

        ``case`` is a result's case: a path (absolute, relative to the current
        directory, or relative to the corpus root) or a pytest node id.  ``line`` is
        the failure's mismatch line: an entry pinned to another line does not match.
        Every entry whose glob covers the case counts as used (see :meth:`unused_entries`).
        """
        relpath = self.relative(case)
        found: Entry | None = None
        for index, entry in enumerate(self.entries):
            if not entry.matches(relpath):
                continue
            self._used.add(index)
            if found is not None:
                continue
            pass_or_any = verdict is None or verdict is Verdict.PASS
            if pass_or_any or (verdict in entry.verdicts and entry.explains_line(line)):
                found = entry
        return found

    def relative(self, case: str) -> str:
        """``case`` as the globs see it: relative to the corpus root, ``/``-separated.

        An absolute path inside the root is made relative to it; a relative path is
        taken from the current directory when that lands inside the root (so
        ``rfc_cases/rfc9293/x.pkt`` run from the repository becomes ``rfc9293/x.pkt``)
        and as already relative to the root otherwise.  A node id's ``::`` part is kept.
        """
        file, sep, rest = case.partition("::")
        if not file:
            return case
        absolute = os.path.normpath(os.path.abspath(file))
        root = str(self.root)
        if absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep):
            rel = os.path.relpath(absolute, root)
        elif os.path.isabs(file):
            rel = absolute
        else:
            rel = os.path.normpath(file)
        return rel.replace(os.sep, "/") + sep + rest

    def unused_entries(self) -> list[Entry]:
        """The entries whose glob has matched no case so far (stale expectations)."""
        return [e for i, e in enumerate(self.entries) if i not in self._used]

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Expectations(target={self.target!r}, entries={len(self.entries)}, source={self.source!r})"


def apply(result: CaseResult, expectations: Expectations) -> CaseResult:
    """``result`` with its verdict rewritten by the target's expectations.

    Returns a new :class:`CaseResult` when the verdict changes and ``result`` itself
    otherwise; the input is never modified.  Raises ``ValueError`` if the
    expectations belong to another target.
    """
    if result.target != expectations.target:
        raise ValueError(
            f"expectations for target {expectations.target!r} applied to a result of {result.target!r}"
        )
    if result.verdict is Verdict.PASS:
        entry = expectations.match(result.case, Verdict.PASS)
        if entry is None:
            return result
        listed = "/".join(sorted(entry.verdicts))
        return dataclasses.replace(
            result,
            verdict=Verdict.XPASS,
            reason=(
                f"passed, but {entry.source or expectations.source} lists it as a known divergence "
                f"({listed}; case = {entry.case!r}): the expectation no longer holds; "
                f"its reason was: {entry.reason}"
            ),
        )
    if result.verdict in EXPLAINABLE:
        at = result.mismatch.line if result.mismatch is not None else None
        entry = expectations.match(result.case, result.verdict, at)
        if entry is None:
            relpath = expectations.relative(result.case)
            pins = [e for e in expectations.entries if e.line is not None and e.matches(relpath)]
            if pins and result.verdict in pins[0].verdicts:
                pinned = pins[0]
                where = f"line {at}" if at is not None else "no script line"
                return dataclasses.replace(
                    result,
                    reason=f"{result.reason} (a known divergence is listed at line {pinned.line}, "
                    f"but this failure is at {where}: {pinned.source})",
                )
            return result
        return dataclasses.replace(result, verdict=Verdict.XFAIL, reason=entry.reason)
    # skip, xfail, xpass: unchanged, but a listed case still counts as seen.
    expectations.match(result.case)
    return result


def nearest(case: str | os.PathLike[str], target: str) -> Expectations | None:
    """The expectations of ``target`` in the ``expectations/`` folder nearest above
    ``case`` (a case file), whose parent is the corpus root its globs are relative
    to; None when no folder above the case has one."""
    for directory in Path(case).resolve().parents:
        if (directory / "expectations").is_dir():
            return Expectations.load(directory / "expectations", target)
    return None


def _default_root(file: Path) -> Path:
    parent = file.parent
    return parent.parent if parent.name == "expectations" else parent


def _entry(item: Any, source: str, index: int, line: int | None) -> Entry:
    def error(message: str) -> ExpectationsError:
        return ExpectationsError(source, message, index, line)

    if not isinstance(item, dict):
        raise error("an entry must be a table")
    unknown = sorted(set(item) - _ENTRY_KEYS)
    if unknown:
        raise error(
            f"unknown key(s) {', '.join(map(repr, unknown))}; an entry has only "
            f"{', '.join(map(repr, sorted(_ENTRY_KEYS)))}"
        )
    case = item.get("case")
    if case is None:
        raise error("missing 'case' (the glob of the cases this entry covers)")
    if not isinstance(case, str):
        raise error(f"'case' must be a string, not {type(case).__name__}")
    label = f"case = {case!r}"
    reason = item.get("reason")
    if reason is None:
        raise error(f"{label}: missing 'reason' (why the target diverges)")
    if not isinstance(reason, str) or not reason.strip():
        raise error(f"{label}: 'reason' must be a non-empty string")
    raw_verdicts = item.get("verdicts", ["fail"])
    if not isinstance(raw_verdicts, list) or not raw_verdicts:
        raise error(f'{label}: \'verdicts\' must be a non-empty list, e.g. ["fail", "error"]')
    verdicts: set[Verdict] = set()
    for v in raw_verdicts:
        if not isinstance(v, str) or v not in {str(x) for x in EXPLAINABLE}:
            raise error(
                f"{label}: verdict {v!r} cannot be explained by an expectation; "
                f"use {', '.join(repr(str(x)) for x in sorted(EXPLAINABLE))}"
            )
        verdicts.add(Verdict(v))
    pin = item.get("line")
    if pin is not None and (not isinstance(pin, int) or isinstance(pin, bool) or pin < 1):
        raise error(f"{label}: 'line' must be a script line number (a positive integer), not {pin!r}")
    where = f"{source}:{line}" if line is not None else f"{source} entry {index}"
    try:
        return Entry(case, reason.strip(), frozenset(verdicts), where, pin)
    except GlobError as exc:
        raise error(f"{label}: bad glob: {exc}") from None
