"""The wire benchmark still runs and compares equal work (no timing is asserted here)."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "wire_codec.py"


def test_bench_prints_one_json_object(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", [str(BENCH), "--json", "--seconds", "0.02"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(BENCH), run_name="__main__")
    assert done.value.code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["segment_bytes"] == 20 + 48 + 1000
    for key in ("ours_ns", "scapy_ns", "dpkt_ns", "vs_scapy", "vs_dpkt"):
        assert result[key] > 0, key
    assert result["vs_scapy"] == round(result["scapy_ns"] / result["ours_ns"], 2)
