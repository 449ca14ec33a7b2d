"""Reading the report's inputs: results documents and the coverage document.

Every problem with an input becomes a :class:`ReportError` that names the file and
says what is wrong with it (where in the document, when that is known), so the
command line can print one line and exit 2 instead of a traceback.

Results documents are read with :meth:`conformance.resultset.ResultSet.load`; when it
refuses one, :func:`_locate_problem` walks the document to say which entry and which
key is at fault.  The coverage document is the one ``python -m conformance coverage
--json`` writes::

    {"format": "tcpip-parity/coverage", "version": 1,
     "requirements": [{"id": "MUST-1", "level": "MUST", "section": "3.1",
                       "text": "one-line description", "cases": ["rfc9293/x.pkt"],
                       "uncovered_reason": null}],
     "summary": {"MUST": {"total": 69, "covered": 61}, ...}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conformance.results import Verdict
from conformance.resultset import FORMAT, VERSION, ResultSet

__all__ = [
    "COVERAGE_FORMAT",
    "COVERAGE_VERSION",
    "Coverage",
    "ReportError",
    "Requirement",
    "Run",
    "load_coverage",
    "load_run",
]

COVERAGE_FORMAT = "tcpip-parity/coverage"
COVERAGE_VERSION = 1


class ReportError(Exception):
    """An input the report cannot use: ``path`` and what is wrong with it."""

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        super().__init__(f"{os.fspath(path)}: {message}")
        self.path = os.fspath(path)
        self.message = message


@dataclass
class Run:
    """One results file: where it came from and what it holds."""

    path: str
    results: ResultSet


def load_run(path: str | os.PathLike[str]) -> Run:
    """Read one results document; any problem raises :class:`ReportError`."""
    name = os.fspath(path)
    p = Path(name)
    if p.is_dir():
        raise ReportError(name, "is a directory, not a results file")
    try:
        results = ResultSet.load(p)
    except FileNotFoundError:
        raise ReportError(name, "no such file") from None
    except OSError as e:
        raise ReportError(name, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ReportError(name, f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ReportError(name, f"not JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        data = json.loads(p.read_text(encoding="utf-8"))
        raise ReportError(name, _locate_problem(data) or _describe(e)) from None
    problem = _check_types(results)
    if problem:
        raise ReportError(name, problem)
    return Run(name, results)


def _check_types(results: ResultSet) -> str | None:
    """What ``ResultSet.load`` takes as it comes: the types the report relies on."""
    for i, r in enumerate(results.results):
        where = f"results[{i}] ({r.case} on {r.target})"
        for key in ("duration", "script_time"):
            value = getattr(r, key)
            if not _is_number(value):
                return f"{where}: {key!r} is {value!r}, not a number"
        reason: object = r.reason
        if not isinstance(reason, str):
            return f"{where}: 'reason' is not a string"
        m = r.mismatch
        if m is not None:
            if not (_is_int(m.line) and _is_int(m.col) and isinstance(m.message, str)):
                return f"{where}: the mismatch's line and col must be integers, its message a string"
            if not all(isinstance(x, str | None) for x in (m.expected, m.actual)):
                return f"{where}: the mismatch's expected and actual must be strings or null"
            if not all(
                isinstance(f.name, str) and isinstance(f.expected, str) and isinstance(f.actual, str)
                for f in m.fields
            ):
                return f"{where}: every mismatch field needs string name, expected and actual"
        for j, t in enumerate(r.trace):
            if not (
                _is_number(t.time) and isinstance(t.kind, str) and isinstance(t.text, str) and _is_int(t.line)
            ):
                return f"{where}: trace[{j}] needs a numeric time, string kind and text, an integer line"
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"missing key {e.args[0]!r}"
    return str(e) or type(e).__name__


_VERDICTS = ", ".join(str(v) for v in Verdict)


def _locate_problem(data: Any) -> str | None:
    """Where a results document departs from the format, or None if this finds nothing."""
    if not isinstance(data, dict):
        return f"not a results document: the top level is a JSON {_json_type(data)}, not an object"
    if data.get("format") != FORMAT:
        return f"not a results document: format is {data.get('format')!r}, expected {FORMAT!r}"
    if data.get("version") != VERSION:
        return f"results version {data.get('version')!r} is not supported (only {VERSION})"
    if not isinstance(data.get("started"), str):
        return "'started' is missing or not a string (an ISO 8601 date)"
    try:
        datetime.fromisoformat(data["started"])
    except ValueError:
        return f"'started' is {data['started']!r}, not an ISO 8601 date"
    if not isinstance(data.get("duration", 0.0), int | float):
        return f"'duration' is {data['duration']!r}, not a number"
    if not isinstance(data.get("results"), list):
        return "'results' is missing or not a list"
    if not isinstance(data.get("environment", {}), dict):
        return "'environment' is not an object"
    for i, r in enumerate(data["results"]):
        where = f"results[{i}]"
        if not isinstance(r, dict):
            return f"{where}: a JSON {_json_type(r)}, expected an object"
        for key in ("case", "target", "verdict"):
            if not isinstance(r.get(key), str):
                return f"{where}: {key!r} is missing or not a string"
        if r["verdict"] not in {str(v) for v in Verdict}:
            return (
                f"{where} ({r['case']} on {r['target']}): verdict {r['verdict']!r} is not one of {_VERDICTS}"
            )
        mismatch = r.get("mismatch")
        if mismatch is not None and not (
            isinstance(mismatch, dict) and all(k in mismatch for k in ("line", "col", "message"))
        ):
            return f"{where} ({r['case']} on {r['target']}): 'mismatch' needs line, col and message"
        trace = r.get("trace", [])
        if not isinstance(trace, list):
            return f"{where} ({r['case']} on {r['target']}): 'trace' is not a list"
        if mismatch is not None:
            fields = mismatch.get("fields", [])
            if not isinstance(fields, list) or not all(
                isinstance(f, dict) and set(f) == {"name", "expected", "actual"} for f in fields
            ):
                return (
                    f"{where} ({r['case']} on {r['target']}): mismatch fields need name, expected and actual"
                )
        for j, t in enumerate(trace):
            if not (isinstance(t, dict) and all(k in t for k in ("time", "kind", "text"))):
                return f"{where}.trace[{j}]: an entry needs time, kind and text"
            packet = t.get("packet")
            if packet is not None and not (isinstance(packet, str) and _is_hex(packet)):
                return f"{where}.trace[{j}]: 'packet' is not a hex string"
    return None


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


# -- coverage ------------------------------------------------------------------------


@dataclass
class Requirement:
    id: str
    level: str
    section: str
    text: str
    cases: list[str]
    uncovered_reason: str | None = None


@dataclass
class Coverage:
    path: str
    requirements: list[Requirement]
    summary: dict[str, dict[str, int]] = field(default_factory=dict)  # level -> total, covered


def load_coverage(path: str | os.PathLike[str]) -> Coverage:
    """Read the coverage document; any problem raises :class:`ReportError`."""
    name = os.fspath(path)
    try:
        data = json.loads(Path(name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(name, "no such file") from None
    except IsADirectoryError:
        raise ReportError(name, "is a directory, not a coverage file") from None
    except OSError as e:
        raise ReportError(name, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ReportError(name, f"not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ReportError(name, f"not JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict) or data.get("format") != COVERAGE_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise ReportError(name, f"not a coverage document: format is {found!r}, expected {COVERAGE_FORMAT!r}")
    if data.get("version") != COVERAGE_VERSION:
        raise ReportError(
            name, f"coverage version {data.get('version')!r} is not supported (only {COVERAGE_VERSION})"
        )
    raw = data.get("requirements")
    if not isinstance(raw, list):
        raise ReportError(name, "'requirements' is missing or not a list")
    requirements = [_requirement(name, i, r) for i, r in enumerate(raw)]
    summary = data.get("summary")
    if summary is None:
        summary = _summarise(requirements)
    if not isinstance(summary, dict):
        raise ReportError(name, "'summary' is not an object")
    checked: dict[str, dict[str, int]] = {}
    for level, counts in summary.items():
        if not (
            isinstance(counts, dict)
            and all(
                isinstance(counts.get(k), int) and not isinstance(counts.get(k), bool)
                for k in ("total", "covered")
            )
        ):
            raise ReportError(name, f"summary[{level!r}]: needs integer 'total' and 'covered'")
        if not 0 <= counts["covered"] <= counts["total"]:
            raise ReportError(
                name, f"summary[{level!r}]: covered {counts['covered']} is outside 0..{counts['total']}"
            )
        checked[str(level)] = {"total": counts["total"], "covered": counts["covered"]}
    return Coverage(name, requirements, checked)


def _requirement(path: str, i: int, r: Any) -> Requirement:
    where = f"requirements[{i}]"
    if not isinstance(r, dict):
        raise ReportError(path, f"{where}: a JSON {_json_type(r)}, expected an object")
    for key in ("id", "level"):
        if not isinstance(r.get(key), str) or not r[key]:
            raise ReportError(path, f"{where}: {key!r} is missing or not a non-empty string")
    where = f"{where} ({r['id']})"
    for key in ("section", "text"):
        if not isinstance(r.get(key, ""), str):
            raise ReportError(path, f"{where}: {key!r} is not a string")
    cases = r.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, str) for c in cases):
        raise ReportError(path, f"{where}: 'cases' is not a list of strings")
    reason = r.get("uncovered_reason")
    if reason is not None and not isinstance(reason, str):
        raise ReportError(path, f"{where}: 'uncovered_reason' is neither null nor a string")
    return Requirement(r["id"], r["level"], r.get("section", ""), r.get("text", ""), list(cases), reason)


def _summarise(requirements: list[Requirement]) -> dict[str, dict[str, int]]:
    summary: dict[str, dict[str, int]] = {}
    for r in requirements:
        counts = summary.setdefault(r.level, {"total": 0, "covered": 0})
        counts["total"] += 1
        counts["covered"] += bool(r.cases)
    return summary
