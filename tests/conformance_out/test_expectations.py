"""conformance.expectations: the per-target files of known divergences."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import conformance.expectations as expectations_module
from conformance.expectations import (
    Entry,
    Expectations,
    ExpectationsError,
    GlobError,
    apply,
    compile_glob,
)
from conformance.results import CaseResult, Mismatch, TraceEntry, Verdict

LINUX_TOML = """\
# Known divergences of the Linux target.

[[xfail]]
case = "rfc9293/segment_arrival/**/rst_*.pkt"
reason = "challenge ACK (RFC 5961)"

[[xfail]]   # a comment after the header
case = "rfc1122/keepalive/idle_*.pkt"
reason = "keep-alive idle time is 75 s here"
verdicts = ["fail", "error"]

[[xfail]]
case = "rfc9293/never/matches.pkt"
reason = "stale"

[[xfail]]
case = "python/test_frag.py::test_overlap*"
reason = "Linux drops overlapping fragments"
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "rfc_cases"
    (root / "expectations").mkdir(parents=True)
    (root / "expectations" / "linux.toml").write_text(LINUX_TOML, encoding="utf-8")
    return root


@pytest.fixture
def linux(corpus: Path) -> Expectations:
    return Expectations.load(corpus / "expectations", "linux")


def result(case: str, verdict: Verdict, target: str = "linux", reason: str = "") -> CaseResult:
    return CaseResult(
        case,
        target,
        verdict,
        reason=reason,
        duration=0.5,
        mismatch=Mismatch(7, 1, "expected ACK, got RST") if verdict is Verdict.FAIL else None,
        trace=[TraceEntry(0.0, "in", "S 0:0(0)", 3, b"\x45" + bytes(19))],
    )


# -- the documented format -------------------------------------------------------------


def test_the_example_in_the_module_docstring_parses() -> None:
    doc = expectations_module.__doc__ or ""
    example = doc.split("e.g. ``rfc_cases/expectations/linux.toml``::", 1)[1].split("Each ``[[xfail]]``")[0]
    text = "\n".join(line[4:] for line in example.splitlines())
    exp = Expectations.parse(text, "linux", source="docstring")
    assert [e.case for e in exp.entries] == [
        "rfc9293/segment_arrival/**/rst_*.pkt",
        "rfc1122/keepalive/idle_default.pkt",
    ]
    assert exp.entries[0].verdicts == {Verdict.FAIL}
    assert exp.entries[1].verdicts == {Verdict.FAIL, Verdict.ERROR}


def test_load_from_the_directory_or_the_file(corpus: Path) -> None:
    from_dir = Expectations.load(corpus / "expectations", "linux")
    from_file = Expectations.load(corpus / "expectations" / "linux.toml", "linux")
    assert from_dir.entries == from_file.entries
    assert len(from_dir) == 4
    assert from_dir.root == corpus  # the parent of expectations/
    assert from_dir.entries[0] == Entry(
        "rfc9293/segment_arrival/**/rst_*.pkt",
        "challenge ACK (RFC 5961)",
        frozenset({Verdict.FAIL}),
        f"{corpus / 'expectations' / 'linux.toml'}:3",
    )
    assert from_dir.entries[1].source.endswith("linux.toml:7")


def test_a_target_without_a_file_has_no_known_divergences(corpus: Path) -> None:
    exp = Expectations.load(corpus / "expectations", "refstack")
    assert len(exp) == 0
    assert exp.match("rfc9293/segment_arrival/rst_x.pkt") is None
    assert apply(result("a.pkt", Verdict.FAIL, "refstack"), exp).verdict is Verdict.FAIL
    assert exp.unused_entries() == []


def test_a_missing_file_named_directly_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Expectations.load(tmp_path / "nope.toml", "linux")


def test_an_empty_file_is_valid(tmp_path: Path) -> None:
    (tmp_path / "linux.toml").write_text("# nothing known yet\n")
    assert len(Expectations.load(tmp_path, "linux")) == 0


def test_the_root_can_be_given(corpus: Path, tmp_path: Path) -> None:
    exp = Expectations.load(corpus / "expectations", "linux", root=tmp_path)
    assert exp.root == tmp_path
    assert exp.match(str(tmp_path / "rfc9293/segment_arrival/a/rst_1.pkt")) is not None


# -- bad files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entry", "line", "says"),
    [
        ('[[xfail]]\ncase = "a.pkt"\n', 1, 1, "missing 'reason'"),
        (
            '[[xfail]]\ncase = "a.pkt"\nreason = "ok"\n\n[[xfail]]\ncase = "b.pkt"\nreason = "  "\n',
            2,
            5,
            "non-empty",
        ),
        ('[[xfail]]\nreason = "why"\n', 1, 1, "missing 'case'"),
        ('[[xfail]]\ncase = 3\nreason = "why"\n', 1, 1, "'case' must be a string"),
        ('[[xfail]]\ncase = "a/[bc.pkt"\nreason = "why"\n', 1, 1, "bad glob: unclosed '['"),
        ('[[xfail]]\ncase = "/abs/a.pkt"\nreason = "why"\n', 1, 1, "bad glob"),
        ('[[xfail]]\ncase = "a**/b.pkt"\nreason = "why"\n', 1, 1, "'**' must be a whole path segment"),
        ('[[xfail]]\ncase = ""\nreason = "why"\n', 1, 1, "the glob is empty"),
        ('[[xfail]]\ncase = "a.pkt"\nreason = "why"\nbug = "ON-1"\n', 1, 1, "unknown key(s) 'bug'"),
        ('[[xfail]]\ncase = "a.pkt"\nreason = "why"\nverdicts = ["pass"]\n', 1, 1, "verdict 'pass'"),
        ('[[xfail]]\ncase = "a.pkt"\nreason = "why"\nverdicts = ["skip"]\n', 1, 1, "verdict 'skip'"),
        ('[[xfail]]\ncase = "a.pkt"\nreason = "why"\nverdicts = []\n', 1, 1, "non-empty list"),
        ('[[xfail]]\ncase = "a.pkt"\nreason = "why"\nverdicts = "fail"\n', 1, 1, "non-empty list"),
    ],
)
def test_a_bad_entry_names_the_file_and_the_entry(
    tmp_path: Path, text: str, entry: int, line: int, says: str
) -> None:
    path = tmp_path / "linux.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError) as info:
        Expectations.load(tmp_path, "linux")
    err = info.value
    assert err.path == str(path) and err.entry == entry and err.line == line
    assert str(err).startswith(f"{path}:{line}: [[xfail]] entry {entry}: ")
    assert says in str(err)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[xfail]\ncase = "a.pkt"\nreason = "why"\n', "write [[xfail]], not [xfail]"),
        ('target = "linux"\n', "unknown top-level key(s) 'target'"),
        ('[[xfail]\ncase = "a.pkt"\n', "not valid TOML"),
        ('[[xfail]]\ncase = "a.pkt\n', "not valid TOML"),
    ],
)
def test_a_bad_file_names_the_file(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "linux.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError, match=re.escape(says)) as info:
        Expectations.load(path, "linux")
    assert str(info.value).startswith(str(path))
    assert info.value.entry is None


def test_an_inline_array_of_entries_still_names_the_entry() -> None:
    text = 'xfail = [{case = "a.pkt", reason = "why"}, {case = "b.pkt"}]\n'
    with pytest.raises(ExpectationsError, match=r"^inline\.toml: \[\[xfail\]\] entry 2: .*missing 'reason'"):
        Expectations.parse(text, "linux", source="inline.toml")


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / "linux.toml").write_bytes(b'[[xfail]]\ncase = "\xff"\n')
    with pytest.raises(ExpectationsError, match=re.escape("linux.toml: not UTF-8")):
        Expectations.load(tmp_path, "linux")


# -- globs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        (
            "rfc9293/segment_arrival/**/rst_*.pkt",
            [
                "rfc9293/segment_arrival/rst_a.pkt",
                "rfc9293/segment_arrival/x/rst_b.pkt",
                "rfc9293/segment_arrival/x/y/z/rst_.pkt",
            ],
            [
                "rfc9293/segment_arrival/rst_a.pkt.orig",
                "rfc9293/segment_arrival/x/syn_rst_a.pkt",
                "rfc9293/segment_arrivalx/rst_a.pkt",
                "other/rfc9293/segment_arrival/rst_a.pkt",
            ],
        ),
        ("*.pkt", ["a.pkt", ".pkt"], ["d/a.pkt"]),
        ("**/*.pkt", ["a.pkt", "d/a.pkt", "d/e/a.pkt"], ["a.pk"]),
        ("rfc9293/**", ["rfc9293/a.pkt", "rfc9293/x/y.pkt"], ["rfc9293", "rfc9293x/a.pkt"]),
        ("a/?.pkt", ["a/b.pkt"], ["a/bc.pkt", "a//.pkt"]),
        ("t_[0-9][!x].pkt", ["t_1y.pkt"], ["t_ay.pkt", "t_1x.pkt", "t_1/.pkt"]),
        ("t_[+-0].pkt", ["t_+.pkt", "t_0.pkt"], ["t_/.pkt"]),  # a range spanning '/' still stops at it
        ("a.b(c)+{d}$.pkt", ["a.b(c)+{d}$.pkt"], ["aXb(c)+{d}$.pkt"]),
        ("python/test_frag.py::test_*", ["python/test_frag.py::test_overlap"], ["python/test_frag.py"]),
    ],
)
def test_glob_semantics(glob: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_glob(glob)
    for path in matches:
        assert regex.match(path), (glob, path)
    for path in misses:
        assert not regex.match(path), (glob, path)


@pytest.mark.parametrize("glob", ["", "/a", "a//b", "a/", "a**", "**b/c", "a/[bc", "a]b", "a\\b", "a[/]b"])
def test_bad_globs(glob: str) -> None:
    with pytest.raises(GlobError):
        compile_glob(glob)


# -- case paths -------------------------------------------------------------------------


def test_case_paths_are_taken_relative_to_the_corpus_root(
    linux: Expectations, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(corpus.parent)
    rel = "rfc9293/segment_arrival/deep/rst_x.pkt"
    assert linux.relative(rel) == rel  # already relative to the root
    assert linux.relative("rfc_cases/" + rel) == rel  # relative to the current directory
    assert linux.relative("./rfc_cases/" + rel) == rel
    assert linux.relative(str(corpus / rel)) == rel  # absolute
    assert linux.relative(str(corpus / "python/test_frag.py") + "::test_overlap[a/b]") == (
        "python/test_frag.py::test_overlap[a/b]"
    )
    assert linux.relative("/elsewhere/rfc9293/x.pkt") == "/elsewhere/rfc9293/x.pkt"  # matches no glob
    for case in (rel, "rfc_cases/" + rel, str(corpus / rel)):
        entry = linux.match(case)
        assert entry is not None and entry.reason == "challenge ACK (RFC 5961)"
    assert linux.match("/elsewhere/rfc9293/segment_arrival/rst_x.pkt") is None
    assert linux.match(str(corpus / "python/test_frag.py") + "::test_overlap_tail") is not None


def test_match_with_a_verdict_takes_the_first_entry_that_explains_it() -> None:
    exp = Expectations.parse(
        """
[[xfail]]
case = "tcp/**"
reason = "errors on the whole directory"
verdicts = ["error"]

[[xfail]]
case = "tcp/a.pkt"
reason = "a fails"
""",
        "linux",
    )
    assert exp.match("tcp/a.pkt") is exp.entries[0]
    assert exp.match("tcp/a.pkt", Verdict.ERROR) is exp.entries[0]
    assert exp.match("tcp/a.pkt", Verdict.FAIL) is exp.entries[1]
    assert exp.match("tcp/b.pkt", Verdict.FAIL) is None
    assert exp.match("tcp/b.pkt", Verdict.PASS) is exp.entries[0]


# -- apply --------------------------------------------------------------------------------


def test_a_listed_fail_becomes_xfail_with_the_reason(linux: Expectations) -> None:
    before = result("rfc9293/segment_arrival/rst_in_window.pkt", Verdict.FAIL, reason="line 7: expected ACK")
    after = apply(before, linux)
    assert after.verdict is Verdict.XFAIL
    assert after.reason == "challenge ACK (RFC 5961)"
    assert after.mismatch == before.mismatch and after.trace == before.trace  # the evidence is kept
    assert (after.case, after.target, after.duration) == (before.case, before.target, before.duration)
    assert before.verdict is Verdict.FAIL and before.reason == "line 7: expected ACK"  # not modified


def test_a_listed_pass_becomes_xpass(linux: Expectations) -> None:
    after = apply(result("rfc9293/segment_arrival/x/rst_old.pkt", Verdict.PASS), linux)
    assert after.verdict is Verdict.XPASS
    assert "no longer holds" in after.reason
    assert "challenge ACK (RFC 5961)" in after.reason
    assert "linux.toml:3" in after.reason and "rfc9293/segment_arrival/**/rst_*.pkt" in after.reason


def test_errors_stay_unless_listed(linux: Expectations) -> None:
    error = result("rfc9293/segment_arrival/rst_a.pkt", Verdict.ERROR, reason="bad script")
    assert apply(error, linux) is error
    listed = apply(result("rfc1122/keepalive/idle_2h.pkt", Verdict.ERROR, reason="timeout"), linux)
    assert (listed.verdict, listed.reason) == (Verdict.XFAIL, "keep-alive idle time is 75 s here")
    fail = apply(result("rfc1122/keepalive/idle_2h.pkt", Verdict.FAIL), linux)
    assert fail.verdict is Verdict.XFAIL


@pytest.mark.parametrize("verdict", [Verdict.SKIP, Verdict.XFAIL, Verdict.XPASS])
def test_skips_and_already_rewritten_results_stay(linux: Expectations, verdict: Verdict) -> None:
    before = result("rfc9293/segment_arrival/rst_a.pkt", verdict, reason="as it was")
    assert apply(before, linux) is before


@pytest.mark.parametrize("verdict", list(Verdict))
def test_unlisted_results_stay(linux: Expectations, verdict: Verdict) -> None:
    before = result("rfc9293/handshake/syn.pkt", verdict, reason="r")
    assert apply(before, linux) is before


def test_apply_twice_changes_nothing_more(linux: Expectations) -> None:
    for verdict in Verdict:
        once = apply(result("rfc9293/segment_arrival/rst_a.pkt", verdict), linux)
        assert apply(once, linux) == once


def test_apply_refuses_another_targets_expectations(linux: Expectations) -> None:
    with pytest.raises(ValueError, match="'linux' applied to a result of 'refstack'"):
        apply(result("rfc9293/segment_arrival/rst_a.pkt", Verdict.FAIL, "refstack"), linux)


def test_unused_entries_are_the_ones_that_matched_no_case(linux: Expectations) -> None:
    assert linux.unused_entries() == list(linux.entries)
    run = [
        result("rfc9293/segment_arrival/rst_a.pkt", Verdict.FAIL),
        result("rfc9293/handshake/syn.pkt", Verdict.PASS),
        result("python/test_frag.py::test_overlap_head", Verdict.SKIP, reason="no fragments"),
    ]
    out = [apply(r, linux) for r in run]
    assert [r.verdict for r in out] == [Verdict.XFAIL, Verdict.PASS, Verdict.SKIP]
    assert [e.case for e in linux.unused_entries()] == [
        "rfc1122/keepalive/idle_*.pkt",
        "rfc9293/never/matches.pkt",
    ]


def test_an_entry_is_a_frozen_value(linux: Expectations) -> None:
    entry = linux.entries[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.reason = "changed"  # type: ignore[misc]
    assert entry.matches("rfc9293/segment_arrival/rst_z.pkt")
    assert "Expectations(target='linux', entries=4" in repr(linux)


# -- entries pinned to the script line where the divergence shows -----------------------


def pinned(tmp_path: Path, line: object) -> Expectations:
    text = f'[[xfail]]\ncase = "a.pkt"\nreason = "D1: Linux accepts RCV.NXT+RCV.WND"\nline = {line}\n'
    (tmp_path / "linux.toml").write_text(text, encoding="utf-8")
    return Expectations.load(tmp_path / "linux.toml", "linux", root=tmp_path)


def test_a_pinned_entry_explains_a_failure_at_its_line(tmp_path: Path) -> None:
    rewritten = apply(result(str(tmp_path / "a.pkt"), Verdict.FAIL), pinned(tmp_path, 7))
    assert rewritten.verdict is Verdict.XFAIL
    assert rewritten.reason == "D1: Linux accepts RCV.NXT+RCV.WND"


def test_a_pinned_entry_leaves_a_failure_elsewhere_failing_and_says_so(tmp_path: Path) -> None:
    rewritten = apply(result(str(tmp_path / "a.pkt"), Verdict.FAIL, reason="boom"), pinned(tmp_path, 12))
    assert rewritten.verdict is Verdict.FAIL
    assert rewritten.reason.startswith(
        "boom (a known divergence is listed at line 12, but this failure is at line 7"
    )


def test_a_pinned_entry_still_turns_a_pass_into_xpass(tmp_path: Path) -> None:
    rewritten = apply(result(str(tmp_path / "a.pkt"), Verdict.PASS), pinned(tmp_path, 12))
    assert rewritten.verdict is Verdict.XPASS


@pytest.mark.parametrize("bad", ["0", "-3", '"7"', "true", "1.5"])
def test_a_pin_must_be_a_positive_line_number(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ExpectationsError, match="'line' must be a script line number"):
        pinned(tmp_path, bad)
