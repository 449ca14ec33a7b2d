"""The bulk benchmark still runs and checks its data (no timing is asserted here)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bulk_memorylink.py"


def test_bulk_bench_moves_data_byte_exact(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--json", "--megabytes", "0.3"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(BENCH), run_name="__main__")
    assert done.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sha256_match"] is True and result["mb_per_s"] > 0
