"""The Session contract, checked on every available target with the same assertions.

Packets on the oracle side are built and parsed with scapy (never refstack.wire).
The expectations are the Linux 6.18 behaviours of GRAMMAR.md §10; a target that
cannot run here (no namespaces) skips with its reason.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator

import pytest
from scapy.layers.inet import IP, TCP

from conformance.target import CaseConfig, Session, Setting, Target, UnsupportedSettingError
from conformance.targets.refstack import RefstackTarget

LOCAL, REMOTE = "192.168.0.1", "192.0.2.1"


def targets() -> list[Target]:
    found: list[Target] = [RefstackTarget()]
    try:
        from conformance.targets.linux import LinuxTarget
    except ImportError:
        return found
    found.append(LinuxTarget())
    return found


@pytest.fixture(params=targets(), ids=lambda t: t.name)
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    target: Target = request.param
    ok, why = target.available()
    if not ok:
        pytest.skip(f"{target.name} unavailable: {why}")
    s = target.open(CaseConfig(name=request.node.name))
    try:
        yield s
    finally:
        s.close()


def tcp_in(
    flags: str,
    seq: int,
    ack: int = 0,
    *,
    options: list | None = None,
    payload: bytes = b"",  # type: ignore[type-arg]
    win: int = 65535,
    sport: int = 40000,
    dport: int = 8080,
) -> bytes:
    pkt = IP(src=REMOTE, dst=LOCAL) / TCP(
        sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=win, options=options or []
    )
    return bytes(pkt / payload) if payload else bytes(pkt)


def sniff_tcp(s: Session, within: float = 1.0) -> TCP:
    got = s.sniff(s.now() + within)
    assert got is not None, "expected a segment, got nothing"
    ip = IP(got.packet)
    assert ip.src == LOCAL and ip.dst == REMOTE
    return ip[TCP]


def done(s: Session, name: str, *args: object) -> int:
    call = s.syscall(name, args)
    assert s.wait(call, s.now() + 1.0), f"{name} did not return"
    assert call.result is not None
    return call.result.ret


def listener(s: Session) -> int:
    fd = done(s, "socket", socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    assert fd >= 3
    assert done(s, "setsockopt", fd, socket.SOL_SOCKET, socket.SO_REUSEADDR, 1) == 0
    assert done(s, "bind", fd, (LOCAL, 8080)) == 0
    assert done(s, "listen", fd, 1) == 0
    return fd


def test_passive_open_data_and_blocking_accept(session: Session) -> None:
    """GRAMMAR.md §10 first example: SYN-ACK options, accept blocks until the ACK."""
    s = session
    fd = listener(s)
    accept = s.syscall("accept", (fd,))
    assert not accept.done
    s.inject(
        tcp_in(
            "S",
            0,
            options=[
                ("MSS", 1460),
                ("SAckOK", b""),
                ("NOP", None),
                ("NOP", None),
                ("NOP", None),
                ("WScale", 7),
            ],
        )
    )
    synack = sniff_tcp(s)
    assert synack.flags == "SA" and synack.ack == 1
    assert [o[0] for o in synack.options] == ["MSS", "NOP", "NOP", "SAckOK", "NOP", "WScale"]
    assert dict((k, v) for k, v in synack.options if k in ("MSS", "WScale")) == {"MSS": 1460, "WScale": 10}
    iss = synack.seq
    assert not accept.done
    s.inject(tcp_in("A", 1, iss + 1, win=514))
    assert s.wait(accept, s.now() + 1.0) and accept.result is not None
    conn = accept.result.ret
    assert conn > fd
    s.inject(tcp_in("PA", 1, iss + 1, win=514, payload=b"x" * 100))
    ack = sniff_tcp(s)
    assert ack.flags == "A" and ack.ack == 101 and ack.seq == iss + 1
    read = s.syscall("read", (conn, 100))
    assert s.wait(read, s.now() + 1.0) and read.result is not None and read.result.ret == 100


def test_active_open_refused(session: Session) -> None:
    """GRAMMAR.md §10 second example: non-blocking connect, RST,ACK -> ECONNREFUSED."""
    s = session
    fd = done(s, "socket", socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    assert done(s, "fcntl", fd, fcntl.F_SETFL, os.O_RDWR | os.O_NONBLOCK) == 0
    call = s.syscall("connect", (fd, (REMOTE, 8080)))
    assert call.done and call.result is not None
    assert (call.result.ret, call.result.errno) == (-1, errno.EINPROGRESS)
    syn = sniff_tcp(s)
    assert syn.flags == "S" and syn.dport == 8080
    assert [o[0] for o in syn.options] == ["MSS", "SAckOK", "Timestamp", "NOP", "WScale"]
    s.inject(tcp_in("RA", 0, syn.seq + 1, win=0, sport=8080, dport=syn.sport))
    err = s.syscall("getsockopt", (fd, socket.SOL_SOCKET, socket.SO_ERROR, 4))
    assert s.wait(err, s.now() + 1.0) and err.result is not None and err.result.value == errno.ECONNREFUSED


def test_syn_backoff_with_linear_timeouts_off(session: Session) -> None:
    """GRAMMAR.md §10 third example: SYNs at 0, +1, +2 (RFC 6298 §5.5 doubling)."""
    s = session
    ok, why = s.apply(Setting("sysctl", "net.ipv4.tcp_syn_linear_timeouts", "0"))
    assert ok, why
    fd = done(s, "socket", socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    done(s, "fcntl", fd, fcntl.F_SETFL, os.O_RDWR | os.O_NONBLOCK)
    s.syscall("connect", (fd, (REMOTE, 8080)))
    start = s.now()
    times = []
    for _ in range(3):
        got = s.sniff(s.now() + 5.0)
        assert got is not None
        times.append(got.time - start)
    assert times[0] == pytest.approx(0, abs=0.05)
    assert times[1] == pytest.approx(1, abs=0.05)
    assert times[2] == pytest.approx(3, abs=0.05)


def test_refstack_runs_ten_seconds_of_script_time_fast() -> None:
    """Virtual time: 10 s of waiting costs milliseconds of real time."""
    s = RefstackTarget().open(CaseConfig(name="fast"))
    try:
        wall = time.perf_counter()
        s.sleep_until(10.0)
        assert s.now() == 10.0 and time.perf_counter() - wall < 0.5
    finally:
        s.close()


def test_refstack_skips_shell_commands_it_does_not_model() -> None:
    s = RefstackTarget().open(CaseConfig(name="shell"))
    try:
        assert s.apply(Setting("shell", "ethtool -K tun0 tso off gso off")) == (True, "")
        with pytest.raises(UnsupportedSettingError, match="no offloads to turn on"):
            s.apply(Setting("shell", "ethtool -K tun0 tso on"))
        with pytest.raises(UnsupportedSettingError, match="not modelled"):
            s.apply(Setting("shell", "tc qdisc add dev tun0 root pfifo"))
        assert s.apply(Setting("shell", "sysctl -q net.ipv4.tcp_sack=0")) == (True, "")
        assert not s.stack.profile.tcp_sack  # type: ignore[attr-defined]
        assert s.apply(Setting("sysctl", "net.ipv4.tcp_congestion_control", "reno")) == (True, "")
        for key, value in (("net.ipv4.tcp_congestion_control", "bbr"), ("net.ipv4.tcp_autocorking", "0")):
            with pytest.raises(UnsupportedSettingError, match="not modelled"):
                s.apply(Setting("sysctl", key, value))
    finally:
        s.close()
