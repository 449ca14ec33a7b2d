"""The main job: run the corpus on every target, write the parity report.

``python -m reports.job`` (what ``tox -e conformance`` runs) does, in order:

1. ``python -m conformance coverage`` into ``OUT/coverage.json``;
2. ``pytest rfc_cases`` on every target (refstack always; linux where this machine can
   create a network namespace and a TUN device, otherwise its cases are skipped with
   the reason, which the report shows), in parallel with pytest-xdist, writing
   ``OUT/results.json``, ``OUT/junit.xml`` and one pcap per case and target in
   ``OUT/pcaps/``;
3. ``python -m reports render`` into ``OUT/parity.html`` (with ``--baseline`` when
   given, or when a previous run left ``OUT/results.json``, kept as
   ``OUT/previous-results.json``);
4. prints where the report is and one line of summary.

Exit status: 0 when no result is unexpected (fail, error, xpass), 1 otherwise, 2 when
a step could not run at all (pytest crashed, the renderer failed, bad arguments).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance.resultset import ResultSet

__all__ = ["main"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR = 0, 1, 2


def _run(step: str, command: list[str]) -> int:
    print(f"[{step}] {' '.join(command)}", flush=True)
    return subprocess.call(command)


def _summary(results: ResultSet) -> str:
    parts = []
    for target, counts in results.summary().items():
        shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        parts.append(f"{target}: {shown or 'nothing'}")
    if {"refstack", "linux"} <= set(results.targets()):
        parity = results.parity("refstack", "linux")
        if parity["parity"] is not None:
            parts.append(f"parity {parity['parity']:.1f}% ({parity['agree']}/{parity['run_on_both']})")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.job", description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", default=["rfc_cases"], help="corpus paths (default rfc_cases)")
    parser.add_argument("--out", default="reports/out", help="output directory (default reports/out)")
    parser.add_argument(
        "--target", action="append", dest="targets", help="targets to run (default: refstack and linux)"
    )
    parser.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers (default auto)")
    parser.add_argument("--baseline", help="a previous results.json to compare with")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path, coverage_path = out / "results.json", out / "coverage.json"
    html_path, pcaps = out / "parity.html", out / "pcaps"
    baseline = args.baseline
    if baseline is None and results_path.exists():
        previous = out / "previous-results.json"
        shutil.copyfile(results_path, previous)
        baseline = str(previous)
    results_path.unlink(missing_ok=True)
    shutil.rmtree(pcaps, ignore_errors=True)

    python = sys.executable
    roots = [c for c in args.cases if Path(c).is_dir()]
    for root in roots[:1]:  # coverage is a property of the corpus root
        if _run("coverage", [python, "-m", "conformance", "coverage", root, "-o", str(coverage_path)]):
            return EXIT_ERROR
    targets = args.targets or ["refstack", "linux"]
    command = [python, "-m", "pytest", *args.cases, "-p", "no:cacheprovider", "-q", "-rfE"]
    command += ["-n", str(args.workers)] if args.workers not in ("0", "1") else []
    for target in targets:
        command += ["--target", target]
    command += ["--conformance-json", str(results_path), "--conformance-pcap-dir", str(pcaps)]
    status = _run("cases", command)
    if status not in (0, 1) or not results_path.exists():
        print(f"the case run did not finish (pytest exit status {status})", file=sys.stderr)
        return EXIT_ERROR

    render = [python, "-m", "reports", "render", str(results_path), "-o", str(html_path)]
    render += ["--pcap-dir", str(pcaps)]
    if coverage_path.exists():
        render += ["--coverage", str(coverage_path)]
    if baseline is not None and Path(baseline).exists():
        render += ["--baseline", baseline]
    if _run("report", render):
        print("the report could not be rendered", file=sys.stderr)
        return EXIT_ERROR

    results = ResultSet.load(results_path)
    results.junit_xml(out / "junit.xml")
    unexpected = results.unexpected()
    print(f"report: {os.path.abspath(html_path)}")
    print(f"summary: {_summary(results)}; {len(unexpected)} unexpected")
    for r in unexpected[:20]:
        print(f"  {r.verdict.value.upper():5} {r.case} [{r.target}]: {r.reason}")
    return EXIT_UNEXPECTED if unexpected else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
