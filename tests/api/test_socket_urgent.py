"""TCP urgent data through refstack.socket and refstack.select, as on Linux.

MSG_OOB sends and receives, SO_OOBINLINE, POLLPRI (select's exceptional set) and
sockatmark; each result here was first checked with Python's own socket module over
the loopback of a Linux 6.18 network namespace.  Stack A (10.0.0.1) and stack B
(10.0.0.2) share a 125 ms MemoryLink.
"""

from __future__ import annotations

import errno

import pytest

from refstack import socket as rs
from refstack.select import EPOLLIN, EPOLLPRI, POLLIN, POLLPRI, epoll, poll, select
from refstack.wire.tcp import URG
from tests.api.harness import DELAY, Net, errno_of


def _settle(net: Net) -> None:
    net.sim.run_for(1.0)


def test_msg_oob_sets_urg_and_the_peer_reads_the_octet_out_of_band(net: Net) -> None:
    """RFC 9293 §3.8.5: URG with the pointer after the urgent data (RFC 6093, MUST-62);
    the receiver learns of it at the arrival instant (POLLPRI, MUST-32) and reads the
    last urgent octet out of band, the rest in band."""
    _, client, conn = net.connected()
    sent_at = net.now()
    assert client.send(b"abc", rs.MSG_OOB) == 3
    assert select([], [], [conn], 5.0) == ([], [], [conn])
    assert net.now() == sent_at + DELAY
    urgent = [s for s in net.segments() if s.flags & URG]
    assert [(s.payload, s.urgent_pointer) for s in urgent] == [(b"abc", 3)]
    assert conn.recv(1, rs.MSG_OOB | rs.MSG_PEEK) == b"c"
    assert conn.recvmsg(1, 0, rs.MSG_OOB) == (b"c", [], rs.MSG_OOB, None)
    assert select([], [], [conn], 0) == ([], [], [])
    assert conn.recv(10) == b"ab"
    with pytest.raises(OSError) as excinfo:
        conn.recv(1, rs.MSG_OOB)  # already read
    assert errno_of(excinfo) == errno.EINVAL


def test_a_lone_urgent_octet_is_pollpri_not_pollin(net: Net) -> None:
    """Linux tcp_poll: the octet at the mark does not count as readable data."""
    _, client, conn = net.connected()
    client.send(b"!", rs.MSG_OOB)
    _settle(net)
    p = poll()
    p.register(conn, POLLIN | POLLPRI)
    assert p.poll(0) == [(conn.fileno(), POLLPRI)]
    ep = epoll(runtime=net.b)
    ep.register(conn, EPOLLIN | EPOLLPRI)
    assert ep.poll(0) == [(conn.fileno(), EPOLLPRI)]
    assert rs.sockatmark(conn)
    assert conn.recv(1, rs.MSG_OOB) == b"!"
    assert p.poll(0) == []
    conn.setblocking(False)
    with pytest.raises(BlockingIOError):
        conn.recv(10)  # skips the octet
    assert not rs.sockatmark(conn)
    client.send(b"xy")
    _settle(net)
    assert p.poll(0) == [(conn.fileno(), POLLIN)]
    assert conn.recv(10) == b"xy"


def test_reads_stop_at_the_mark_even_with_msg_waitall(net: Net) -> None:
    """Linux tcp_recvmsg stops at the urgent mark once it has copied anything."""
    _, client, conn = net.connected()
    client.send(b"ab")
    client.send(b"U", rs.MSG_OOB)
    client.send(b"cd")
    _settle(net)
    assert conn.recv(10, rs.MSG_WAITALL) == b"ab"
    assert rs.sockatmark(conn)
    assert conn.recv(10, rs.MSG_PEEK) == b"cd"
    assert conn.recv(1, rs.MSG_OOB) == b"U"
    assert conn.recv(10) == b"cd"


def test_a_newer_urgent_octet_replaces_an_unread_one(net: Net) -> None:
    _, client, conn = net.connected()
    client.send(b"12A", rs.MSG_OOB)
    client.send(b"34B", rs.MSG_OOB)
    _settle(net)
    assert conn.recv(1, rs.MSG_OOB) == b"B"
    assert conn.recv(100) == b"12A34"


def test_so_oobinline_leaves_the_octet_in_the_stream(net: Net) -> None:
    """RFC 6093 §5; Linux: the accepted socket inherits the option from the listener."""
    listener = net.server()
    listener.setsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE, 1)
    client = net.tcp(net.a)
    client.connect(("10.0.0.2", listener.getsockname()[1]))
    conn, _ = listener.accept()
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE) == 1
    client.send(b"abc", rs.MSG_OOB)
    assert select([], [], [conn], 5.0) == ([], [], [conn])  # POLLPRI all the same
    assert conn.recv(10) == b"ab"  # stops at the mark
    assert conn.recv(10) == b"c"
    with pytest.raises(OSError) as excinfo:
        conn.recv(1, rs.MSG_OOB)
    assert errno_of(excinfo) == errno.EINVAL
    conn.setsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE, 0)
    assert conn.getsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE) == 0


def test_recv_oob_never_waits_and_udp_only_stores_the_option(net: Net) -> None:
    _, _, conn = net.connected()
    at = net.now()
    with pytest.raises(OSError) as excinfo:
        conn.recv(1, rs.MSG_OOB)  # blocking socket, no urgent data: at once
    assert errno_of(excinfo) == errno.EINVAL and net.now() == at
    udp = net.udp(net.a)
    udp.setsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE, 1)  # Linux keeps it for any socket
    assert udp.getsockopt(rs.SOL_SOCKET, rs.SO_OOBINLINE) == 1
    with pytest.raises(OSError) as excinfo:
        rs.sockatmark(udp)
    assert errno_of(excinfo) == errno.ENOTTY
