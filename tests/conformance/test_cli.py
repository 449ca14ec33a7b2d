"""``python -m conformance check``: exit codes, output format, directories, -D."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main

SCRIPTS = Path(__file__).parent / "scripts"
GOOD = "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 close(3) = 0\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.pkt").write_text(GOOD)
    (tmp_path / "a.pkt").write_text(GOOD + "+0 close(4) = 0\n")
    (tmp_path / "notes.txt").write_text("not a script")
    return tmp_path


def test_good_file_is_silent_without_verbose(tree: Path) -> None:
    assert run("check", str(tree / "a.pkt")) == (0, "", "")


def test_verbose_prints_ok_and_event_count(tree: Path) -> None:
    status, out, err = run("check", "-v", str(tree / "a.pkt"))
    assert (status, out, err) == (0, f"{tree / 'a.pkt'}: ok (3 events)\n", "")


def test_directory_means_every_pkt_under_it_sorted(tree: Path) -> None:
    status, out, _ = run("check", "-v", str(tree))
    assert status == 0
    assert out.splitlines() == [
        f"{tree / 'a.pkt'}: ok (3 events)",
        f"{tree / 'b' / 'two.pkt'}: ok (2 events)",
    ]


def test_the_grammar_examples_check() -> None:
    status, out, err = run("check", "-v", str(SCRIPTS))
    assert (status, err) == (0, "")
    assert f"{SCRIPTS / 'passive_open_peer_close.pkt'}: ok (15 events)" in out.splitlines()


def test_every_error_is_printed_as_path_line_col(tree: Path) -> None:
    bad = tree / "bad.pkt"
    bad.write_text(GOOD + "+0 > S 0:10(5)\n+0 close(3 4) = 0\n")
    status, out, err = run("check", "-v", str(bad), str(tree / "a.pkt"))
    assert status == 2
    assert err.splitlines() == [
        f"{bad}:3:10: inconsistent sequence range 0:10(5): END must be START + LEN = 5",
        f"{bad}:4:12: expected ')' after syscall arguments, got '4'",
    ]
    assert out == f"{tree / 'a.pkt'}: ok (3 events)\n"  # the other files are still checked


def test_defines(tree: Path) -> None:
    script = tree / "icmp.pkt"
    script.write_text(GOOD + "+0 < icmp unreachable CODE\n")
    status, _, err = run("check", str(script))
    assert status == 2 and "bad ICMP code CODE" in err
    assert run("check", "-D", "CODE=host_unreachable", str(script)) == (0, "", "")
    assert run("check", "-DCODE=port_unreachable", "--define", "X=1", str(script))[0] == 0


def test_missing_path_is_an_error(tree: Path) -> None:
    status, _, err = run("check", str(tree / "nope.pkt"), str(tree / "a.pkt"))
    assert status == 2 and err == f"{tree / 'nope.pkt'}: no such file or directory\n"


def test_directory_without_scripts_is_an_error(tmp_path: Path) -> None:
    status, _, err = run("check", str(tmp_path))
    assert status == 2 and "no .pkt files" in err


def test_directory_named_like_a_script_is_skipped(tree: Path) -> None:
    (tree / "dir.pkt").mkdir()
    status, out, _ = run("check", "-v", str(tree))
    assert status == 0 and "dir.pkt" not in out


def test_read_error_is_reported_without_traceback(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, defines: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("conformance.cli.parse_file", refuse)
    status, _, err = run("check", str(tree / "a.pkt"))
    assert (status, err) == (2, f"{tree / 'a.pkt'}: cannot read: Permission denied\n")


@pytest.mark.parametrize(
    "argv",
    [[], ["check"], ["frobnicate"], ["check", "-D", "NOEQUALS", "x.pkt"], ["check", "--nope", "x.pkt"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*argv)[0] == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check", "--help")[0] == 0
    assert "-D SYM=VAL" in capsys.readouterr().out


def test_module_entry_point(tree: Path) -> None:
    bad = tree / "bad.pkt"
    bad.write_text("1 close(3) = 0\n")
    done = subprocess.run(
        [sys.executable, "-m", "conformance", "check", "-v", str(tree)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == f"{bad}:1:1: the first event must be at time 0, got 1\n"
    assert f"{tree / 'a.pkt'}: ok (3 events)" in done.stdout
