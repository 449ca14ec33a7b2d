"""The main job (``python -m reports.job``, what ``tox -e conformance`` runs): it runs a
corpus, writes the report and the results, and exits non-zero only on unexpected results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PASSING = """\
// RFC 768: a datagram to a bound socket is delivered.
// req: RFC768-1
0    socket(..., SOCK_DGRAM, IPPROTO_UDP) = 3
+0   bind(3, ..., ...) = 0
+0   < udp(10)
+0   read(3, ..., 100) = 10
"""

FAILING = PASSING.replace("read(3, ..., 100) = 10", "read(3, ..., 100) = 11")


def run_job(corpus: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reports.job", str(corpus), "--out", str(out), "-n", "0"]
    command += ["--target", "refstack"]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)


def test_a_clean_run_writes_everything_and_exits_zero(tmp_path: Path) -> None:
    corpus = tmp_path / "cases"
    corpus.mkdir()
    (corpus / "udp.pkt").write_text(PASSING)
    out = tmp_path / "out"
    done = run_job(corpus, out)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("parity.html", "results.json", "junit.xml", "coverage.json"):
        assert (out / name).is_file(), name
    assert list((out / "pcaps").glob("*.pcap"))
    assert f"report: {out.resolve() / 'parity.html'}" in done.stdout
    assert "refstack: 1 pass; 0 unexpected" in done.stdout


def test_an_unexpected_result_exits_one_and_still_writes_the_report(tmp_path: Path) -> None:
    corpus = tmp_path / "cases"
    corpus.mkdir()
    (corpus / "udp.pkt").write_text(FAILING)
    out = tmp_path / "out"
    done = run_job(corpus, out)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (out / "parity.html").is_file()
    results = json.loads((out / "results.json").read_text())
    assert [r["verdict"] for r in results["results"]] == ["fail"]
    assert "1 unexpected" in done.stdout
    # the next run compares with this one (the report's "what changed")
    (corpus / "udp.pkt").write_text(PASSING)
    again = run_job(corpus, out)
    assert again.returncode == 0 and (out / "previous-results.json").is_file()
