"""Fixtures of the report's tests: results files written from synthetic runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conformance.results import CaseResult, FieldDiff, Mismatch, TraceEntry, Verdict
from conformance.resultset import ResultSet

STARTED = datetime(2026, 11, 25, 1, 2, 3, tzinfo=UTC)


def result(
    case: str,
    target: str,
    verdict: Verdict | str,
    reason: str = "",
    *,
    line: int = 0,
    fields: list[FieldDiff] | None = None,
    trace: list[TraceEntry] | None = None,
) -> CaseResult:
    """A result; ``line`` > 0 gives it a mismatch there."""
    mismatch = None
    if line:
        mismatch = Mismatch(line, 1, "bad outbound packet", "> S. 0:0(0) ack 1", "> R 0:0(0)", fields or [])
    return CaseResult(case, target, Verdict(verdict), reason, 0.25, 1.5, mismatch, trace or [])


def results_set(results: list[CaseResult], **environment: object) -> ResultSet:
    return ResultSet(results, dict(environment), STARTED, 12.5)


@pytest.fixture
def save(tmp_path: Path) -> Callable[..., Path]:
    """Write a result set as ``tmp_path/<name>``; returns the path."""

    def write(rs: ResultSet, name: str = "results.json") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        rs.save(path)
        return path

    return write
