"""The bulk benchmark still runs and checks its data (no timing is asserted here)."""

from __future__ import annotations

import pytest

from tests.bench.runner import run_bench


def test_bulk_bench_moves_data_byte_exact(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_bench("bulk_memorylink.py", ["--json", "--megabytes", "0.3"], capsys, monkeypatch)
    assert result["sha256_match"] is True and result["mb_per_s"] > 0
