"""Run a benchmark script as ``python bench/NAME.py ARGS`` would, in process."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(
    name: str, args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Run ``bench/<name>`` with ``args``; it must exit 0 and print one JSON object."""
    script = BENCH / name
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result
