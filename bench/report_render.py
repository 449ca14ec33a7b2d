"""Parity report render time: 2000 cases x 2 targets, from JSON files to the HTML page.

The run is synthetic (:func:`reports.synthetic.synthetic_run`: every verdict, traces
of about ten entries, a mismatch on each failure) with its ``.pkt`` scripts written to
a temporary directory, so the report reads and shows every script as it does on the
real corpus.  One iteration is what ``python -m reports render`` does: load the two
results files (one per target), merge, build the model, render and write the HTML.

Prints the median wall time of ``--repeat`` iterations, the phases of the last one,
the HTML's size, and ``target_met`` (the issue asks for under 5 s).  Usage:
``python bench/report_render.py [--json] [--cases N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:
    import reports
except ImportError:  # not installed as a package yet: run from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import reports

from conformance.resultset import ResultSet
from reports.model import build_report
from reports.render import render_html, write_html
from reports.synthetic import synthetic_run, write_scripts

TARGET_SECONDS = 5.0


def one_render(files: list[Path], output: Path) -> dict[str, float]:
    """Load, build, render and write once; seconds per phase."""
    t0 = time.perf_counter()
    runs = [reports.load_run(f) for f in files]
    t1 = time.perf_counter()
    report = build_report(runs, output=output)
    t2 = time.perf_counter()
    text = render_html(report)
    t3 = time.perf_counter()
    write_html(text, output)
    t4 = time.perf_counter()
    return {
        "load_s": t1 - t0,
        "model_s": t2 - t1,
        "render_s": t3 - t2,
        "write_s": t4 - t3,
        "total_s": t4 - t0,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--cases", type=int, default=2000, help="cases per target (default 2000)")
    ap.add_argument("--repeat", type=int, default=3, help="iterations (default 3)")
    args = ap.parse_args(argv)
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        write_scripts(root, args.cases)
        run = synthetic_run(args.cases)
        files = []
        for target in run.targets():
            path = root / f"{target}.json"
            ResultSet([r for r in run if r.target == target], run.environment, run.started, 1.0).save(path)
            files.append(path)
        output = root / "out" / "parity.html"
        os.chdir(root)  # the cases name their scripts relative to the run's directory
        try:
            phases = [one_render(files, output) for _ in range(max(1, args.repeat))]
        finally:
            os.chdir(cwd)
        size = output.stat().st_size
        json_bytes = sum(f.stat().st_size for f in files)
    median = statistics.median(p["total_s"] for p in phases)
    results: dict[str, Any] = {
        "cases": args.cases,
        "targets": 2,
        "results": 2 * args.cases,
        "python": platform.python_version(),
        "median_s": round(median, 3),
        **{k: round(v, 3) for k, v in phases[-1].items()},
        "html_bytes": size,
        "json_bytes": json_bytes,
        "target_s": TARGET_SECONDS,
        "target_met": median < TARGET_SECONDS,
    }
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
