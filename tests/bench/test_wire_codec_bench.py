"""The wire benchmark still runs and compares equal work (no timing is asserted here)."""

from __future__ import annotations

import pytest

from tests.bench.runner import run_bench


def test_bench_prints_one_json_object(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_bench("wire_codec.py", ["--json", "--seconds", "0.02"], capsys, monkeypatch)
    assert result["segment_bytes"] == 20 + 48 + 1000
    for key in ("ours_ns", "scapy_ns", "dpkt_ns", "vs_scapy", "vs_dpkt"):
        assert result[key] > 0, key
    assert result["vs_scapy"] == round(result["scapy_ns"] / result["ours_ns"], 2)
