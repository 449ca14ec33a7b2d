"""The Linux target: a TUN device in a private network namespace, driven end to end.

Every session a test opens is checked on the way out: its namespace must be gone
(no task and no open file on the machine refers to it) and no thread of ours may be
left inside it.  Packets are built and parsed with scapy (tests/conformance_linux/packets.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.netns import destroy_sockets, task_netns_inodes
from conformance.target import Call, CaseConfig, Setting, UnsupportedSettingError
from conformance.targets.linux import CaseTimeoutError, LinuxSession, LinuxTarget, SettingError
from tests.conformance_linux import packets
from tests.conformance_linux.packets import LOCAL, REMOTE

REPO = Path(__file__).resolve().parents[2]
TCP_INFO_LEN = 232


@pytest.fixture(scope="module")
def target() -> LinuxTarget:
    t = LinuxTarget()
    ok, why = t.available()
    if not ok:
        pytest.skip(f"linux target unavailable: {why}")
    return t


def _lsns_net() -> set[int]:
    out = subprocess.run(["lsns", "-t", "net", "-n", "-o", "NS"], capture_output=True, text=True, check=False)
    return {int(x) for x in out.stdout.split()}


def _threads_in(inode: int) -> list[int]:
    tids = []
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.stat(f"/proc/self/task/{tid}/ns/net").st_ino == inode:
                tids.append(int(tid))
        except OSError:
            pass
    return tids


def _gone(inode: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while inode in task_netns_inodes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def open_session(target: LinuxTarget) -> Iterator[Callable[..., LinuxSession]]:
    """Open sessions; afterwards close them and check that nothing is left."""
    sessions: list[LinuxSession] = []

    def opener(case: CaseConfig | None = None, **kw: object) -> LinuxSession:
        s = target.open(case or CaseConfig("test"), **kw)  # type: ignore[arg-type]
        sessions.append(s)
        return s

    yield opener
    for s in sessions:
        s.close()
    for s in sessions:
        assert s.threads() == []
        assert _threads_in(s.netns.inode) == []
        assert _gone(s.netns.inode), f"namespace {s.netns.inode} still referenced"


def ok(call: Call) -> int:
    assert call.result is not None, f"{call.name} did not finish"
    assert call.result.ret >= 0, f"{call.name}{call.args} failed: {errno.errorcode.get(call.result.errno)}"
    return call.result.ret


def listener(s: LinuxSession, port: int = 8080) -> int:
    fd = ok(s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)))
    ok(s.syscall("setsockopt", (fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)))
    ok(s.syscall("bind", (fd, (LOCAL, port))))
    ok(s.syscall("listen", (fd, 8)))
    return fd


def handshake(s: LinuxSession, sport: int = 40000, window: int = 65535) -> tuple[int, object]:
    """SYN in, SYN-ACK out, ACK in; returns (the SYN-ACK's ISN, the SYN-ACK)."""
    s.inject(packets.syn(sport=sport))
    got = s.sniff(s.now() + 1.0)
    assert got is not None, "no SYN-ACK"
    synack = packets.parse(got.packet)
    assert packets.flags(synack) == "SA"
    isn = int(synack["TCP"].seq)
    s.inject(packets.tcp("A", 1, isn + 1, sport=sport, window=window))
    return isn, synack


# --- set-up and teardown ------------------------------------------------------------


def test_available_is_cached(target: LinuxTarget) -> None:
    assert target.available() == (True, "")
    assert LinuxTarget().available() is target.available()


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unavailable_without_privileges(target: LinuxTarget) -> None:
    """Without capabilities (still uid 0) the probe fails and says why."""
    probe = "from conformance.targets.linux import LinuxTarget as T; t = T(); print(t.available()[1])"
    drop = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--ambient-caps", "-all", "--"]
    out = subprocess.run(
        [*drop, sys.executable, "-c", probe],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("cannot create a network namespace"), out


def _fd_targets() -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def _ip(*args: str) -> Any:
    """``ip -j ARGS`` as parsed JSON (run it inside a namespace with ``netns.run``)."""
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_open_configures_tun0_and_close_removes_everything(target: LinuxTarget) -> None:
    fds_before = _fd_targets()
    namespaces_before = task_netns_inodes()
    s = target.open(CaseConfig("setup", mtu=1400))
    inode = s.netns.inode
    assert inode not in namespaces_before and inode in task_netns_inodes()
    # (lsns cannot see it: only threads are in it, never a process leader)
    assert "/dev/net/tun" in _fd_targets() and f"net:[{inode}]" in _fd_targets()
    # The thread that created the namespace may still be exiting for a moment under
    # load: wait (bounded) until only the session's own threads are inside.
    expected = sorted(t.native_id or 0 for t in s.threads())
    deadline = time.monotonic() + 2.0
    while sorted(_threads_in(inode)) != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(_threads_in(inode)) == expected
    assert len(s.threads()) >= 2  # a syscall worker and the capture thread

    links = {link["ifname"]: link for link in s.netns.run(lambda: _ip("link", "show"))}
    assert set(links) == {"lo", "tun0"}
    assert links["tun0"]["mtu"] == 1400 and "UP" in links["tun0"]["flags"]
    assert "UP" in links["lo"]["flags"]
    addrs = s.netns.run(lambda: _ip("-4", "addr", "show", "dev", "tun0"))
    assert [(a["local"], a["prefixlen"]) for a in addrs[0]["addr_info"]] == [(LOCAL, 16)]
    routes = s.netns.run(lambda: _ip("-4", "route", "show", "dev", "tun0"))
    assert {"dst": "192.0.2.0/24", "gateway": LOCAL} in [
        {"dst": r["dst"], "gateway": r.get("gateway")} for r in routes
    ]
    assert not os.path.exists("/sys/class/net/tun0")  # none of it is visible from the host

    s.close()
    s.close()  # idempotent
    assert s.threads() == [] and _threads_in(inode) == []
    fds_after = _fd_targets()
    assert "/dev/net/tun" not in fds_after and f"net:[{inode}]" not in fds_after
    assert len(fds_after) == len(fds_before)  # every socket and pipe closed too
    assert _gone(inode)
    assert inode not in _lsns_net()
    with pytest.raises(RuntimeError, match="closed"):
        s.inject(b"")


def test_close_ends_every_blocked_call(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    lfd = listener(s)
    handshake(s)
    conn = ok(s.syscall("accept", (lfd,)))
    blocked = [s.syscall("accept", (lfd,))]  # accept with an empty queue
    blocked.append(s.syscall("read", (conn, 100)))  # read with nothing to read
    blocked.append(s.syscall("poll", ([(conn, select.POLLIN)], -1)))  # poll forever
    epfd = ok(s.syscall("epoll_create", (1,)))
    blocked.append(s.syscall("epoll_wait", (epfd, 4, -1)))  # epoll on nothing, forever
    cfd = ok(s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)))
    blocked.append(s.syscall("connect", (cfd, (REMOTE, 8080))))  # SYN_SENT
    assert [c.done for c in blocked] == [False] * 5
    t = time.monotonic()
    s.close()
    assert time.monotonic() - t < 1.0
    assert all(c.done for c in blocked), [c for c in blocked if not c.done]


def test_orphans_of_the_case_are_aborted(open_session: Callable[..., LinuxSession]) -> None:
    """A socket the case closes with data unacknowledged lingers as an orphan that
    would keep the namespace alive in the kernel for ~100 s; close() aborts it."""
    s = open_session()
    lfd = listener(s)
    handshake(s)
    afd = ok(s.syscall("accept", (lfd,)))
    assert ok(s.syscall("write", (afd, bytes(3000)))) == 3000
    ok(s.syscall("close", (afd,)))

    def tcp_states() -> list[str]:
        out = subprocess.run(["ss", "-Htan"], capture_output=True, text=True, check=True).stdout
        return sorted(line.split()[0] for line in out.splitlines())

    assert s.netns.run(tcp_states) == ["FIN-WAIT-1", "LISTEN"]
    ok(s.syscall("close", (lfd,)))
    assert s.netns.run(destroy_sockets) == 1
    assert s.netns.run(tcp_states) == []


def test_case_timeout_is_enforced(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session(CaseConfig("timeout", timeout=0.3))
    assert s.sniff(0.05) is None
    with pytest.raises(CaseTimeoutError):
        s.sleep_until(5.0)
    assert 0.3 <= s.now() < 1.0
    with pytest.raises(CaseTimeoutError):
        s.sniff(10.0)


# --- TCP end to end -------------------------------------------------------------------


def test_passive_open_end_to_end(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    lfd = listener(s)
    accept = s.syscall("accept", (lfd,))
    assert not accept.done  # blocks: nothing to accept yet

    t_syn = s.now()
    s.inject(packets.syn(sport=40000, seq=0))
    got = s.sniff(s.now() + 1.0)
    assert got is not None and got.time >= t_syn
    synack = packets.parse(got.packet)
    assert (synack.src, synack.dst, synack["TCP"].sport, synack["TCP"].dport) == (LOCAL, REMOTE, 8080, 40000)
    assert packets.flags(synack) == "SA"
    assert synack["TCP"].ack == 1
    # Linux 6.18, fresh namespace: <mss 1460,nop,nop,sackOK,nop,wscale 10>, win 64240
    assert packets.option_names(synack) == ["MSS", "NOP", "NOP", "SAckOK", "NOP", "WScale"]
    assert packets.option(synack, "MSS") == 1460
    assert packets.option(synack, "WScale") == 10
    assert synack["TCP"].window == 64240
    assert packets.checksums_ok(got.packet)
    assert not accept.done

    isn = int(synack["TCP"].seq)
    t_ack = s.now()
    s.inject(packets.tcp("A", 1, isn + 1))
    assert s.wait(accept, s.now() + 1.0)
    assert accept.result is not None and accept.result.value == (REMOTE, 40000)
    assert accept.finished_at is not None and accept.finished_at >= t_ack
    afd = ok(accept)
    assert afd in s.live_fds()

    # a blocking read finishes when data arrives; the data is ACKed at once (quick-ACK)
    read = s.syscall("read", (afd, 1000))
    assert not read.done
    s.inject(packets.tcp("PA", 1, isn + 1, payload=b"0123456789"))
    assert s.wait(read, s.now() + 1.0)
    assert read.result is not None and (read.result.ret, read.result.value) == (10, b"0123456789")
    got = s.sniff(s.now() + 1.0)
    assert got is not None
    ack = packets.parse(got.packet)
    assert packets.flags(ack) == "A" and ack["TCP"].ack == 11 and ack["TCP"].seq == isn + 1

    info = s.syscall("getsockopt", (afd, socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN))
    assert ok(info) == 0 and isinstance(info.result.value, bytes)  # type: ignore[union-attr]
    assert info.result.value[0] == 1  # type: ignore[index, union-attr]  # tcpi_state: ESTABLISHED
    err = s.syscall("getsockopt", (afd, socket.SOL_SOCKET, socket.SO_ERROR, 4))
    assert err.result is not None and err.result.value == 0
    assert s.syscall("read", (afd, 10)).done is False  # blocks again


def test_active_open_refused(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    fd = ok(s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)))
    flags = ok(s.syscall("fcntl", (fd, fcntl.F_GETFL, 0)))
    ok(s.syscall("fcntl", (fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)))
    connect = s.syscall("connect", (fd, (REMOTE, 8080)))
    assert connect.done and connect.result is not None
    assert (connect.result.ret, connect.result.errno) == (-1, errno.EINPROGRESS)

    got = s.sniff(s.now() + 1.0)
    assert got is not None
    syn = packets.parse(got.packet)
    assert packets.flags(syn) == "S" and (syn.src, syn.dst, syn["TCP"].dport) == (LOCAL, REMOTE, 8080)
    sport, isn = int(syn["TCP"].sport), int(syn["TCP"].seq)
    s.inject(packets.tcp("RA", 0, isn + 1, sport=8080, dport=sport))
    err = s.syscall("getsockopt", (fd, socket.SOL_SOCKET, socket.SO_ERROR, 4))
    assert err.result is not None and err.result.value == errno.ECONNREFUSED


def test_nonblocking_listener_and_readiness(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    lfd = listener(s)
    ok(s.syscall("fcntl", (lfd, fcntl.F_SETFL, os.O_NONBLOCK)))
    again = s.syscall("accept", (lfd,))
    assert again.done and again.result is not None and again.result.errno == errno.EAGAIN

    epfd = ok(s.syscall("epoll_create", (1,)))
    ok(s.syscall("epoll_ctl", (epfd, 1, lfd, select.EPOLLIN)))
    assert ok(s.syscall("epoll_wait", (epfd, 4, 0))) == 0
    waiting = s.syscall("epoll_wait", (epfd, 4, 2000))
    poll = s.syscall("poll", ([(lfd, select.POLLIN)], 2000))
    assert not waiting.done and not poll.done
    handshake(s)
    assert s.wait(waiting, s.now() + 1.0) and s.wait(poll, s.now() + 1.0)
    assert waiting.result is not None and poll.result is not None
    assert (waiting.result.ret, waiting.result.value) == (1, [(lfd, select.EPOLLIN)])
    assert (poll.result.ret, poll.result.value) == (1, [(lfd, select.POLLIN)])
    assert waiting.finished_at is not None and waiting.finished_at < 1.0
    ok(s.syscall("accept", (lfd,)))


def test_python_default_timeout_does_not_leak_in(open_session: Callable[..., LinuxSession]) -> None:
    """socket.setdefaulttimeout would make Python poll() instead of the kernel blocking."""
    s = open_session()
    socket.setdefaulttimeout(5.0)
    try:
        lfd = listener(s)
        ok(s.syscall("fcntl", (lfd, fcntl.F_SETFL, os.O_NONBLOCK)))
        again = s.syscall("accept", (lfd,))
        assert again.result is not None and again.result.errno == errno.EAGAIN
        nfd = ok(s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK, 0)))
        assert ok(s.syscall("fcntl", (nfd, fcntl.F_GETFL, 0))) & os.O_NONBLOCK
        handshake(s)
        afd = ok(s.syscall("accept", (lfd,)))
        assert not ok(s.syscall("fcntl", (afd, fcntl.F_GETFL, 0))) & os.O_NONBLOCK
    finally:
        socket.setdefaulttimeout(None)


def test_bad_fds_and_calls(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    for fd in (s._tun_fd, 0, 999):  # the harness's own fds are not the case's
        call = s.syscall("close", (fd,))
        assert call.result is not None and (call.result.ret, call.result.errno) == (-1, errno.EBADF)
    poll = s.syscall("poll", ([(999, select.POLLIN)], -1))
    assert poll.result is not None and poll.result.value == [(999, select.POLLNVAL)]
    fd = ok(s.syscall("socket", (socket.AF_INET, socket.SOCK_STREAM, 0)))
    bad = s.syscall("bind", (fd, ("not-an-address", 80)))  # never resolved as a host name
    assert bad.result is not None and bad.result.errno == errno.EINVAL
    ok(s.syscall("close", (fd,)))
    assert fd not in s.live_fds()
    with pytest.raises(ValueError):
        s.syscall("ioctl", (fd, 0, 0))


# --- settings -------------------------------------------------------------------------


def _host_sysctl(key: str) -> str:
    return Path("/proc/sys", *key.split(".")).read_text().strip()


def test_sysctls_are_per_namespace(open_session: Callable[..., LinuxSession]) -> None:
    host_before = _host_sysctl("net.ipv4.tcp_sack")
    s = open_session(CaseConfig("nosack", sysctls=(("net.ipv4.tcp_sack", "0"),)))
    assert s.read_sysctl("net.ipv4.tcp_sack") == "0"
    assert _host_sysctl("net.ipv4.tcp_sack") == host_before == "1"
    listener(s)
    s.inject(packets.syn(sport=40001))
    got = s.sniff(s.now() + 1.0)
    assert got is not None
    assert packets.option_names(packets.parse(got.packet)) == ["MSS", "NOP", "WScale"]

    assert s.apply(Setting("sysctl", "net.ipv4.tcp_sack", "1")) == (True, "")
    assert s.read_sysctl("net/ipv4/tcp_sack") == "1"
    s.inject(packets.syn(sport=40002))
    got = s.sniff(s.now() + 1.0)
    assert got is not None and "SAckOK" in packets.option_names(packets.parse(got.packet))

    # a global knob is refused, never written (written here as its own value, to be safe)
    swappiness = _host_sysctl("vm.swappiness")
    applied, why = s.apply(Setting("sysctl", "vm.swappiness", swappiness))
    assert not applied and "not namespace-scoped" in why
    applied, why = s.apply(Setting("sysctl", "net.ipv4.no_such_knob", "1"))
    assert not applied and "no such setting" in why
    with pytest.raises(UnsupportedSettingError, match="refstack only"):
        s.apply(Setting("ef", "EF_POLL_USEC", "100"))


def test_case_sysctl_that_cannot_apply_fails_open(target: LinuxTarget) -> None:
    before = threading.active_count()
    with pytest.raises(SettingError, match="no such setting"):
        target.open(CaseConfig("bad", sysctls=(("net.ipv4.no_such_knob", "1"),)))
    assert threading.active_count() == before


def test_shell_commands_run_in_the_namespace(
    open_session: Callable[..., LinuxSession], tmp_path: Path
) -> None:
    s = open_session(cwd=str(tmp_path))
    assert s.apply(Setting("shell", "ip -o addr show tun0 | grep -q 'inet 192.168.0.1/16'")) == (True, "")
    script = "echo $PACKETDRILL_PID > pid; pwd > cwd; sysctl -qw net.ipv4.tcp_sack=0"
    assert s.apply(Setting("shell", script)) == (True, "")
    assert (tmp_path / "pid").read_text().strip() == str(os.getpid())
    assert (tmp_path / "cwd").read_text().strip() == str(tmp_path)
    assert s.read_sysctl("net.ipv4.tcp_sack") == "0" and _host_sysctl("net.ipv4.tcp_sack") == "1"
    assert s.apply(Setting("shell", "echo oops >&2; exit 3")) == (False, "command exited 3: oops")
    failed, why = s.apply(Setting("shell", "ip link show tun0 >/dev/null && ip link show eth0"))
    assert not failed and why.startswith("command exited 1: ")


def test_shell_command_is_killed_when_the_case_time_runs_out(
    open_session: Callable[..., LinuxSession],
) -> None:
    s = open_session(CaseConfig("slow", timeout=0.5))
    t = time.monotonic()
    done, why = s.apply(Setting("shell", "sleep 5; sleep 5"))
    assert not done and why.startswith("command timed out after")
    assert time.monotonic() - t < 2.0


# --- offloads -------------------------------------------------------------------------


def test_large_write_with_tso(open_session: Callable[..., LinuxSession]) -> None:
    s = open_session()
    lfd = listener(s)
    isn, _ = handshake(s, window=65535)  # wscale 7: an 8 MB window
    afd = ok(s.syscall("accept", (lfd,)))
    assert ok(s.syscall("write", (afd, bytes(10000)))) == 10000
    sizes: list[int] = []
    seqs: list[int] = []
    while sum(sizes) < 10000:
        got = s.sniff(s.now() + 1.0)
        assert got is not None, f"only {sum(sizes)} bytes came out: {sizes}"
        seg = packets.parse(got.packet)
        assert packets.checksums_ok(got.packet)  # offloaded checksums were completed
        assert len(got.packet) == seg.len
        sizes.append(packets.payload_len(seg))
        seqs.append(int(seg["TCP"].seq))
    assert sum(sizes) == 10000
    assert seqs[0] == isn + 1 and all(b - a == n for a, b, n in zip(seqs, seqs[1:], sizes, strict=False))
    # TSO on: one super-packet above the MTU is allowed (and is what 6.18 does here)
    assert all(n <= 65535 - 40 for n in sizes)
    print(f"10000-byte write came out as payloads {sizes}")


# --- kill safety ----------------------------------------------------------------------


kill_safe_shells = pytest.mark.skipif(
    not (shutil.which("setpriv") and shutil.which("unshare")),
    reason="shell commands are kill-safe only with setpriv and unshare (util-linux)",
)


def _hold(sig: int) -> tuple[int, int, subprocess.CompletedProcess[str] | int]:
    """Run hold_session.py, wait until its namespace holds a shell command too,
    send ``sig``; return (namespace inode, pid of the shell, exit status)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.conformance_linux.hold_session"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20.0)
        assert ready, "hold_session did not start"
        info = json.loads(proc.stdout.readline())
        inode = int(info["inode"])
        assert inode in task_netns_inodes()
        shell_pid = 0
        deadline = time.monotonic() + 5.0
        while not shell_pid and time.monotonic() < deadline:
            for pid in os.listdir("/proc"):
                if pid.isdigit() and int(pid) != proc.pid:
                    try:
                        if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                            shell_pid = int(pid)
                    except OSError:
                        pass
            time.sleep(0.01)
        assert shell_pid, "the shell command never started inside the namespace"
        proc.send_signal(sig)
        status = proc.wait(10.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return inode, shell_pid, status


def _assert_nothing_left(inode: int, shell_pid: int) -> None:
    assert _gone(inode), f"namespace {inode} outlived its process"
    assert inode not in _lsns_net()
    deadline = time.monotonic() + 3.0
    while os.path.exists(f"/proc/{shell_pid}") and time.monotonic() < deadline:
        try:  # a zombie (awaiting its reaper) no longer holds a namespace
            if Path(f"/proc/{shell_pid}/stat").read_text().split(") ")[1][0] == "Z":
                break
        except (OSError, IndexError):
            break
        time.sleep(0.02)
    assert not os.path.exists(f"/proc/{shell_pid}/ns/net") or _net_of(shell_pid) != inode
    assert not os.path.exists("/sys/class/net/tun0")
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert " tun0:" not in links
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout == ""
    assert f"net:[{inode}]" not in Path("/proc/self/mountinfo").read_text()


def _net_of(pid: int) -> int:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return -1


@kill_safe_shells
def test_sigkill_mid_case_leaks_nothing(target: LinuxTarget) -> None:
    inode, shell_pid, status = _hold(signal.SIGKILL)
    assert status == -signal.SIGKILL
    _assert_nothing_left(inode, shell_pid)


@kill_safe_shells
def test_ctrl_c_mid_case_leaks_nothing(target: LinuxTarget) -> None:
    inode, shell_pid, status = _hold(signal.SIGINT)
    assert status == 0  # KeyboardInterrupt -> the session closed -> clean exit
    _assert_nothing_left(inode, shell_pid)
