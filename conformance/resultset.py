"""A run's results as one document: JSON on disk, summaries, parity, JUnit XML.

A :class:`ResultSet` holds every :class:`~conformance.results.CaseResult` of one run
(each case on each target, at most once), the environment it ran in, when it started
and how long it took.  It is what the executor writes, what the HTML report reads,
and what CI reads through :meth:`ResultSet.junit_xml`.

The JSON document (``save``/``load``; keys sorted, UTF-8, results in run order)::

    {
      "duration": 12.5,
      "environment": {"kernel": "6.18.0", "python": "3.11.9", "packages": {...}, ...},
      "format": "tcpip-parity/results",
      "results": [ {CaseResult.to_json()}, ... ],
      "started": "2025-11-25T01:02:03+00:00",
      "version": 1
    }

Parity between two targets (:meth:`ResultSet.parity`) follows the corpus's
definition: the share of cases run on both targets that got the same verdict on
both, xfails excluded from the numerator.  A case "runs" on a target unless it was
skipped there; cases skipped on either target are counted apart and left out of the
denominator (they say nothing about agreement).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance.results import CaseResult, Verdict

__all__ = ["FORMAT", "UNEXPECTED", "VERSION", "ResultSet", "environment"]

FORMAT = "tcpip-parity/results"
VERSION = 1

UNEXPECTED = frozenset({Verdict.FAIL, Verdict.ERROR, Verdict.XPASS})
"""The verdicts that need someone's attention (and fail a CI run)."""

DEFAULT_PACKAGES = ("scapy", "dpkt", "tcpip-parity")


def environment(packages: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, Any]:
    """Where a run happens: kernel, OS, machine, Python, package versions, date (UTC),
    which targets this machine can run (and why not), and refstack's default profile.

    A package that is not installed has version ``None``.
    """
    versions: dict[str, str | None] = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "kernel": platform.release(),
        "system": platform.system(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "targets": _targets(),
        "refstack_profile": _refstack_profile(),
        "namespace_sysctls": _namespace_sysctls(),
        "ef_options": "Onload's defaults; cases set their own with --ef= (see each case)",
    }


def _namespace_sysctls() -> dict[str, str]:
    """The sysctls refstack models whose value in a fresh network namespace here differs
    from refstack's default profile (which is meant to be Linux's fresh-namespace
    defaults): ``{key: "namespace VALUE, refstack VALUE"}``.  Empty when no namespace
    can be made (the linux target is unavailable then anyway)."""
    import dataclasses  # noqa: PLC0415

    from conformance.netns import NetNamespace  # noqa: PLC0415 -- needs root
    from refstack.profile import SYSCTL_FIELDS, Profile  # noqa: PLC0415

    values: dict[str, str] = {}

    def read() -> None:
        for short in SYSCTL_FIELDS:
            for prefix in ("ipv4", "core"):
                path = f"/proc/sys/net/{prefix}/{short.replace('.', '/')}"
                try:
                    with open(path, encoding="ascii") as f:
                        values[f"net.{prefix}.{short}"] = " ".join(f.read().split())
                except OSError:
                    continue
                break

    try:
        ns = NetNamespace()
    except OSError:
        return {}
    try:
        ns.start_thread(read, "sysctl-reader").join(timeout=10)
    except OSError:
        return {}
    finally:
        ns.close()
    default = dataclasses.asdict(Profile())
    differing: dict[str, str] = {}
    for key, raw in sorted(values.items()):
        short = key.removeprefix("net.ipv4.").removeprefix("net.core.")
        field, parse = SYSCTL_FIELDS[short]
        try:
            parsed = parse(raw)  # type: ignore[operator]
        except ValueError:
            differing[key] = f"namespace {raw}, refstack {default[field]} (a value refstack does not model)"
            continue
        if parsed != default[field]:
            differing[key] = f"namespace {raw}, refstack {default[field]}"
    return differing


def _targets() -> dict[str, dict[str, Any]]:
    """Each target's availability on this machine, with the reason when it is missing."""
    from conformance.targets import TARGET_NAMES, get_target  # noqa: PLC0415 -- targets import results

    found: dict[str, dict[str, Any]] = {}
    for name in TARGET_NAMES:
        ok, why = get_target(name).available()
        found[name] = {"available": ok, "reason": why}
    return found


def _refstack_profile() -> dict[str, Any]:
    """The refstack target's default profile (cases may change it with sysctls)."""
    import dataclasses  # noqa: PLC0415

    from refstack.profile import Profile  # noqa: PLC0415 -- only the environment needs refstack

    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(Profile()).items()}


@dataclass
class ResultSet:
    """Every result of one run; ``(case, target)`` pairs are unique."""

    results: list[CaseResult]
    environment: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    duration: float = 0.0  # wall-clock seconds of the whole run

    def __post_init__(self) -> None:
        self.results = list(self.results)
        seen: set[tuple[str, str]] = set()
        for r in self.results:
            key = (r.case, r.target)
            if key in seen:
                raise ValueError(f"two results for case {r.case!r} on target {r.target!r}")
            seen.add(key)

    def __iter__(self) -> Iterator[CaseResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def targets(self) -> list[str]:
        """The targets that have results, sorted."""
        return sorted({r.target for r in self.results})

    # -- JSON ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready document (see the module docstring)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "started": self.started.isoformat(),
            "duration": self.duration,
            "environment": self.environment,
            "results": [r.to_json() for r in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultSet:
        """The inverse of :meth:`to_json`; refuses other documents and versions."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a results document (expected format {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ValueError(f"results version {data.get('version')!r} is not supported (only {VERSION})")
        return cls(
            results=[CaseResult.from_json(r) for r in data["results"]],
            environment=dict(data.get("environment", {})),
            started=datetime.fromisoformat(data["started"]),
            duration=float(data.get("duration", 0.0)),
        )

    def dumps(self) -> str:
        """The document as text: keys sorted, non-ASCII kept, one trailing newline."""
        return json.dumps(self.to_json(), sort_keys=True, indent=1, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the document to ``path`` (UTF-8), atomically: readers never see half a file."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(self.dumps())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ResultSet:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    # -- what the run says ----------------------------------------------------------

    def summary(self) -> dict[str, dict[str, int]]:
        """Per target (sorted), the count of every verdict (all six, zeros included)."""
        counts = Counter((r.target, r.verdict) for r in self.results)
        return {t: {str(v): counts[t, v] for v in Verdict} for t in self.targets()}

    def unexpected(self) -> list[CaseResult]:
        """The results that need attention: fail, error and xpass, in run order."""
        return [r for r in self.results if r.verdict in UNEXPECTED]

    def parity(self, a: str = "refstack", b: str = "linux") -> dict[str, Any]:
        """How far targets ``a`` and ``b`` agree, case by case.

        Returns a JSON-ready dict:

        - ``a``, ``b``: the target names; ``cases``: ``{a: n, b: n}`` cases with a result;
        - ``on_both``: cases with a result on both targets;
        - ``skipped``: of those, the cases skipped on either (or both) targets;
        - ``run_on_both``: ``on_both - skipped``, the denominator;
        - ``same``: cases run on both with the same verdict on both;
        - ``same_xfail``: of those, the ones whose shared verdict is xfail;
        - ``agree``: ``same - same_xfail``, the numerator;
        - ``parity``: ``100 * agree / run_on_both`` (a percentage), ``None`` with no case run on both;
        - ``divergent``: cases run on both with different verdicts, sorted by case,
          each ``{"case", "verdicts": {a: v, b: v}, "reasons": {a: r, b: r}}``;
        - ``skipped_cases``: the skipped ones, same shape; ``only``: ``{a: [...], b: [...]}``
          cases with a result on one target only.
        """
        if a == b:
            raise ValueError(f"parity needs two different targets, got {a!r} twice")
        on_a = {r.case: r for r in self.results if r.target == a}
        on_b = {r.case: r for r in self.results if r.target == b}
        common = sorted(on_a.keys() & on_b.keys())

        def pair(case: str) -> dict[str, Any]:
            ra, rb = on_a[case], on_b[case]
            return {
                "case": case,
                "verdicts": {a: str(ra.verdict), b: str(rb.verdict)},
                "reasons": {a: ra.reason, b: rb.reason},
            }

        skipped = [c for c in common if Verdict.SKIP in (on_a[c].verdict, on_b[c].verdict)]
        skipped_set = set(skipped)
        run = [c for c in common if c not in skipped_set]
        same = [c for c in run if on_a[c].verdict == on_b[c].verdict]
        agree = [c for c in same if on_a[c].verdict != Verdict.XFAIL]
        return {
            "a": a,
            "b": b,
            "cases": {a: len(on_a), b: len(on_b)},
            "on_both": len(common),
            "skipped": len(skipped),
            "run_on_both": len(run),
            "same": len(same),
            "same_xfail": len(same) - len(agree),
            "agree": len(agree),
            "parity": 100.0 * len(agree) / len(run) if run else None,
            "divergent": [pair(c) for c in run if on_a[c].verdict != on_b[c].verdict],
            "skipped_cases": [pair(c) for c in skipped],
            "only": {a: sorted(on_a.keys() - on_b.keys()), b: sorted(on_b.keys() - on_a.keys())},
        }

    # -- JUnit XML --------------------------------------------------------------------

    def junit_xml(self, path: str | os.PathLike[str]) -> None:
        """Write JUnit XML: a ``<testsuite>`` per target, a ``<testcase>`` per case.

        pass -> an empty testcase; fail -> ``<failure type="fail">``; xpass ->
        ``<failure type="xpass">`` (an expectation that no longer holds fails CI);
        error -> ``<error>``; skip -> ``<skipped type="skip">``; xfail ->
        ``<skipped type="xfail">`` (as pytest reports it).  Messages carry the reason
        (or the mismatch's message); the element text carries the mismatch, and
        unexpected results add their trace as ``<system-out>``.
        """
        root = ET.Element("testsuites", name="conformance")
        totals: Counter[str] = Counter()
        timestamp = self.started.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        for target in self.targets():
            results = [r for r in self.results if r.target == target]
            counts = Counter(r.verdict for r in results)
            suite_counts = {
                "tests": len(results),
                "failures": counts[Verdict.FAIL] + counts[Verdict.XPASS],
                "errors": counts[Verdict.ERROR],
                "skipped": counts[Verdict.SKIP] + counts[Verdict.XFAIL],
            }
            totals.update(suite_counts)
            attrib = {"name": target, **{k: str(v) for k, v in suite_counts.items()}}
            attrib |= {"time": _seconds(sum(r.duration for r in results)), "timestamp": timestamp}
            suite = ET.SubElement(root, "testsuite", attrib)
            if self.environment:
                props = ET.SubElement(suite, "properties")
                for name, value in _flatten(self.environment):
                    ET.SubElement(props, "property", name=_xml_text(name), value=_xml_text(value))
            for r in results:
                _testcase(suite, r)
        for k in ("tests", "failures", "errors", "skipped"):
            root.set(k, str(totals[k]))
        root.set("time", _seconds(self.duration))
        tree = ET.ElementTree(root)
        ET.indent(tree)
        tree.write(path, encoding="utf-8", xml_declaration=True)


# Characters XML 1.0 cannot carry, even escaped: shown as \xNN instead.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    return _XML_INVALID.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def _seconds(t: float) -> str:
    return f"{t:.6f}"


def _flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key in sorted(data):
        value = data[key]
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", "" if value is None else str(value)


def _testcase(suite: ET.Element, r: CaseResult) -> None:
    case = ET.SubElement(
        suite, "testcase", name=_xml_text(r.case), classname=r.target, time=_seconds(r.duration)
    )
    message = r.reason or (r.mismatch.message if r.mismatch else "") or str(r.verdict)
    kind = {
        Verdict.FAIL: "failure",
        Verdict.XPASS: "failure",
        Verdict.ERROR: "error",
        Verdict.SKIP: "skipped",
        Verdict.XFAIL: "skipped",
    }.get(r.verdict)
    if kind is None:  # pass
        return
    element = ET.SubElement(case, kind, message=_xml_text(message), type=str(r.verdict))
    details = _mismatch_text(r)
    if details:
        element.text = _xml_text(details)
    if r.verdict in UNEXPECTED and r.trace:
        out = ET.SubElement(case, "system-out")
        out.text = _xml_text(
            "\n".join(
                f"{t.time:12.6f} {t.kind:<5} {t.text}" + (f"  (line {t.line})" if t.line else "")
                for t in r.trace
            )
        )


def _mismatch_text(r: CaseResult) -> str:
    m = r.mismatch
    if m is None:
        return ""
    lines = [f"{r.case}:{m.line}:{m.col}: {m.message}"]
    if m.expected is not None:
        lines.append(f"  expected: {m.expected}")
    if m.actual is not None:
        lines.append(f"  actual:   {m.actual}")
    lines.extend(f"  {f.name}: expected {f.expected}, got {f.actual}" for f in m.fields)
    return "\n".join(lines)
