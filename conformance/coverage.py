"""Requirement coverage: which case checks which requirement, and what nothing checks.

Every corpus case names the requirements it checks on a line of its header::

    // req: SM-6 MUST-12              (a .pkt script)
    # req: F-1 F-7                    (a Python case: the next ``def test_`` below it)

IDs are those of ``conformance/data/requirements.toml`` (RFC 9293's labelled
MUST/SHLD/MAY/REC requirements, the unlabelled state-machine checks SM-n, and the
fragmentation and multicast host requirements F-n/M-n), a section of another RFC
written ``RFC5681-3.2``, or an Onload semantic written ``ONLOAD-EF_MAX_ENDPOINTS``.
A Python case may also name its IDs in ``@case("SM-6 RFC5961-3.2")``.
:func:`scan` reads a corpus; :func:`report` joins it with the requirement list.
An ID that is none of these is reported as unknown (a typo must not count as
coverage), and so is a case without a ``req:`` line.

The JSON document (``python -m conformance coverage --json``)::

    {
      "format": "tcpip-parity/coverage", "version": 1,
      "requirements": [{"id": "MUST-1", "level": "MUST", "section": "3.1", "text": "...",
                        "testability": "W", "cases": ["rfc9293/x.pkt"],
                        "uncovered_reason": null}, ...],
      "summary": {"MUST": {"total": 69, "covered": 61}, "SHLD": {...}, ...},
      "other_ids": {"RFC5681-3.2": ["rfc5681_congestion/x.pkt"]},
      "unknown_ids": {"MUST-99": ["rfc9293/typo.pkt"]},
      "cases_without_req": ["rfc9293/y.pkt"]
    }
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "LEVELS",
    "Requirement",
    "Scan",
    "load_requirements",
    "report",
    "scan",
]

FORMAT = "tcpip-parity/coverage"
VERSION = 1
LEVELS = ("MUST", "SHLD", "MAY", "REC", "SM", "F", "M")
"""Requirement families, in the order reports list them."""

_DATA = Path(__file__).parent / "data" / "requirements.toml"
_REQ_LINE = re.compile(r"^\s*(?://|#)\s*req:\s*(.*)$")
_TEST_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(test_\w+)")
_OTHER_RFC = re.compile(r"^(RFC\d+-[0-9A-Za-z.]+|ONLOAD-EF_[A-Z0-9_]+)$")
_CASE_DECORATOR = re.compile(r"""^\s*@case\(\s*["']([^"']*)["']""")
_ID = re.compile(r"^((MUST|SHLD|MAY|REC|SM|F|M)-\d+|RFC\d+-[0-9A-Za-z.]+|ONLOAD-EF_[A-Z0-9_]+)$")

_WHY_UNCOVERED = {
    "I": "an internal design property (ISN generator, 32-bit window arithmetic, Karn's rule as "
    "an algorithm): only indirectly or statistically checkable, not by one wire exchange",
    "X": "IP option processing (source route, record route, IP timestamp): Linux drops such "
    "packets by default (accept_source_route=0), so no Linux parity is possible",
    "T": "timer-bound (hours or minutes by default): needs a case with shortened timers; none yet",
    "A": "needs socket-API observation on the DUT; no case yet",
    "W": "observable on the wire; no case yet",
}


@dataclass(frozen=True)
class Requirement:
    """One requirement of the list: its ID, family, section, paraphrase and testability."""

    id: str
    level: str
    section: str
    text: str
    testability: str
    uncovered_reason: str | None = None  # why no case can check it, when known specifically


def load_requirements(path: Path = _DATA) -> list[Requirement]:
    """The requirement list shipped with the harness (``conformance/data/requirements.toml``)."""
    with path.open("rb") as f:
        data = tomllib.load(f)
    return [
        Requirement(r["id"], r["level"], r["section"], r["text"], r["testability"], r.get("uncovered_reason"))
        for r in data["requirement"]
    ]


@dataclass
class Scan:
    """What a corpus says it checks: ID -> cases, and the cases that say nothing."""

    root: Path
    by_id: dict[str, list[str]]
    without_req: list[str]
    cases: int


def _case_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.suffix == ".pkt" or (path.suffix == ".py" and path.name.startswith("test_")):
            yield path


def _ids(text: str) -> list[str]:
    return [token for token in re.split(r"[\s,]+", text.strip()) if token]


def _claims(path: Path, rel: str) -> Iterator[tuple[str, list[str]]]:
    """(case, IDs) for each ``req:`` line of one file."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if path.suffix == ".pkt":
        for line in lines:
            m = _REQ_LINE.match(line)
            if m:
                yield rel, _ids(m.group(1))
        return
    pending: list[str] = []
    for line in lines:
        m = _REQ_LINE.match(line)
        if m:
            pending += _ids(m.group(1))
            continue
        c = _CASE_DECORATOR.match(line)
        if c:  # @case("SM-6 RFC5961-3.2"): the requirement IDs among its words count too
            pending += [word for word in _ids(c.group(1)) if _ID.match(word)]
            continue
        d = _TEST_DEF.match(line)
        if d:
            yield f"{rel}::{d.group(1)}", pending
            pending = []
    if pending:
        yield rel, pending


def scan(root: str | Path) -> Scan:
    """Read every case under ``root`` (``.pkt`` scripts and ``test_*.py`` Python cases)."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: not a directory")
    by_id: dict[str, list[str]] = {}
    without: list[str] = []
    count = 0
    for path in _case_files(base):
        rel = path.relative_to(base).as_posix()
        claims = list(_claims(path, rel))
        if path.suffix == ".pkt":
            count += 1
            if not any(ids for _, ids in claims):
                without.append(rel)
        else:
            tests = [case for case, _ in claims if "::" in case]
            count += len(tests)
            without += [case for case, ids in claims if "::" in case and not ids]
        for case, ids in claims:
            for rid in ids:
                cases = by_id.setdefault(rid, [])
                if case not in cases:
                    cases.append(case)
    return Scan(base, by_id, without, count)


def report(found: Scan, requirements: list[Requirement] | None = None) -> dict[str, Any]:
    """The coverage document (see the module docstring) for a scanned corpus."""
    reqs = load_requirements() if requirements is None else requirements
    known = {r.id for r in reqs}
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, int]] = {}
    for r in reqs:
        cases = sorted(found.by_id.get(r.id, []))
        rows.append(
            {
                "id": r.id,
                "level": r.level,
                "section": r.section,
                "text": r.text,
                "testability": r.testability,
                "cases": cases,
                "uncovered_reason": None
                if cases
                else r.uncovered_reason or _WHY_UNCOVERED.get(r.testability, "no case yet"),
            }
        )
        tally = summary.setdefault(r.level, {"total": 0, "covered": 0})
        tally["total"] += 1
        tally["covered"] += bool(cases)
    other = {k: sorted(v) for k, v in sorted(found.by_id.items()) if k not in known and _OTHER_RFC.match(k)}
    unknown = {
        k: sorted(v) for k, v in sorted(found.by_id.items()) if k not in known and not _OTHER_RFC.match(k)
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "root": str(found.root),
        "cases": found.cases,
        "requirements": rows,
        "summary": summary,
        "other_ids": other,
        "unknown_ids": unknown,
        "cases_without_req": sorted(found.without_req),
    }


def render_text(doc: dict[str, Any], *, verbose: bool = False) -> str:
    """A terminal-sized view: the summary, then each MUST/SHLD row, then the problems."""
    out: list[str] = []
    summary = doc["summary"]
    parts = [f"{lvl} {summary[lvl]['covered']}/{summary[lvl]['total']}" for lvl in LEVELS if lvl in summary]
    out.append(f"{doc['cases']} cases under {doc['root']}: " + ", ".join(parts))
    for row in doc["requirements"]:
        if row["level"] not in ("MUST", "SHLD") and not verbose:
            continue
        if row["cases"]:
            shown = ", ".join(row["cases"][:3]) + (
                f" (+{len(row['cases']) - 3})" if len(row["cases"]) > 3 else ""
            )
            out.append(f"  {row['id']:8} §{row['section']:10} {len(row['cases']):3} case(s): {shown}")
        else:
            out.append(f"  {row['id']:8} §{row['section']:10}   uncovered: {row['uncovered_reason']}")
    if doc["unknown_ids"]:
        out.append("unknown requirement IDs (typos do not count as coverage):")
        out += [f"  {rid}: {', '.join(cases)}" for rid, cases in doc["unknown_ids"].items()]
    if doc["cases_without_req"]:
        out.append("cases without a 'req:' line:")
        out += [f"  {case}" for case in doc["cases_without_req"]]
    return "\n".join(out)
