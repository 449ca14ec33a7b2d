"""The renderer on synthetic results: verdicts, layout, details, baseline and coverage."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance.pcap import pcap_name
from conformance.results import FieldDiff, TraceEntry
from conformance.resultset import ResultSet
from reports import ReportError, build_report, case_key, load_run, render_html, render_report
from reports.casefile import parse_case_text
from reports.model import MAX_TRACE, VERDICT_ORDER, Change, topic_of
from reports.synthetic import synthetic_run, write_scripts
from tests.reports.conftest import result, results_set
from tests.reports.html_view import ReportView

Save = Callable[..., Path]


def details(html: str, row_id: str) -> str:
    """The details template of matrix row ``cN``."""
    start = html.index(f'id="d{row_id[1:]}"')
    return html[start : html.index("</template>", start)]


def render(tmp_path: Path, *files: Path, **kwargs: object) -> tuple[str, ReportView]:
    out = tmp_path / "out" / "parity.html"
    render_report(list(files), out, **kwargs)  # type: ignore[arg-type]
    text = out.read_text(encoding="utf-8")
    return text, ReportView(text)


# -- keys and topics ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "key"),
    [
        ("rfc_cases/rfc9293/handshake/syn.pkt", "rfc9293/handshake/syn.pkt"),
        ("/srv/ci/rfc_cases/rfc9293/handshake/syn.pkt", "rfc9293/handshake/syn.pkt"),
        ("./rfc_cases/rfc5961/test_rst.py::test_in_window", "rfc5961/test_rst.py::test_in_window"),
        ("/work/tree/tests/x.pkt", "tests/x.pkt"),
        ("/elsewhere/x.pkt", "/elsewhere/x.pkt"),
        ("smoke.pkt", "smoke.pkt"),
    ],
)
def test_case_key_is_the_path_under_the_corpus_root(case: str, key: str) -> None:
    assert case_key(case, cwd="/work/tree") == key


def test_topic_is_the_directory_part() -> None:
    assert topic_of("rfc9293/segment_arrival/listen/rst.pkt") == "rfc9293/segment_arrival/listen"
    assert topic_of("rfc5961/test_rst.py::test_x") == "rfc5961"
    assert topic_of("smoke.pkt") == ""


def test_header_and_req_ids_are_read_from_the_leading_comments() -> None:
    text = "\n// RFC 9293 §3.10.7.4: an RST\n// in the window.   req: SM-6, MUST-12\n"
    text += "0 socket(...) = 3\n// later\n"
    f = parse_case_text("x.pkt", text)
    assert f.header == ["RFC 9293 §3.10.7.4: an RST", "in the window."]
    assert f.reqs == ["SM-6", "MUST-12"]
    assert len(f.lines) == 5


# -- every verdict, counts, parity --------------------------------------------------


def test_every_verdict_shows_with_its_label_and_counts_match(tmp_path: Path, save: Save) -> None:
    rs = synthetic_run(40)
    html, view = render(tmp_path, save(rs))
    assert {v for row in view.rows for v in row.verdicts.values()} == set(VERDICT_ORDER)
    for label in ("PASS", "FAIL", "XFAIL", "XPASS", "SKIP", "ERROR"):
        assert f"{label}</td>" in html or f"{label}<span" in html, label
    summary = rs.summary()
    assert view.counts == {(t, v): summary[t][v] for t in rs.targets() for v in VERDICT_ORDER}
    parity = rs.parity()["parity"]
    assert f'data-parity="{parity:.1f}"' in html
    assert len(view.rows) == 40
    for row in view.rows:  # every result is in its cell
        for target, verdict in row.verdicts.items():
            case = "rfc_cases/" + row.attrs["data-text"].split(" ")[0]
            assert verdict == str(next(r for r in rs if r.case == case and r.target == target).verdict)


def test_divergent_and_unexpected_cases_come_first_within_the_matrix(tmp_path: Path, save: Save) -> None:
    rs = results_set(
        [
            result("rfc_cases/a/ok.pkt", "refstack", "pass"),
            result("rfc_cases/a/ok.pkt", "linux", "pass"),
            result("rfc_cases/a/xf.pkt", "refstack", "xfail", "known"),
            result("rfc_cases/a/xf.pkt", "linux", "xfail", "known"),
            result("rfc_cases/a/zdiv.pkt", "refstack", "fail", "bad", line=3),
            result("rfc_cases/a/zdiv.pkt", "linux", "pass"),
            result("rfc_cases/b/bad.pkt", "refstack", "error", "oops"),
            result("rfc_cases/b/bad.pkt", "linux", "error", "oops"),
            result("rfc_cases/c/ok.pkt", "refstack", "pass"),
            result("rfc_cases/c/ok.pkt", "linux", "skip", "no igmp"),
        ]
    )
    html, view = render(tmp_path, save(rs))
    order = [r.attrs["data-text"].split(" ")[0] for r in view.rows]
    assert order == ["a/zdiv.pkt", "a/ok.pkt", "a/xf.pkt", "b/bad.pkt", "c/ok.pkt"]
    assert [r.attrs["data-div"] for r in view.rows] == ["1", "0", "0", "0", "0"]  # a skip is no divergence
    assert [r.attrs["data-unexp"] for r in view.rows] == ["1", "0", "0", "1", "0"]
    groups = re.findall(r'<tbody class="group" data-topic="([^"]*)"', html)
    assert groups == ["a", "b", "c"]
    assert '<option value="a">a (3)</option>' in html


def test_an_empty_run_renders_and_says_so(tmp_path: Path, save: Save) -> None:
    html, view = render(tmp_path, save(results_set([])))
    assert view.rows == []
    assert "No results: the run recorded no case." in html
    assert "No cases." in html
    assert "<title>Parity report: no results</title>" in html


def test_a_run_on_one_target_has_one_column_and_no_parity(tmp_path: Path, save: Save) -> None:
    rs = synthetic_run(12, ("refstack",))
    html, view = render(tmp_path, save(rs))
    assert {tuple(r.verdicts) for r in view.rows} == {("refstack",)}
    assert "data-parity" not in html
    assert re.search(
        r"<thead><tr><th scope=\"col\" class=\"cc\">case</th><th scope=\"col\">refstack</th></tr>", html
    )
    assert all(r.attrs["data-div"] == "0" for r in view.rows)


def test_results_files_of_each_target_are_merged(tmp_path: Path, save: Save) -> None:
    rs = synthetic_run(20)
    parts = [
        save(ResultSet([r for r in rs if r.target == t], {"kernel": k}, rs.started, 1.0), f"{t}.json")
        for t, k in (("refstack", "n/a"), ("linux", "6.18.0"))
    ]
    html, view = render(tmp_path, *parts)
    assert len(view.rows) == 20
    assert all(set(r.verdicts) == {"refstack", "linux"} for r in view.rows)
    env = html[html.index('<dl class="envg">') : html.index("</dl>")]
    assert f'<span class="run mono">{parts[0]}:</span> n/a' in env  # values that differ: one per file
    assert f'<span class="run mono">{parts[1]}:</span> 6.18.0' in env
    assert "<dt>Started</dt>\n<dd>2026-11-25 02:00:00 UTC</dd>" in env  # values all runs share: once


def test_the_same_case_by_absolute_and_relative_path_is_one_row(tmp_path: Path, save: Save) -> None:
    a = save(results_set([result("/ci/tree/rfc_cases/x/y.pkt", "linux", "pass")]), "a.json")
    b = save(results_set([result("rfc_cases/x/y.pkt", "refstack", "fail", "bad", line=2)]), "b.json")
    _, view = render(tmp_path, a, b)
    assert [(r.name, r.verdicts) for r in view.rows] == [("y.pkt", {"refstack": "fail", "linux": "pass"})]


# -- case details ----------------------------------------------------------------------


def test_details_show_script_marks_fields_reasons_traces_and_pcaps(
    tmp_path: Path, save: Save, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "rfc_cases" / "rfc9293" / "handshake" / "syn.pkt"
    script.parent.mkdir(parents=True)
    script.write_text(
        "// RFC 9293 §3.5: the SYN-ACK <echoes> the MSS.\n// req: MUST-7 SHLD-2\n"
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 > S. 0:0(0) ack 1 <mss 1460>\n",
        encoding="utf-8",
    )
    case = "rfc_cases/rfc9293/handshake/syn.pkt"
    trace = [
        TraceEntry(0.0, "call", "socket(..., SOCK_STREAM, IPPROTO_TCP) = 3", 3),
        TraceEntry(0.01, "out", "192.168.0.1:8080 > 192.0.2.1:40000: R 0:0(0)", 4, b"E\0"),
    ]
    rs = results_set(
        [
            result(
                case,
                "refstack",
                "fail",
                "bad reply",
                line=4,
                fields=[FieldDiff("tcp.flags", "S.", "R")],
                trace=trace,
            ),
            result(case, "linux", "xfail", "D7: Linux departs here (expected at line 4)", line=4),
        ]
    )
    pcaps = tmp_path / "pcaps"
    pcaps.mkdir()
    (pcaps / pcap_name(case, "refstack")).write_bytes(b"")  # linux's pcap is missing: no link
    html, view = render(tmp_path, save(rs), pcap_dir=pcaps)
    d = details(html, view.rows[0].id)
    assert "RFC 9293 §3.5: the SYN-ACK &lt;echoes&gt; the MSS." in d  # the header, escaped
    assert '<span class="req">MUST-7</span>' in d and '<span class="req">SHLD-2</span>' in d
    assert re.search(r'<span class="l bad" data-n="4">.*◀ refstack, linux departed here', d)
    assert '<span class="l" data-n="3">' in d
    assert '<th scope="row">tcp.flags</th><td class="mono">S.</td><td class="mono bad">R</td>' in d
    assert "<strong>Expectation:</strong> D7: Linux departs here (expected at line 4)" in d
    assert "R 0:0(0)" in d and "→ in" not in d and "← out" in d
    href = "../pcaps/" + pcap_name(case, "refstack")
    assert f'<a href="{href}" download>pcap</a>' in d
    assert pcap_name(case, "linux") not in html
    assert (tmp_path / "out" / href).resolve() == (pcaps / pcap_name(case, "refstack")).resolve()


def test_a_missing_script_is_said_to_be_unavailable(tmp_path: Path, save: Save) -> None:
    rs = results_set([result("rfc_cases/gone/x.pkt", "refstack", "pass")])
    html, view = render(tmp_path, save(rs))
    assert "The script is unavailable: rfc_cases/gone/x.pkt cannot be read from here." in details(
        html, view.rows[0].id
    )


def test_long_traces_are_cut_and_say_so(tmp_path: Path, save: Save) -> None:
    trace = [TraceEntry(i / 1000, "out", f"packet {i}", 0, b"E") for i in range(MAX_TRACE + 25)]
    html, view = render(tmp_path, save(results_set([result("a.pkt", "refstack", "pass", trace=trace)])))
    d = details(html, view.rows[0].id)
    assert f"packet {MAX_TRACE - 1}<" in d and f"packet {MAX_TRACE}<" not in d
    assert "25 more entries are not shown." in d


def test_input_text_is_escaped(tmp_path: Path, save: Save) -> None:
    evil = '<script>alert("x")</script>'
    rs = results_set([result("a.pkt", "refstack", "fail", evil, line=1)], note=evil)
    html, _ = render(tmp_path, save(rs))
    assert evil not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_the_page_is_self_contained(tmp_path: Path, save: Save) -> None:
    html, view = render(tmp_path, save(synthetic_run(30)))
    assert view.srcs == []  # no external script, image or frame
    assert "<link" not in html
    assert not [h for h in view.hrefs if not h.startswith("#")]  # no pcap dir: only in-page links
    assert "<style>" in html and "<script>" in html


# -- environment ------------------------------------------------------------------------


def test_environment_shows_what_is_there_and_tolerates_the_rest(tmp_path: Path, save: Save) -> None:
    rs = results_set(
        [result("a.pkt", "linux", "pass")],
        kernel="6.18.0-test",
        packages={"scapy": "2.6.1", "dpkt": None},
        sysctls={"net.ipv4.tcp_congestion_control": "reno"},
        EF_NO_FAIL="0",
        custom_key=[1, 2],
    )
    html, _ = render(tmp_path, save(rs))
    env = html[html.index('<dl class="envg">') : html.index("</dl>", html.index('<dl class="envg">'))]
    assert "<dt>Kernel</dt>\n<dd>6.18.0-test</dd>" in env
    assert "dpkt —\nscapy 2.6.1" in env
    assert (
        "Namespace sysctls (differing from defaults)" in env
        and "net.ipv4.tcp_congestion_control = reno" in env
    )
    assert "EF_NO_FAIL = 0" in env
    assert "<dt>custom_key</dt>" in env and "1, 2" in env
    assert "Python implementation" not in env  # absent keys are left out


# -- baseline ----------------------------------------------------------------------------


def test_baseline_diff_lists_what_changed(tmp_path: Path, save: Save) -> None:
    old = results_set(
        [
            result("rfc_cases/t/keeps.pkt", "refstack", "pass"),
            result("rfc_cases/t/breaks.pkt", "refstack", "pass"),
            result("rfc_cases/t/fixed.pkt", "refstack", "fail", "bad", line=1),
            result("rfc_cases/t/skips.pkt", "refstack", "pass"),
            result("rfc_cases/t/removed.pkt", "refstack", "pass"),
        ]
    )
    new = results_set(
        [
            result("rfc_cases/t/keeps.pkt", "refstack", "pass"),
            result("rfc_cases/t/breaks.pkt", "refstack", "error", "oops"),
            result("rfc_cases/t/fixed.pkt", "refstack", "pass"),
            result("rfc_cases/t/skips.pkt", "refstack", "skip", "no"),
            result("rfc_cases/t/added.pkt", "refstack", "fail", "bad", line=1),
        ]
    )
    old_path, new_path = save(old, "old.json"), save(new, "new.json")
    report = build_report([load_run(new_path)], output=tmp_path / "r.html", baseline=load_run(old_path))
    b = report.baseline
    assert b is not None

    def as_tuples(changes: list[Change]) -> list[tuple[str, str | None, str | None]]:
        return [(c.key, c.before, c.after) for c in changes]

    assert as_tuples(b.new_failures) == [("t/breaks.pkt", "pass", "error")]
    assert as_tuples(b.fixed) == [("t/fixed.pkt", "fail", "pass")]
    assert as_tuples(b.new_cases) == [("t/added.pkt", None, "fail")]
    assert as_tuples(b.removed_cases) == [("t/removed.pkt", "pass", None)]
    assert as_tuples(b.changes) == [
        ("t/breaks.pkt", "pass", "error"),
        ("t/fixed.pkt", "fail", "pass"),
        ("t/skips.pkt", "pass", "skip"),
    ]
    html = render_html(report)
    assert re.search(
        r'data-n="new_failures">1<.*data-n="fixed">1<.*data-n="new_cases">1<'
        r'.*data-n="removed_cases">1<.*data-n="changes">3<',
        html,
        re.S,
    )
    assert "<summary>New failures (1)</summary>" in html
    rows = {r.attrs["data-text"].split(" ")[0]: r for r in ReportView(html).rows}
    assert f'<a href="#{rows["t/breaks.pkt"].id}">t/breaks.pkt</a>' in html
    assert '<span class="mono">t/removed.pkt</span>' in html  # not in this run: no link
    assert 'title="refstack: pass → error">changed</span>' in html
    assert '<span class="delta">(+1)</span>' in html  # one more error than the baseline


# -- coverage ----------------------------------------------------------------------------


def coverage_doc(**summary: dict[str, int]) -> dict[str, object]:
    return {
        "format": "tcpip-parity/coverage",
        "version": 1,
        "requirements": [
            {
                "id": "MUST-1",
                "level": "MUST",
                "section": "3.1",
                "text": "checksum",
                "cases": ["t/a.pkt"],
                "uncovered_reason": None,
            },
            {
                "id": "MUST-2",
                "level": "MUST",
                "section": "3.4",
                "text": "ISN clock",
                "cases": [],
                "uncovered_reason": "needs a 4 µs clock",
            },
            {
                "id": "SHLD-1",
                "level": "SHLD",
                "section": "3.8",
                "text": "Nagle",
                "cases": ["t/b.pkt", "t/gone.pkt"],
                "uncovered_reason": None,
            },
        ],
        "summary": summary or {"MUST": {"total": 2, "covered": 1}, "SHLD": {"total": 1, "covered": 1}},
    }


def test_coverage_summary_and_requirements(tmp_path: Path, save: Save) -> None:
    rs = results_set(
        [
            result("rfc_cases/t/a.pkt", "refstack", "pass"),
            result("rfc_cases/t/a.pkt", "linux", "pass"),
            result("rfc_cases/t/b.pkt", "refstack", "fail", "x", line=1),
            result("rfc_cases/t/b.pkt", "linux", "pass"),
        ]
    )
    cov = tmp_path / "coverage.json"
    cov.write_text(json.dumps(coverage_doc()), encoding="utf-8")
    html, view = render(tmp_path, save(rs), coverage=cov)
    assert '<span class="big" data-level="MUST">1/2</span>' in html
    assert '<span class="big" data-level="SHLD">1/1</span>' in html
    assert "MUST 1 of 2 (50 %), SHLD 1 of 1 (100 %)." in html
    shld = html[html.index('id="req-SHLD-1"') :]
    shld = shld[: shld.index("</tr>")]
    rows = {r.attrs["data-text"].split(" ")[0]: r.id for r in view.rows}
    assert f'<a href="#{rows["t/b.pkt"]}">t/b.pkt</a>' in shld
    assert '<span class="mono">t/gone.pkt</span>' in shld
    assert shld.count("FAIL") == 1 and shld.count("PASS") == 1  # worst verdict per target
    must2 = html[html.index('id="req-MUST-2"') :]
    assert "not covered: needs a 4 µs clock" in must2[: must2.index("</tr>")]


# -- the synthetic run and its scripts ------------------------------------------------------


def test_synthetic_scripts_are_found_and_marked(
    tmp_path: Path, save: Save, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_scripts(tmp_path, 12)
    html, _ = render(tmp_path, save(synthetic_run(12)))
    assert "The script is unavailable" not in html
    marks = {(r.case, r.mismatch.line) for r in synthetic_run(12) if r.mismatch is not None}
    assert html.count("departed here") == len(marks) > 0


def test_render_report_needs_at_least_one_file(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no results file given"):
        render_report([], tmp_path / "x.html")


# -- known divergences and the real harness ---------------------------------------------------


def test_known_divergences_are_grouped_by_target_and_reason(tmp_path: Path, save: Save) -> None:
    rs = results_set(
        [
            result("rfc_cases/t/a.pkt", "linux", "xfail", "D1: challenge ACK"),
            result("rfc_cases/t/b.pkt", "linux", "xfail", "D1: challenge ACK"),
            result("rfc_cases/t/c.pkt", "linux", "xfail", "D2: other"),
            result("rfc_cases/t/d.pkt", "refstack", "xpass", "listed but passed"),
        ]
    )
    report = build_report([load_run(save(rs))], output=tmp_path / "r.html")
    assert [(k.target, k.verdict, k.reason, [c for c, _ in k.cases]) for k in report.known] == [
        ("refstack", "xpass", "listed but passed", ["t/d.pkt"]),
        ("linux", "xfail", "D1: challenge ACK", ["t/a.pkt", "t/b.pkt"]),
        ("linux", "xfail", "D2: other", ["t/c.pkt"]),
    ]
    html = render_html(report)
    assert '<button type="button" class="show-q" data-q="D1: challenge ACK">show 2 cases</button>' in html


def test_the_harness_own_results_and_pcaps_render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conformance.cli import main as conformance

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # the harness names cases relative to where it runs
    out = io.StringIO()
    scripts = "tests/conformance/scripts"
    argv = ["run", scripts, "--target", "refstack", "--json", str(tmp_path / "r.json")]
    status = conformance([*argv, "--pcap-dir", str(tmp_path / "pcaps")], out, out)
    assert status == 0, out.getvalue()
    html, view = render(tmp_path, tmp_path / "r.json", pcap_dir=tmp_path / "pcaps")
    assert sorted(r.name for r in view.rows) == sorted(p.name for p in (repo / scripts).glob("*.pkt"))
    assert {v for r in view.rows for v in r.verdicts.values()} == {"pass"}
    assert "The script is unavailable" not in html
    pcaps = [h for h in view.hrefs if h.endswith(".pcap")]
    assert len(pcaps) == 2 * len(view.rows)  # two links per case (outcome and trace)
    assert all((tmp_path / "out" / h).is_file() for h in pcaps)
