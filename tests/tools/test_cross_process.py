"""Issue 4's Must-show: a stack in one process is visible to ``stackdump lots`` and
``fuser`` from another, and ``tcpdump`` writes a pcap that ``tshark -r`` reads with
the expected packet count.

The stacks live in a child process (tests/tools/live_stack.py: two stacks on a
MemoryLink, driven in real time, a TCP connection exchanging data); every tool runs as
``python -m refstack ...`` in a process of its own.  The child is always killed and
its socket files removed, whether the test passes or not.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from refstack import control

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("live_stack.py")
START_TIMEOUT = 60.0


@dataclass
class Live:
    proc: subprocess.Popen[str]
    rundir: Path
    env: dict[str, str]

    def tool(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "refstack", *argv],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
            cwd=self.rundir.parent,
        )


def start(rundir: Path, *extra: str) -> Live:
    env = {**os.environ, "PYTHONPATH": str(ROOT), control.RUNTIME_DIR_ENV: str(rundir)}
    proc = subprocess.Popen(
        [sys.executable, str(HELPER), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    live = Live(proc, rundir, env)
    try:
        assert proc.stdout is not None
        line = _readline(proc, START_TIMEOUT)
        if line.strip() != "ready":
            raise AssertionError(f"helper said {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}")
    except BaseException:
        stop(live)
        raise
    return live


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"the helper did not print 'ready' within {timeout} s")
    return proc.stdout.readline()


def stop(live: Live) -> None:
    """Kill the child (SIGKILL if SIGTERM is not enough) and remove what it left."""
    if live.proc.poll() is None:
        live.proc.kill()
    live.proc.wait(timeout=30)
    for stream in (live.proc.stdout, live.proc.stderr):
        if stream is not None:
            stream.close()
    for path in live.rundir.glob(f"{live.proc.pid}-*.sock"):
        path.unlink(missing_ok=True)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    running = start(tmp_path / "rt")
    try:
        yield running
    finally:
        stop(running)


def test_stackdump_lots_from_another_process(live: Live) -> None:
    done = live.tool("stackdump", "lots")
    assert (done.returncode, done.stderr) == (0, "")
    out = done.stdout
    assert "ci_netif_dump_to_logger: stack=0 name=live-client" in out
    assert "ci_netif_dump_to_logger: stack=1 name=live-server" in out
    assert f"pid={live.proc.pid}" in out
    assert "TCP live-server:" in out and " lcl=0.0.0.0:8080 rmt=0.0.0.0:0 LISTEN" in out
    assert " lcl=10.0.0.2:8080 rmt=10.0.0.1:" in out and "ESTABLISHED" in out
    assert "mcast: member of 239.1.2.3 on eth0" in out
    assert "ci_netif_stats: 1" in out and "tcp_rx_bytes: " in out  # data is flowing
    assert "# The filters Onload would install" in out and "ACCELERATED (sharing wild)" in out
    assert "EF_MAX_ENDPOINTS: 8192" in out


def test_stackdump_stacks_and_fuser_see_the_process(live: Live) -> None:
    pid = live.proc.pid
    stacks = live.tool("stackdump", "stacks")
    assert stacks.returncode == 0
    assert stacks.stdout.splitlines() == [
        "#stack-id stack-name      pids",
        f"0         live-client      {pid}",
        f"1         live-server      {pid}",
    ]
    fuser = live.tool("fuser")
    assert fuser.returncode == 0
    header, row = fuser.stdout.splitlines()
    assert header == "#pid      stacks           cmdline"
    assert row.startswith(f"{pid:<9d} live-client,live-server ") and row.endswith("live_stack.py")
    assert live.tool("fuser", "--pids").stdout == f"{pid}\n"


@pytest.mark.parametrize("count", [7])
def test_tcpdump_writes_a_pcap_tshark_reads(live: Live, count: int) -> None:
    pcap = live.rundir.parent / "out.pcap"
    done = live.tool("tcpdump", "-c", str(count), "-w", str(pcap), "live-server")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"{count} packets captured on live-server/eth0 (linktype 1)\n"
    tshark = shutil.which("tshark")
    if tshark is None:
        pytest.skip("tshark is not installed: cannot read the pcap back")
    read = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.number", "-e", "ip.src", "-e", "tcp.port"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    rows = read.stdout.splitlines()
    assert len(rows) == count
    assert all(row.split("\t")[1] in ("10.0.0.1", "10.0.0.2") for row in rows)
    assert any("8080" in row for row in rows)


def test_tcpdump_ip_only_interfaces_are_linktype_raw(tmp_path: Path) -> None:
    running = start(tmp_path / "rt", "--ip-only", "--prefix", "raw")
    try:
        pcap = tmp_path / "raw.pcap"
        done = running.tool("tcpdump", "-c", "3", "-w", str(pcap), "raw-client")
        assert done.returncode == 0, done.stderr
        assert "(linktype 101)" in done.stderr
        with pcap.open("rb") as f:
            reader = dpkt.pcap.Reader(f)
            assert reader.datalink() == 101 and len(list(reader)) == 3
    finally:
        stop(running)


def test_sockets_go_with_the_process(live: Live) -> None:
    pid = live.proc.pid
    assert sorted(p.name for p in live.rundir.iterdir()) == [
        f"{pid}-live-client.sock",
        f"{pid}-live-server.sock",
    ]
    live.proc.send_signal(signal.SIGTERM)  # a clean exit removes its sockets
    assert live.proc.wait(timeout=30) == 0
    assert list(live.rundir.iterdir()) == []


def test_a_killed_process_leaves_stale_sockets_the_tools_remove(live: Live) -> None:
    live.proc.kill()  # no clean-up possible
    live.proc.wait(timeout=30)
    assert len(list(live.rundir.iterdir())) == 2
    done = live.tool("stackdump", "stacks")
    assert done.returncode == 2 and done.stderr.startswith(
        "refstack stackdump: error: no refstack stacks are running"
    )
    assert list(live.rundir.iterdir()) == []
