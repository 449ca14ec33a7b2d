"""``python -m reports``: usage, success, and one clear line with exit 2 on every bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reports.cli import main
from reports.synthetic import synthetic_run
from tests.reports.conftest import result, results_set
from tests.reports.test_render import coverage_doc

Save = Callable[..., Path]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_render_writes_the_report_and_says_so(tmp_path: Path, save: Save) -> None:
    path = save(synthetic_run(10))
    out = tmp_path / "deep" / "dir" / "parity.html"
    status, stdout, stderr = run("render", str(path), "-o", str(out))
    assert (status, stderr) == (0, "")
    assert out.is_file() and out.stat().st_mode & 0o044  # readable by others, as any written file
    assert stdout.startswith(f"wrote {out}: 10 cases on 2 target(s), ")
    assert "parity refstack/linux" in stdout


def test_module_entry_point_runs(tmp_path: Path, save: Save) -> None:
    path = save(results_set([result("a.pkt", "refstack", "pass")]))
    done = subprocess.run(
        [sys.executable, "-m", "reports", "render", str(path), "-o", str(tmp_path / "r.html"), "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def good_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(results_set([result("a.pkt", "refstack", "pass", line=1)]).dumps())
    return doc


def bad_docs() -> list[tuple[str, Callable[[dict[str, Any]], object], str]]:
    def entry(doc: dict[str, Any]) -> dict[str, Any]:
        first: dict[str, Any] = doc["results"][0]
        return first

    def set_(f: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], object]:
        def apply(doc: dict[str, Any]) -> object:
            f(doc)
            return doc

        return apply

    return [
        ("top-level list", lambda d: [d], "the top level is a JSON array, not an object"),
        (
            "other format",
            set_(lambda d: d.update(format="junit")),
            "format is 'junit', expected 'tcpip-parity/results'",
        ),
        ("version", set_(lambda d: d.update(version=9)), "results version 9 is not supported (only 1)"),
        ("no results", set_(lambda d: d.pop("results")), "'results' is missing or not a list"),
        (
            "bad date",
            set_(lambda d: d.update(started="yesterday")),
            "'started' is 'yesterday', not an ISO 8601 date",
        ),
        (
            "verdict",
            set_(lambda d: entry(d).update(verdict="maybe")),
            "results[0] (a.pkt on refstack): verdict 'maybe' is not one of "
            "pass, fail, error, skip, xfail, xpass",
        ),
        (
            "no target",
            set_(lambda d: entry(d).pop("target")),
            "results[0]: 'target' is missing or not a string",
        ),
        (
            "mismatch",
            set_(lambda d: entry(d).update(mismatch={"line": 1})),
            "results[0] (a.pkt on refstack): 'mismatch' needs line, col and message",
        ),
        (
            "trace",
            set_(lambda d: entry(d).update(trace=[{"time": 0}])),
            "results[0].trace[0]: an entry needs time, kind and text",
        ),
        (
            "duration",
            set_(lambda d: entry(d).update(duration="slow")),
            "results[0] (a.pkt on refstack): 'duration' is 'slow', not a number",
        ),
        (
            "packet",
            set_(lambda d: entry(d).update(trace=[{"time": 0, "kind": "in", "text": "", "packet": "zz"}])),
            "results[0].trace[0]: 'packet' is not a hex string",
        ),
        (
            "fields",
            set_(lambda d: entry(d)["mismatch"].update(fields=[{"name": "x"}])),
            "results[0] (a.pkt on refstack): mismatch fields need name, expected and actual",
        ),
        (
            "line type",
            set_(lambda d: entry(d)["mismatch"].update(line="3")),
            "results[0] (a.pkt on refstack): the mismatch's line and col must be integers",
        ),
        (
            "duplicate",
            set_(lambda d: d["results"].append(entry(d))),
            "two results for case 'a.pkt' on target 'refstack'",
        ),
    ]


@pytest.mark.parametrize(("what", "mutate", "message"), bad_docs(), ids=[b[0] for b in bad_docs()])
def test_a_bad_results_document_is_one_clear_error(
    tmp_path: Path, what: str, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = write(tmp_path, "bad.json", json.dumps(mutate(good_doc())))
    status, _, stderr = run("render", str(path), "-o", str(tmp_path / "r.html"))
    assert status == 2, what
    assert stderr.startswith(f"error: {path}: ") and message in stderr, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "no such file"),
        ("notjson.json", "{ nope", "not JSON: line 1 column 3: Expecting property name"),
        ("latin1.json", b"\xff\xfe", "not UTF-8 text"),
        ("dir.json", "DIR", "is a directory, not a results file"),
    ],
)
def test_unreadable_results_are_one_clear_error(
    tmp_path: Path, name: str, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    status, _, stderr = run("render", str(path), "-o", str(tmp_path / "r.html"))
    assert status == 2
    assert stderr.startswith(f"error: {path}: {message}"), stderr


def test_the_same_case_and_target_in_two_files_is_an_error_naming_both(tmp_path: Path, save: Save) -> None:
    a = save(results_set([result("rfc_cases/x.pkt", "linux", "pass")]), "a.json")
    b = save(results_set([result("/abs/rfc_cases/x.pkt", "linux", "fail")]), "b.json")
    status, _, stderr = run("render", str(a), str(b), "-o", str(tmp_path / "r.html"))
    assert status == 2
    assert stderr == f"error: {b}: case '/abs/rfc_cases/x.pkt' on target 'linux' is also in {a}\n"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "x"}, "not a coverage document: format is 'x', expected 'tcpip-parity/coverage'"),
        ({**coverage_doc(), "version": 2}, "coverage version 2 is not supported (only 1)"),
        ({**coverage_doc(), "requirements": {}}, "'requirements' is missing or not a list"),
        (
            {**coverage_doc(), "requirements": [{"id": "MUST-1"}]},
            "requirements[0]: 'level' is missing or not a non-empty string",
        ),
        (
            {**coverage_doc(), "requirements": [{"id": "MUST-1", "level": "MUST", "cases": "a.pkt"}]},
            "requirements[0] (MUST-1): 'cases' is not a list of strings",
        ),
        (
            {**coverage_doc(), "summary": {"MUST": {"total": 1}}},
            "summary['MUST']: needs integer 'total' and 'covered'",
        ),
        (
            {**coverage_doc(), "summary": {"MUST": {"total": 1, "covered": 3}}},
            "summary['MUST']: covered 3 is outside 0..1",
        ),
    ],
)
def test_a_bad_coverage_document_is_one_clear_error(
    tmp_path: Path, save: Save, doc: dict[str, Any], message: str
) -> None:
    cov = write(tmp_path, "cov.json", json.dumps(doc))
    status, _, stderr = run(
        "render", str(save(synthetic_run(3))), "--coverage", str(cov), "-o", str(tmp_path / "r.html")
    )
    assert status == 2
    assert stderr == f"error: {cov}: {message}\n"


def test_bad_paths_are_clear_errors(tmp_path: Path, save: Save) -> None:
    path = str(save(synthetic_run(3)))
    status, _, stderr = run(
        "render", path, "--pcap-dir", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html")
    )
    assert (status, stderr) == (2, f"error: {tmp_path / 'nope'}: the pcap directory does not exist\n")
    status, _, stderr = run("render", path, "-o", str(tmp_path))
    assert (status, stderr) == (2, f"error: {tmp_path}: is a directory; give the HTML file's name\n")
    status, _, stderr = run(
        "render", path, "--baseline", str(tmp_path / "old.json"), "-o", str(tmp_path / "r.html")
    )
    assert (status, stderr) == (2, f"error: {tmp_path / 'old.json'}: no such file\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("render")[0] == 2
    assert run("render", "x.json")[0] == 2  # -o is required
    assert run("frobnicate")[0] == 2
    assert "usage: python -m reports" in capsys.readouterr().err
