"""``refstack`` CLI in one process: output of each tool, and bad input as one line with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from refstack import control
from refstack.cli import main
from refstack.control import ControlEndpoint
from tests.tools.scene import make_scene

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rundir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "rt"
    monkeypatch.setenv(control.RUNTIME_DIR_ENV, str(d))
    return d


@pytest.fixture
def served(rundir: Path) -> Iterator[list[ControlEndpoint]]:
    scene = make_scene()
    with ControlEndpoint(scene.net.a.stack) as a, ControlEndpoint(scene.net.b.stack) as b:
        yield [a, b]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as e:  # argparse: --help and bad options
        status = int(e.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def test_stackdump_defaults_to_stacks(
    served: list[ControlEndpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(capsys, "stackdump")
    pid = os.getpid()
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "#stack-id stack-name      pids",
        f"0         a                {pid}",
        f"1         b                {pid}",
    ]


def test_stackdump_selects_stacks_by_name_or_id(
    served: list[ControlEndpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    status, by_name, _ = run(capsys, "stackdump", "b", "netstat")
    assert status == 0 and by_name.startswith("TCP 0 128 0.0.0.0:8080 0.0.0.0:0 LISTEN\n")
    assert run(capsys, "stackdump", "1", "netstat")[1] == by_name
    status, out, _ = run(capsys, "stackdump", "lots")
    assert status == 0
    assert (
        "ci_netif_dump_to_logger: stack=0 name=a" in out and "ci_netif_dump_to_logger: stack=1 name=b" in out
    )
    status, out, _ = run(capsys, "stackdump", "a", "stats", "opts")
    assert out.startswith("-------------------- ci_netif_stats: 0 ----") and "EF_NO_FAIL: 1" in out


def test_processes_and_fuser(served: list[ControlEndpoint], capsys: pytest.CaptureFixture[str]) -> None:
    pid = os.getpid()
    cmdline = " ".join(control.process_cmdline())
    assert run(capsys, "stackdump", "processes")[1].splitlines() == [
        "#pid      stack-id cmdline",
        f"{pid:<9d} 0        {cmdline}",
        f"{pid:<9d} 1        {cmdline}",
    ]
    assert run(capsys, "fuser")[1].splitlines() == [
        "#pid      stacks           cmdline",
        f"{pid:<9d} a,b{' ' * 14}{cmdline}",
    ]
    assert run(capsys, "fuser", "--pids") == (0, f"{pid}\n", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stackdump", "lots"], "refstack stackdump: error: no refstack stacks are running"),
        (["stackdump"], "refstack stackdump: error: no refstack stacks are running"),
        (["fuser"], "refstack fuser: error: no refstack stacks are running"),
        (["tcpdump", "b"], "refstack tcpdump: error: no refstack stacks are running"),
    ],
)
def test_no_stacks_running(
    rundir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["stackdump", "zz", "lots"],
            "refstack stackdump: error: no stack or command named 'zz' (running stacks: 0:a, 1:b)",
        ),
        (["stackdump", "lotz"], "refstack stackdump: error: no stack or command named 'lotz'"),
        (["tcpdump", "zz"], "refstack tcpdump: error: no stack named 'zz' (running stacks: 0:a, 1:b)"),
        (
            ["tcpdump", "-i", "eth9", "a"],
            "refstack tcpdump: error: stack a has no interface 'eth9' (it has lo, eth0)",
        ),
        (
            ["tcpdump", "-c", "0", "a"],
            "refstack tcpdump: error: argument -c: COUNT must be a positive number, not 0",
        ),
        (
            ["tcpdump", "-c", "many", "a"],
            "refstack tcpdump: error: argument -c: COUNT must be a positive number",
        ),
        (["tcpdump"], "refstack tcpdump: error: the following arguments are required: STACK"),
        (
            ["tcpdump", "-w", "/nonexistent/dir/x.pcap", "a"],
            "refstack tcpdump: error: cannot write /nonexistent",
        ),
        (["stackdump", "--bogus"], "refstack stackdump: error: unrecognized arguments: --bogus"),
        (["fuser", "-x"], "refstack fuser: error: unrecognized arguments: -x"),
        (["frobnicate"], "refstack: error: argument TOOL: invalid choice: 'frobnicate'"),
        ([], "refstack: error: the following arguments are required: TOOL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    served: list[ControlEndpoint], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("tool", ["stackdump", "fuser", "tcpdump"])
def test_every_tool_has_help(capsys: pytest.CaptureFixture[str], tool: str) -> None:
    status, out, _ = run(capsys, tool, "--help")
    assert status == 0 and out.startswith(f"usage: refstack {tool}")
    assert "--runtime-dir" in out


def test_stackdump_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "stackdump", "--help")[1]
    for command in ("stacks", "processes", "lots", "stats", "netstat", "filters", "opts"):
        assert f"\n  {command} " in out


def test_runtime_dir_option(
    served: list[ControlEndpoint], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "stackdump", "--runtime-dir", str(tmp_path / "empty"), "stacks")
    assert status == 2 and "empty" in err


def test_python_dash_m_and_the_console_script_entry() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), control.RUNTIME_DIR_ENV: "/nonexistent/refstack-test"}
    done = subprocess.run(
        [sys.executable, "-m", "refstack", "fuser"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == (
        "refstack fuser: error: no refstack stacks are running"
        " (no control sockets answer in /nonexistent/refstack-test)\n"
    )
    assert 'refstack = "refstack.cli:main"' in (ROOT / "pyproject.toml").read_text()
