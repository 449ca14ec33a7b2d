"""What the report shows, computed once from the inputs: the template only lays it out.

:func:`build_report` merges the runs (one results file per target, typically) into
one :class:`~conformance.resultset.ResultSet`, then works out the summary, the
parity of every pair of targets, the matrix (cases grouped by RFC and topic, the
ones that need attention first), each case's details, what changed since a
baseline run and the requirement coverage.

Cases are keyed by their path under the corpus root: everything after the last
``rfc_cases/`` component (so ``/abs/rfc_cases/rfc9293/x.pkt``, ``rfc_cases/rfc9293/x.pkt``
and the coverage document's ``rfc9293/x.pkt`` are the same case), otherwise the path
relative to the current directory when it lies under it, otherwise the name as given.
The case's topic is the directory part of that key (``rfc9293/segment_arrival/listen``),
its RFC the first component.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from conformance.pcap import pcap_name
from conformance.results import CaseResult, TraceEntry, Verdict
from conformance.resultset import UNEXPECTED, ResultSet

from .casefile import CaseFile, read_case_file
from .inputs import Coverage, ReportError, Run

__all__ = [
    "MAX_TRACE",
    "VERDICT_ORDER",
    "BaselineDiff",
    "Report",
    "Row",
    "build_report",
    "case_key",
    "merge_runs",
]

VERDICT_ORDER = ("pass", "fail", "xfail", "xpass", "skip", "error")
"""The order of verdicts everywhere in the report."""

_WORST_FIRST = ("error", "fail", "xpass", "xfail", "skip", "pass")

MAX_TRACE = 400
"""Trace entries shown per target and case; the rest is in the pcap."""

CORPUS_DIR = "rfc_cases"


def case_key(case: str, cwd: str | None = None) -> str:
    """The case's path under the corpus root (see the module docstring)."""
    path, sep, rest = case.partition("::")
    path = path.replace("\\", "/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if CORPUS_DIR in parts[:-1]:
        last = len(parts) - 1 - parts[::-1].index(CORPUS_DIR)
        parts = parts[last + 1 :]
    elif path.startswith("/"):
        absolute = PurePosixPath("/" + "/".join(parts))
        try:
            parts = list(absolute.relative_to(PurePosixPath(cwd or os.getcwd())).parts)
        except ValueError:
            return str(absolute) + sep + rest
    return "/".join(parts) + sep + rest


def topic_of(key: str) -> str:
    parent = str(PurePosixPath(key.partition("::")[0]).parent)
    return "" if parent == "." else parent


@dataclass
class Cell:
    """One case on one target."""

    target: str
    result: CaseResult
    raw_case: str  # the case string as the run wrote it (the pcap's name comes from it)
    pcap: str | None = None  # relative URL of the pcap, when it exists
    trace: list[TraceEntry] = field(default_factory=list)  # at most MAX_TRACE entries
    trace_cut: int = 0  # entries left out

    @property
    def verdict(self) -> str:
        return str(self.result.verdict)


@dataclass
class Row:
    index: int
    key: str
    topic: str
    cells: dict[str, Cell]  # by target; a target without a result is absent
    divergent: bool
    unexpected: bool
    script: CaseFile | None = None
    marks: dict[int, list[str]] = field(default_factory=dict)  # script line -> targets failing there
    change: str = ""  # "new", or "before -> after" per target, against the baseline

    @property
    def name(self) -> str:
        return PurePosixPath(self.key.partition("::")[0]).name + (
            "::" + self.key.partition("::")[2] if "::" in self.key else ""
        )

    @property
    def verdicts(self) -> list[str]:
        return sorted({c.verdict for c in self.cells.values()}, key=VERDICT_ORDER.index)

    @property
    def rank(self) -> int:
        """0: divergent and unexpected, 1: divergent, 2: unexpected, 3: the rest."""
        return (0 if self.divergent else 2) + (0 if self.unexpected else 1)

    @property
    def search_text(self) -> str:
        words = [self.key, *(c.result.reason for c in self.cells.values())]
        if self.script is not None:
            words += self.script.reqs
        return " ".join(w for w in words if w).lower()


@dataclass
class Group:
    topic: str
    rows: list[Row]

    @property
    def divergent(self) -> int:
        return sum(r.divergent for r in self.rows)

    @property
    def unexpected(self) -> int:
        return sum(r.unexpected for r in self.rows)


@dataclass
class Known:
    """Results that one expectation explains: a target's xfails (or xpasses) with one reason."""

    target: str
    verdict: str
    reason: str
    cases: list[tuple[str, int]]  # key, matrix row


@dataclass
class Change:
    key: str
    target: str
    before: str | None
    after: str | None
    row: int | None  # the matrix row of the case, when it is in this run


@dataclass
class BaselineDiff:
    path: str
    started: datetime
    new_failures: list[Change]
    fixed: list[Change]
    new_cases: list[Change]  # one per case and target
    removed_cases: list[Change]
    changes: list[Change]  # every verdict change of a case and target present in both runs
    summary: dict[str, dict[str, int]]  # the baseline's counts per target and verdict


@dataclass
class Parity:
    a: str
    b: str
    data: dict[str, Any]  # ResultSet.parity()

    @property
    def percent(self) -> str:
        value = self.data["parity"]
        return "n/a" if value is None else f"{value:.1f}"


@dataclass
class RequirementView:
    id: str
    level: str
    section: str
    text: str
    cases: list[tuple[str, int | None]]  # key, matrix row
    uncovered_reason: str | None
    status: dict[str, str]  # target -> worst verdict of its cases in this run ("" if none ran)


@dataclass
class CoverageView:
    path: str
    summary: list[tuple[str, int, int, float]]  # level, covered, total, percent
    requirements: list[RequirementView]


@dataclass
class Report:
    runs: list[Run]
    targets: list[str]
    results: ResultSet
    summary: dict[str, dict[str, int]]
    parities: list[Parity]
    groups: list[Group]
    rows: list[Row]
    topics: list[tuple[str, int, int]]  # topic (an RFC or an RFC/topic), cases, depth
    verdict_counts: dict[str, int]  # cases with this verdict on some target
    known: list[Known]  # the expectations at work, most cases first
    environment: list[tuple[str, list[str]]]  # label, one value per run
    generated: datetime
    started: datetime | None
    duration: float
    baseline: BaselineDiff | None = None
    coverage: CoverageView | None = None
    generator: str = ""

    @property
    def divergent(self) -> int:
        return sum(r.divergent for r in self.rows)

    @property
    def unexpected(self) -> int:
        return sum(r.unexpected for r in self.rows)


def merge_runs(runs: list[Run], cwd: str | None = None) -> tuple[ResultSet, dict[tuple[str, str], str]]:
    """One result set of every run's results, cases renamed to their keys.

    Returns it and, for every ``(key, target)``, the case string as its run wrote it.
    Two results for one case on one target are an error naming both files.
    """
    where: dict[tuple[str, str], str] = {}
    raw: dict[tuple[str, str], str] = {}
    merged: list[CaseResult] = []
    for run in runs:
        for r in run.results:
            key = case_key(r.case, cwd)
            if (key, r.target) in where:
                other = where[key, r.target]
                also = "also in this file" if other == run.path else f"also in {other}"
                raise ReportError(run.path, f"case {r.case!r} on target {r.target!r} is {also}")
            where[key, r.target] = run.path
            raw[key, r.target] = r.case
            merged.append(_renamed(r, key))
    started = [run.results.started for run in runs]
    environment = runs[0].results.environment if len(runs) == 1 else {}
    result_set = ResultSet(
        merged,
        environment,
        min(started) if started else datetime.now(UTC),
        sum(run.results.duration for run in runs),
    )
    return result_set, raw


def _renamed(r: CaseResult, key: str) -> CaseResult:
    if r.case == key:
        return r
    return CaseResult(
        key, r.target, r.verdict, r.reason, r.duration, r.script_time, r.mismatch, list(r.trace)
    )


def build_report(
    runs: list[Run],
    *,
    output: str | os.PathLike[str],
    baseline: Run | None = None,
    coverage: Coverage | None = None,
    pcap_dir: str | os.PathLike[str] | None = None,
    cwd: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Everything the template shows.  ``output`` is where the HTML will be written
    (pcap links are relative to it)."""
    results, raw = merge_runs(runs, cwd)
    targets = _ordered_targets(results.targets())
    pcaps = _pcap_links(pcap_dir, output)

    by_key: dict[str, dict[str, CaseResult]] = {}
    for r in results:
        by_key.setdefault(r.case, {})[r.target] = r
    rows: list[Row] = []
    for key in sorted(by_key):
        cells: dict[str, Cell] = {}
        for target in targets:
            found = by_key[key].get(target)
            if found is None:
                continue
            name = pcap_name(raw[key, target], target)
            cells[target] = Cell(
                target,
                found,
                raw[key, target],
                pcaps.get(name),
                found.trace[:MAX_TRACE],
                max(0, len(found.trace) - MAX_TRACE),
            )
        ran = [c.result.verdict for c in cells.values() if c.result.verdict is not Verdict.SKIP]
        row = Row(
            index=0,
            key=key,
            topic=topic_of(key),
            cells=cells,
            divergent=len(ran) >= 2 and len(set(ran)) > 1,
            unexpected=any(c.result.verdict in UNEXPECTED for c in cells.values()),
        )
        candidates = list(dict.fromkeys(c.raw_case for c in cells.values()))
        if not key.startswith("/"):
            candidates.append(f"{CORPUS_DIR}/{key}")
        row.script = read_case_file(candidates)
        for cell in cells.values():
            m = cell.result.mismatch
            if m is not None and m.line > 0:
                row.marks.setdefault(m.line, []).append(cell.target)
        rows.append(row)

    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.topic, []).append(row)
    ordered = [Group(topic, sorted(g, key=lambda r: (r.rank, r.key))) for topic, g in groups.items()]
    ordered.sort(key=lambda g: (min(r.rank for r in g.rows), g.topic))
    rows = [row for g in ordered for row in g.rows]
    for i, row in enumerate(rows):
        row.index = i

    verdict_counts = {v: sum(v in r.verdicts for r in rows) for v in VERDICT_ORDER}
    summary = results.summary()
    report = Report(
        runs=runs,
        targets=targets,
        results=results,
        summary={t: summary[t] for t in targets},
        parities=_parities(results, targets),
        groups=ordered,
        rows=rows,
        topics=_topics(rows),
        verdict_counts=verdict_counts,
        known=_known(rows, targets),
        environment=_environment(runs),
        generated=now or datetime.now(UTC),
        started=min((run.results.started for run in runs), default=None),
        duration=sum(run.results.duration for run in runs),
        generator=f"python -m reports, Python {sys.version.split()[0]}",
    )
    if baseline is not None:
        report.baseline = _diff(baseline, report, cwd)
    if coverage is not None:
        report.coverage = _coverage(coverage, report)
    return report


def _known(rows: list[Row], targets: list[str]) -> list[Known]:
    groups: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
    for row in rows:
        for cell in row.cells.values():
            if cell.verdict in ("xfail", "xpass"):
                groups.setdefault((cell.target, cell.verdict, cell.result.reason), []).append(
                    (row.key, row.index)
                )
    known = [Known(t, v, reason, sorted(cases)) for (t, v, reason), cases in groups.items()]
    known.sort(key=lambda k: (targets.index(k.target), k.verdict != "xpass", -len(k.cases), k.reason))
    return known


def _ordered_targets(targets: list[str]) -> list[str]:
    """refstack first, then linux, then the others by name."""
    first = [t for t in ("refstack", "linux") if t in targets]
    return first + sorted(t for t in targets if t not in first)


def _parities(results: ResultSet, targets: list[str]) -> list[Parity]:
    if "refstack" in targets:
        pairs = [("refstack", t) for t in targets if t != "refstack"]
    else:
        pairs = list(itertools.combinations(targets, 2))
    return [Parity(a, b, results.parity(a, b)) for a, b in pairs]


def _pcap_links(pcap_dir: str | os.PathLike[str] | None, output: str | os.PathLike[str]) -> dict[str, str]:
    """File name -> URL relative to the output's directory, for every pcap in ``pcap_dir``."""
    if pcap_dir is None:
        return {}
    directory = Path(pcap_dir)
    out_dir = Path(output).resolve().parent
    try:
        names = [e.name for e in os.scandir(directory) if e.name.endswith(".pcap") and e.is_file()]
    except OSError as e:
        raise ReportError(os.fspath(pcap_dir), f"cannot list the pcap directory: {e.strerror or e}") from None
    prefix = Path(os.path.relpath(directory.resolve(), out_dir)).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    return {name: quote(prefix + name) for name in names}


def _topics(rows: list[Row]) -> list[tuple[str, int, int]]:
    counts: Counter[str] = Counter()
    for row in rows:
        parts = row.topic.split("/") if row.topic else []
        for depth in range(1, len(parts) + 1):
            counts["/".join(parts[:depth])] += 1
    return [(t, n, t.count("/")) for t, n in sorted(counts.items())]


# -- environment ------------------------------------------------------------------

_KNOWN = (
    ("kernel", "Kernel"),
    ("system", "System"),
    ("machine", "Machine"),
    ("python", "Python"),
    ("python_implementation", "Python implementation"),
    ("packages", "Packages"),
    ("date", "Recorded"),
)
_GROUPS = (
    (
        "Namespace sysctls (differing from defaults)",
        ("sysctls", "namespace_sysctls", "sysctl", "netns_sysctls"),
    ),
    ("refstack profile", ("profile", "refstack_profile")),
    ("EF_* options", ("ef_options", "onload_options", "ef", "EF")),
)


def _environment(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """Label -> one text per run; known keys first, then whatever else the runs recorded."""
    rows: list[tuple[str, list[str]]] = [
        (
            "Targets with results",
            [", ".join(_ordered_targets(run.results.targets())) or "none" for run in runs],
        ),
        ("Started", [_when(run.results.started) for run in runs]),
        ("Duration", [_seconds(run.results.duration) for run in runs]),
    ]
    envs = [run.results.environment for run in runs]
    used: set[str] = set()
    for key, label in _KNOWN:
        if any(key in e for e in envs):
            rows.append((label, [_text(e.get(key)) for e in envs]))
            used.add(key)
    if any("targets" in e for e in envs):
        rows.append(("Targets on this machine", [_availability(e.get("targets")) for e in envs]))
        used.add("targets")
    for label, keys in _GROUPS:
        present = [k for k in keys if any(k in e for e in envs)]
        if present:
            rows.append((label, [_text(next((e[k] for k in present if k in e), None), " = ") for e in envs]))
            used.update(present)
    ef = sorted({k for e in envs for k in e if k.startswith("EF_") and k not in used})
    if ef:
        rows.append(("EF_* options", ["\n".join(f"{k} = {e[k]}" for k in ef if k in e) or "—" for e in envs]))
        used.update(ef)
    for key in sorted({k for e in envs for k in e} - used):
        rows.append((key, [_text(e.get(key)) for e in envs]))
    return rows


def _availability(targets: Any) -> str:
    """``{"linux": {"available": false, "reason": "..."}}`` as ``linux: unavailable (...)``."""
    if not isinstance(targets, dict):
        return _text(targets)
    lines = []
    for name, info in sorted(targets.items()):
        if isinstance(info, dict) and "available" in info:
            why = f" ({info['reason']})" if info.get("reason") else ""
            lines.append(f"{name}: {'available' if info['available'] else 'unavailable'}{why}")
        else:
            lines.append(f"{name}: {_text(info)}")
    return "\n".join(lines) or "none"


def _text(value: Any, sep: str = " ") -> str:
    """A JSON value as text: an object one ``key<sep>value`` a line, a list comma-separated."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        if not value:
            return "none"
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "\n".join(
            f"{k}{sep}{_text(v)}" if not isinstance(v, dict) else f"{k}: {_text(v, sep)}" for k, v in items
        )
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "none"
    return str(value)


def _when(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    minutes, seconds = divmod(round(s), 60)
    return f"{minutes} min {seconds:02d} s"


# -- baseline -----------------------------------------------------------------------


def _diff(baseline: Run, report: Report, cwd: str | None) -> BaselineDiff:
    old = {(case_key(r.case, cwd), r.target): str(r.verdict) for r in baseline.results}
    new = {(r.case, r.target): str(r.verdict) for r in report.results}
    rows = {row.key: row.index for row in report.rows}
    old_cases = {k for k, _ in old}
    new_cases_set = {k for k, _ in new}
    unexpected = {str(v) for v in UNEXPECTED}
    changes: list[Change] = []
    new_failures: list[Change] = []
    fixed: list[Change] = []
    for (key, target), after in sorted(new.items()):
        before = old.get((key, target))
        if before is None or before == after:
            continue
        change = Change(key, target, before, after, rows.get(key))
        changes.append(change)
        if after in unexpected and before not in unexpected:
            new_failures.append(change)
        elif before in unexpected and after in ("pass", "xfail"):
            fixed.append(change)
    new_cases = [
        Change(k, t, None, v, rows.get(k)) for (k, t), v in sorted(new.items()) if k not in old_cases
    ]
    removed = [Change(k, t, v, None, None) for (k, t), v in sorted(old.items()) if k not in new_cases_set]
    moved: dict[str, list[Change]] = {}
    for c in changes:
        moved.setdefault(c.key, []).append(c)
    for row in report.rows:
        if row.key not in old_cases:
            row.change = "new since the baseline"
        elif row.key in moved:
            row.change = "; ".join(f"{c.target}: {c.before} → {c.after}" for c in moved[row.key])
    summary = baseline.results.summary()
    return BaselineDiff(
        baseline.path, baseline.results.started, new_failures, fixed, new_cases, removed, changes, summary
    )


# -- coverage -----------------------------------------------------------------------


def _coverage(coverage: Coverage, report: Report) -> CoverageView:
    rows = {row.key: row for row in report.rows}
    levels = sorted(coverage.summary, key=lambda lv: ({"MUST": 0, "SHLD": 1, "MAY": 2}.get(lv, 3), lv))
    summary = []
    for level in levels:
        counts = coverage.summary[level]
        total, covered = counts["total"], counts["covered"]
        summary.append((level, covered, total, 100.0 * covered / total if total else 0.0))
    requirements = []
    for req in coverage.requirements:
        keys = [case_key(c) for c in req.cases]
        status: dict[str, str] = {}
        for target in report.targets:
            seen = {rows[k].cells[target].verdict for k in keys if k in rows and target in rows[k].cells}
            status[target] = next((v for v in _WORST_FIRST if v in seen), "")
        requirements.append(
            RequirementView(
                req.id,
                req.level,
                req.section,
                req.text,
                [(k, rows[k].index if k in rows else None) for k in keys],
                req.uncovered_reason,
                status,
            )
        )
    return CoverageView(coverage.path, summary, requirements)
