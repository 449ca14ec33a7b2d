"""The render benchmark runs on the full 2000 cases x 2 targets (no timing is asserted here:
``python bench/report_render.py --json`` measures it against the 5 s target)."""

from __future__ import annotations

import pytest

from tests.bench.runner import run_bench


def test_bench_renders_2000_cases_on_2_targets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_bench(
        "report_render.py", ["--json", "--cases", "2000", "--repeat", "1"], capsys, monkeypatch
    )
    assert (result["cases"], result["targets"], result["results"]) == (2000, 2, 4000)
    assert result["html_bytes"] > 1_000_000
    for key in ("median_s", "load_s", "model_s", "render_s", "write_s"):
        assert result[key] > 0, key
    assert isinstance(result["target_met"], bool)
