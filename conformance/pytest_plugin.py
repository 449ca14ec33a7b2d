"""The pytest plugin: ``.pkt`` scripts as test items, one per target.

``pytest rfc_cases`` collects every ``.pkt`` file as one item per target
(``name.pkt::refstack``, ``name.pkt::linux``).  ``--target NAME`` (repeatable)
chooses the targets; by default refstack, plus linux when this machine can create
namespaces (an unavailable target's items skip with the reason).  A case listed in
the target's expectations file (``expectations/<target>.toml`` in the nearest
directory above the script that has one) turns a failure into an xfail; a listed
case that passes is an xpass, reported as a failure so the file gets updated.
``--conformance-json FILE`` writes every result as one JSON document and
``--conformance-pcap-dir DIR`` one pcap per case and target.

Registered as a ``pytest11`` entry point in pyproject.toml.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .expectations import Expectations, apply, nearest
from .pcap import pcap_name, write_pcap
from .results import CaseResult, Verdict
from .resultset import ResultSet, environment
from .run.executor import run_case
from .targets import TARGET_NAMES, get_target

_PROPERTY = "conformance_result"
_STARTED = pytest.StashKey[tuple[datetime, float]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "packetdrill-style conformance cases")
    group.addoption(
        "--target",
        action="append",
        dest="conformance_targets",
        choices=TARGET_NAMES,
        help="run .pkt cases on this target (repeatable; default: refstack, plus linux when available)",
    )
    group.addoption("--conformance-json", metavar="FILE", help="write the case results as JSON")
    group.addoption("--conformance-pcap-dir", metavar="DIR", help="write one pcap per case and target")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = (datetime.now(UTC), time.monotonic())


def _targets(config: pytest.Config) -> list[str]:
    chosen: list[str] | None = config.getoption("conformance_targets")
    if chosen:
        return list(dict.fromkeys(chosen))
    names = ["refstack"]
    if get_target("linux").available()[0]:
        names.append("linux")
    return names


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".pkt":
        return PktFile.from_parent(parent, path=file_path)
    return None


class PktFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        for target in _targets(self.config):
            yield PktItem.from_parent(self, name=target, target=target)


class CaseFailedError(Exception):
    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.reason)
        self.result = result


def _expectations_for(script: Path, target: str) -> Expectations | None:
    return nearest(script, target)


class PktItem(pytest.Item):
    def __init__(self, *, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.result: CaseResult | None = None

    def runtest(self) -> None:
        target = get_target(self.target)
        ok, why = target.available()
        if not ok:
            pytest.skip(f"{self.target} unavailable: {why}")
        result = run_case(self.path, target)
        expectations = _expectations_for(self.path, self.target)
        if expectations is not None:
            result = apply(result, expectations)
        self.result = result
        # Reports carry user_properties from xdist workers to the controller.
        self.user_properties.append((_PROPERTY, json.dumps(result.to_json())))
        pcap_dir = self.config.getoption("conformance_pcap_dir")
        if pcap_dir:
            Path(pcap_dir).mkdir(parents=True, exist_ok=True)
            write_pcap(result, Path(pcap_dir) / pcap_name(str(self.path), self.target))
        if result.verdict is Verdict.SKIP:
            pytest.skip(result.reason)
        if result.verdict is Verdict.XFAIL:
            pytest.xfail(result.reason)
        if result.verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.XPASS):
            raise CaseFailedError(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, CaseFailedError):
            return str(super().repr_failure(excinfo))
        result = excinfo.value.result
        lines = [f"{result.verdict.value}: {result.case} on {result.target}: {result.reason}"]
        mismatch = result.mismatch
        if mismatch is not None:
            lines.append(f"  at {result.case}:{mismatch.line}:{mismatch.col}")
            if mismatch.expected:
                lines.append(f"  expected: {mismatch.expected}")
            if mismatch.actual:
                lines.append(f"  actual:   {mismatch.actual}")
            lines += [f"    {d.name}: expected {d.expected}, got {d.actual}" for d in mismatch.fields]
        lines.append("  trace:")
        lines += [f"    {e.time:10.6f} {e.kind:5} {e.text}" for e in result.trace[-12:]]
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, self.name


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Gather results on the controller (every report passes through it)."""
    for name, value in report.user_properties:
        if name == _PROPERTY and report.when == "call":
            _collected.append(CaseResult.from_json(json.loads(str(value))))


_collected: list[CaseResult] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):  # an xdist worker: the controller writes the file
        return
    path = config.getoption("conformance_json")
    results = _collected
    if path and results:
        started, wall = config.stash[_STARTED]
        ResultSet(results, environment(), started, time.monotonic() - wall).save(path)
