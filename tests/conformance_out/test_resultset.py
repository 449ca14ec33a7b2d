"""conformance.resultset: a run's results as JSON, summaries, parity and JUnit XML."""

from __future__ import annotations

import json
import platform
import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import dpkt
import pytest

from conformance.results import CaseResult, FieldDiff, Mismatch, TraceEntry, Verdict
from conformance.resultset import FORMAT, UNEXPECTED, VERSION, ResultSet, environment

STARTED = datetime(2025, 11, 25, 1, 2, 3, 456789, tzinfo=UTC)


def make(case: str, target: str, verdict: Verdict, reason: str = "", **kw: object) -> CaseResult:
    if verdict in (Verdict.FAIL, Verdict.XFAIL) and "mismatch" not in kw:
        kw["mismatch"] = Mismatch(
            12,
            1,
            "expected ACK, got RST",
            expected="+0 > . 1:1(0) ack 1",
            actual="+0 > R 1:1(0)",
            fields=[FieldDiff("flags", "A", "R")],
        )
    return CaseResult(case, target, verdict, reason, **kw)  # type: ignore[arg-type]


# One case per (refstack, linux) verdict pair that parity has to tell apart.
PAIRS: dict[str, tuple[Verdict | None, Verdict | None]] = {
    "agree/pass.pkt": (Verdict.PASS, Verdict.PASS),
    "agree/fail.pkt": (Verdict.FAIL, Verdict.FAIL),
    "agree/error.pkt": (Verdict.ERROR, Verdict.ERROR),
    "same/xfail.pkt": (Verdict.XFAIL, Verdict.XFAIL),
    "div/pass_fail.pkt": (Verdict.PASS, Verdict.FAIL),
    "div/pass_xfail.pkt": (Verdict.PASS, Verdict.XFAIL),
    "div/xpass_pass.pkt": (Verdict.XPASS, Verdict.PASS),
    "div/fail_xfail.pkt": (Verdict.FAIL, Verdict.XFAIL),
    "skip/one.pkt": (Verdict.PASS, Verdict.SKIP),
    "skip/both.pkt": (Verdict.SKIP, Verdict.SKIP),
    "only/refstack.pkt": (Verdict.PASS, None),
    "only/linux.pkt": (None, Verdict.FAIL),
}


def run_results() -> list[CaseResult]:
    results = []
    for case, (on_refstack, on_linux) in PAIRS.items():
        for target, verdict in (("refstack", on_refstack), ("linux", on_linux)):
            if verdict is not None:
                results.append(make(case, target, verdict, reason=f"{verdict} on {target}", duration=0.25))
    return results


@pytest.fixture
def run() -> ResultSet:
    results = run_results()
    results[0].trace = [
        TraceEntry(0.0, "call", "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", 1),
        TraceEntry(0.1, "in", "S 0:0(0) win 1000", 3, bytes.fromhex("4500002c")),
        TraceEntry(0.1, "out", "S. 0:0(0) ack 1 <mss 1460>", 4, b"\x45\x00\xff"),
    ]
    results[2].reason = "naïve “quotes” ✓ and a control char \x01 and\nnewline"
    return ResultSet(
        results,
        environment={"kernel": "6.18.0", "packages": {"dpkt": "1.9.8"}},
        started=STARTED,
        duration=3.5,
    )


# -- JSON ---------------------------------------------------------------------------------


def test_json_round_trip_keeps_everything(run: ResultSet) -> None:
    back = ResultSet.from_json(json.loads(json.dumps(run.to_json())))
    assert back == run
    assert back.results[0].trace[1].packet == bytes.fromhex("4500002c")
    assert back.started == STARTED and back.started.tzinfo is not None


def test_save_and_load(run: ResultSet, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    run.save(path)
    assert ResultSet.load(path) == run
    raw = path.read_bytes()
    assert "naïve “quotes” ✓".encode() in raw  # UTF-8, not \u escapes
    assert raw.endswith(b"}\n")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    data = json.loads(raw)
    assert list(data) == sorted(data)
    assert (data["format"], data["version"]) == (FORMAT, VERSION)
    assert list(data["results"][0]) == sorted(data["results"][0])


def test_the_same_run_saves_the_same_bytes(run: ResultSet, tmp_path: Path) -> None:
    run.save(tmp_path / "a.json")
    ResultSet.load(tmp_path / "a.json").save(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    shuffled_env = ResultSet(run.results, dict(reversed(run.environment.items())), run.started, run.duration)
    assert shuffled_env.dumps() == run.dumps()


def test_other_documents_are_refused(run: ResultSet) -> None:
    with pytest.raises(ValueError, match="not a results document"):
        ResultSet.from_json({"results": []})
    with pytest.raises(ValueError, match="version 99 is not supported"):
        ResultSet.from_json({**run.to_json(), "version": 99})


def test_a_case_runs_once_per_target() -> None:
    with pytest.raises(ValueError, match=re.escape("two results for case 'a.pkt' on target 'linux'")):
        ResultSet([make("a.pkt", "linux", Verdict.PASS), make("a.pkt", "linux", Verdict.FAIL)])


def test_started_keeps_its_offset() -> None:
    tz = timezone(timedelta(hours=2))
    rs = ResultSet([], started=datetime(2025, 1, 1, 12, tzinfo=tz))
    assert ResultSet.from_json(rs.to_json()).started == rs.started
    assert rs.to_json()["started"] == "2025-01-01T12:00:00+02:00"


# -- summary, unexpected ---------------------------------------------------------------------


def test_summary_counts_every_verdict_per_target(run: ResultSet) -> None:
    assert run.summary() == {
        "linux": {"pass": 2, "fail": 3, "error": 1, "skip": 2, "xfail": 3, "xpass": 0},
        "refstack": {"pass": 5, "fail": 2, "error": 1, "skip": 1, "xfail": 1, "xpass": 1},
    }
    assert run.targets() == ["linux", "refstack"]
    assert len(run) == 22 and list(run) == run.results


def test_unexpected_is_fail_error_and_xpass_in_run_order(run: ResultSet) -> None:
    got = [(r.case, r.target, str(r.verdict)) for r in run.unexpected()]
    assert got == [
        ("agree/fail.pkt", "refstack", "fail"),
        ("agree/fail.pkt", "linux", "fail"),
        ("agree/error.pkt", "refstack", "error"),
        ("agree/error.pkt", "linux", "error"),
        ("div/pass_fail.pkt", "linux", "fail"),
        ("div/xpass_pass.pkt", "refstack", "xpass"),
        ("div/fail_xfail.pkt", "refstack", "fail"),
        ("only/linux.pkt", "linux", "fail"),
    ]


# -- parity ----------------------------------------------------------------------------------


def test_parity_counts_same_verdicts_with_xfails_out_of_the_numerator(run: ResultSet) -> None:
    p = run.parity()
    divergent = p.pop("divergent")
    skipped = p.pop("skipped_cases")
    assert p == {
        "a": "refstack",
        "b": "linux",
        "cases": {"refstack": 11, "linux": 11},
        "on_both": 10,
        "skipped": 2,
        "run_on_both": 8,
        "same": 4,
        "same_xfail": 1,
        "agree": 3,
        "parity": 100.0 * 3 / 8,
        "only": {"refstack": ["only/refstack.pkt"], "linux": ["only/linux.pkt"]},
    }
    assert [(d["case"], d["verdicts"]) for d in divergent] == [
        ("div/fail_xfail.pkt", {"refstack": "fail", "linux": "xfail"}),
        ("div/pass_fail.pkt", {"refstack": "pass", "linux": "fail"}),
        ("div/pass_xfail.pkt", {"refstack": "pass", "linux": "xfail"}),
        ("div/xpass_pass.pkt", {"refstack": "xpass", "linux": "pass"}),
    ]
    assert divergent[1]["reasons"] == {"refstack": "pass on refstack", "linux": "fail on linux"}
    assert [d["case"] for d in skipped] == ["skip/both.pkt", "skip/one.pkt"]
    json.dumps(p)  # JSON-ready


def test_parity_is_symmetric_but_for_names(run: ResultSet) -> None:
    ab, ba = run.parity("refstack", "linux"), run.parity("linux", "refstack")
    for key in ("on_both", "skipped", "run_on_both", "same", "same_xfail", "agree", "parity"):
        assert ab[key] == ba[key]
    assert [d["case"] for d in ab["divergent"]] == [d["case"] for d in ba["divergent"]]
    with pytest.raises(ValueError, match="two different targets"):
        run.parity("linux", "linux")


def test_full_parity() -> None:
    results = [make(f"c{i}.pkt", t, Verdict.PASS) for i in range(3) for t in ("refstack", "linux")]
    p = ResultSet(results).parity()
    assert (p["parity"], p["agree"], p["run_on_both"], p["divergent"]) == (100.0, 3, 3, [])


# -- JUnit XML ---------------------------------------------------------------------------------


def parse_junit(path: Path) -> ET.Element:
    raw = path.read_bytes()
    assert raw.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(raw)


def test_junit_has_a_suite_per_target_and_a_case_per_result(run: ResultSet, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    run.junit_xml(path)
    root = parse_junit(path)
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "22",
        "failures": "6",  # 5 fail + 1 xpass
        "errors": "2",
        "skipped": "7",  # 3 skip + 4 xfail
    }
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["linux", "refstack"]
    summary = run.summary()
    for name, suite in suites.items():
        cases = suite.findall("testcase")
        counts = summary[str(name)]
        assert int(suite.get("tests", "")) == len(cases) == sum(counts.values())
        assert int(suite.get("failures", "")) == counts["fail"] + counts["xpass"]
        assert int(suite.get("errors", "")) == counts["error"]
        assert int(suite.get("skipped", "")) == counts["skip"] + counts["xfail"]
        assert len([c for c in cases if c.find("failure") is not None]) == counts["fail"] + counts["xpass"]
        assert len([c for c in cases if c.find("error") is not None]) == counts["error"]
        assert len([c for c in cases if c.find("skipped") is not None]) == counts["skip"] + counts["xfail"]
        assert len([c for c in cases if len(c.findall("./*")) == 0]) == counts["pass"]
        assert suite.get("timestamp") == "2025-11-25T01:02:03"
        assert float(suite.get("time", "")) == pytest.approx(0.25 * len(cases))
        props = {p.get("name"): p.get("value") for p in suite.iter("property")}
        assert props == {"kernel": "6.18.0", "packages.dpkt": "1.9.8"}


def test_junit_elements_carry_the_verdict_reason_and_mismatch(run: ResultSet, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    run.junit_xml(path)
    root = parse_junit(path)

    def case(name: str, target: str) -> ET.Element:
        found = root.find(f"./testsuite[@name='{target}']/testcase[@name='{name}']")
        assert found is not None, (name, target)
        assert found.get("classname") == target
        return found

    fail = case("agree/fail.pkt", "refstack").find("failure")
    assert fail is not None and fail.get("type") == "fail"
    assert fail.get("message") == "naïve “quotes” ✓ and a control char \\x01 and\nnewline"
    assert fail.text is not None
    assert "agree/fail.pkt:12:1: expected ACK, got RST" in fail.text
    assert "expected: +0 > . 1:1(0) ack 1" in fail.text and "flags: expected A, got R" in fail.text

    xpass = case("div/xpass_pass.pkt", "refstack").find("failure")
    assert xpass is not None and (xpass.get("type"), xpass.get("message")) == ("xpass", "xpass on refstack")
    error = case("agree/error.pkt", "linux").find("error")
    assert error is not None and error.get("message") == "error on linux"
    skip = case("skip/one.pkt", "linux").find("skipped")
    assert skip is not None and (skip.get("type"), skip.get("message")) == ("skip", "skip on linux")
    xfail = case("same/xfail.pkt", "linux").find("skipped")
    assert xfail is not None and (xfail.get("type"), xfail.get("message")) == ("xfail", "xfail on linux")

    passed = case("agree/pass.pkt", "refstack")
    assert list(passed) == []  # a pass has no children, not even its trace


def test_junit_adds_the_trace_of_unexpected_results(tmp_path: Path) -> None:
    trace = [TraceEntry(0.0, "call", "socket() = 3", 1), TraceEntry(0.5, "out", "R 1:1(0)", 4, b"E")]
    rs = ResultSet(
        [
            make("f.pkt", "linux", Verdict.FAIL, "mismatch", trace=trace),
            make("p.pkt", "linux", Verdict.PASS, trace=trace),
        ]
    )
    rs.junit_xml(tmp_path / "j.xml")
    root = parse_junit(tmp_path / "j.xml")
    out = root.find("./testsuite/testcase[@name='f.pkt']/system-out")
    assert out is not None and out.text is not None
    assert "socket() = 3  (line 1)" in out.text and "out   R 1:1(0)" in out.text
    assert root.find("./testsuite/testcase[@name='p.pkt']/system-out") is None


def test_junit_message_falls_back_to_the_mismatch(tmp_path: Path) -> None:
    ResultSet([make("f.pkt", "linux", Verdict.FAIL)]).junit_xml(tmp_path / "j.xml")
    failure = parse_junit(tmp_path / "j.xml").find(".//failure")
    assert failure is not None and failure.get("message") == "expected ACK, got RST"


# -- edge runs -----------------------------------------------------------------------------


def test_an_empty_run(tmp_path: Path) -> None:
    rs = ResultSet([], started=STARTED)
    assert rs.summary() == {}
    assert rs.unexpected() == []
    p = rs.parity()
    assert (p["on_both"], p["run_on_both"], p["parity"], p["divergent"]) == (0, 0, None, [])
    rs.save(tmp_path / "r.json")
    assert ResultSet.load(tmp_path / "r.json") == rs
    rs.junit_xml(tmp_path / "j.xml")
    root = parse_junit(tmp_path / "j.xml")
    assert root.findall("testsuite") == [] and root.get("tests") == "0"


def test_one_target_only(tmp_path: Path) -> None:
    rs = ResultSet([make(f"c{i}.pkt", "refstack", v) for i, v in enumerate(Verdict)])
    assert rs.summary() == {"refstack": {str(v): 1 for v in Verdict}}
    p = rs.parity()
    assert (p["cases"], p["on_both"], p["parity"]) == ({"refstack": 6, "linux": 0}, 0, None)
    assert p["only"]["refstack"] == [f"c{i}.pkt" for i in range(6)]
    rs.junit_xml(tmp_path / "j.xml")
    root = parse_junit(tmp_path / "j.xml")
    assert [s.get("name") for s in root.findall("testsuite")] == ["refstack"]
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["6", "2", "1", "2"]


def test_two_thousand_cases_are_quick(tmp_path: Path) -> None:
    verdicts = list(Verdict)
    packet = bytes(range(60))
    results = [
        make(
            f"rfc9293/group{i % 40}/case_{i:04d}.pkt",
            target,
            verdicts[(i * (1 + (target == "linux"))) % 6],
            reason=f"r{i}",
            duration=0.001,
            trace=[TraceEntry(0.01 * k, "in" if k % 2 else "out", f"pkt {k}", k, packet) for k in range(6)],
        )
        for i in range(2000)
        for target in ("refstack", "linux")
    ]
    start = time.perf_counter()
    rs = ResultSet(results, environment=environment(), started=STARTED, duration=42.0)
    rs.save(tmp_path / "r.json")
    back = ResultSet.load(tmp_path / "r.json")
    summary = back.summary()
    parity = back.parity()
    back.junit_xml(tmp_path / "j.xml")
    root = parse_junit(tmp_path / "j.xml")
    elapsed = time.perf_counter() - start
    assert back == rs
    assert sum(sum(c.values()) for c in summary.values()) == 4000
    assert parity["on_both"] == 2000
    assert parity["skipped"] + parity["run_on_both"] == 2000
    pairs = [(verdicts[i % 6], verdicts[(2 * i) % 6]) for i in range(2000)]
    assert parity["same"] == sum(1 for va, vb in pairs if va == vb != Verdict.SKIP)
    assert parity["agree"] == sum(
        1 for va, vb in pairs if va == vb and va not in (Verdict.SKIP, Verdict.XFAIL)
    )
    assert root.get("tests") == "4000" and len(root.findall("./testsuite/testcase")) == 4000
    assert len(back.unexpected()) == sum(1 for r in results if r.verdict in UNEXPECTED)
    assert elapsed < 10, f"{elapsed:.2f} s for 4000 results"


# -- environment ----------------------------------------------------------------------------


def test_environment_names_kernel_python_packages_and_date() -> None:
    env = environment()
    assert env["kernel"] == platform.release()
    assert env["python"] == platform.python_version()
    assert env["packages"]["dpkt"] == dpkt.__version__
    assert env["packages"]["scapy"]
    date = datetime.fromisoformat(env["date"])
    assert date.tzinfo is not None and abs((datetime.now(UTC) - date).total_seconds()) < 60
    assert environment(["surely-not-an-installed-package"])["packages"] == {
        "surely-not-an-installed-package": None
    }
    json.dumps(env)
