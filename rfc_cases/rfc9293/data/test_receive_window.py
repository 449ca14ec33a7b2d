"""RFC 9293 §3.8.6 receive-window cases that a script cannot say: how many segments a
small receive buffer takes before the DUT advertises a zero window differs between
stacks (Linux charges the whole skb against SO_RCVBUF), so each case fills the window
in a loop until the DUT's ACK says zero, and checks the behaviour from there.

Each case uses a listener with SO_RCVBUF 4000 (Linux doubles it), a peer MSS of 1000
and an application that does not read until the case says so.
"""

from __future__ import annotations

import errno
import itertools
import socket

import pytest
from scapy.layers.inet import TCP

from conformance.case_api import Case, Dut, DutError, TcpConnection, case

MSS = 1000
RCVBUF = 4000
MAX_SEGMENTS = 64  # far more than a 4000-octet buffer can take
IMMEDIATE = 0.03  # well before Linux's 40 ms delayed ACK, with room for a busy machine


def _open(dut: Dut, conn: TcpConnection) -> int:
    lfd = dut.socket()
    dut.setsockopt(lfd, socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    dut.bind(lfd, ("0.0.0.0", 8080))
    dut.listen(lfd)
    conn.connect_to(8080, options=[("MSS", MSS)])
    fd, _ = dut.accept(lfd)
    return fd


def _fill_until_zero_window(conn: TcpConnection) -> int:
    """Send MSS segments at RCV.NXT until the DUT's ACK offers a zero window; return
    the octets the DUT acknowledged (all it took)."""
    start = conn.seq
    for _ in range(MAX_SEGMENTS):
        conn.send("PA", b"d" * MSS)
        ack = conn.expect(flags="A", timeout=0.5)[TCP]
        if int(ack.window) == 0:
            # What it did not take is not counted: the bench resends from its ACK.
            conn.seq = int(ack.ack)
            return (conn.seq - start) & 0xFFFFFFFF
    pytest.fail(f"no zero window after {MAX_SEGMENTS} segments of {MSS} octets")


# req: MAY-8
@case("RFC 9293 §3.8.6.1 MAY-8")
def test_window_closes_when_the_application_does_not_read(dut: Dut, conn: TcpConnection) -> None:
    """The receiver's window shrinks as unread data fills the buffer and reaches zero
    (the receiver may keep it closed, MAY-8); the acknowledged data is all there."""
    fd = _open(dut, conn)
    taken = _fill_until_zero_window(conn)
    assert 0 < taken <= 4 * RCVBUF
    got = b""
    while len(got) < taken:
        got += dut.recv(fd, 65536)
    assert got == b"d" * taken


# req: SM-5
@case("RFC 9293 §3.10.7.4 SM-5")
def test_data_into_a_zero_window_is_not_accepted(dut: Dut, conn: TcpConnection) -> None:
    """With RCV.WND = 0 a segment carrying data is unacceptable even at RCV.NXT: it is
    answered with <SEQ=SND.NXT><ACK=RCV.NXT><ACK> (window still zero) and dropped."""
    fd = _open(dut, conn)
    taken = _fill_until_zero_window(conn)
    rcv_nxt = conn.seq
    conn.send("PA", b"x" * 100, advance=False)
    conn.expect_next(flags="A", ack=rcv_nxt, window=0)
    dut.set_nonblocking(fd)
    got = b""
    while True:
        try:
            chunk = dut.recv(fd, 65536)
        except DutError as e:
            assert e.errno == errno.EAGAIN
            break
        got += chunk
    assert got == b"d" * taken  # no "x": the segment was dropped


# req: MUST-39
@case("RFC 9293 §3.8.6.2.2 MUST-39")
def test_reading_the_buffer_sends_a_window_update(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """When the application empties the buffer the receiver offers the window again
    with an unsolicited ACK (a window update), and new data is then accepted."""
    fd = _open(dut, conn)
    taken = _fill_until_zero_window(conn)
    got = b""
    while len(got) < taken:
        got += dut.recv(fd, 65536)
    update = conn.expect(flags="A", ack=conn.seq, window=lambda w: w > 0, timeout=0.5)
    assert update.window >= MSS, f"window update of only {update.window} octets"
    conn.send("PA", b"y" * MSS)
    conn.expect(flags="A", ack=conn.seq, timeout=0.5)
    assert dut.recv(fd, 65536) == b"y" * MSS


# req: MUST-39
@case("RFC 9293 §3.8.6.2.2 MUST-39")
def test_reading_a_little_does_not_open_a_silly_window(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """Receiver SWS avoidance: reading a few octets from a full buffer does not offer a
    tiny window: no update is sent, and a one-octet probe still gets window zero."""
    fd = _open(dut, conn)
    _fill_until_zero_window(conn)
    assert len(dut.recv(fd, 10)) == 10
    conn.expect_none(0.3)
    conn.send("PA", b"p", advance=False)  # a zero-window probe with one new octet
    conn.expect_next(flags="A", ack=conn.seq, window=0)


# req: SM-5
@case("RFC 9293 §3.10.7.4 SM-5")
def test_zero_window_accepts_only_a_bare_ack_at_rcv_nxt(dut: Dut, conn: TcpConnection) -> None:
    """With RCV.WND = 0 a zero-length segment is acceptable only at SEG.SEQ = RCV.NXT
    (the second case of the acceptability test): a bare ACK there draws nothing."""
    _open(dut, conn)
    _fill_until_zero_window(conn)
    conn.send("A")
    conn.expect_none(0.3)


# req: SM-5
@case("RFC 9293 §3.10.7.4 SM-5")
def test_zero_window_rejects_a_bare_ack_past_rcv_nxt(dut: Dut, conn: TcpConnection) -> None:
    """With RCV.WND = 0 a zero-length segment at RCV.NXT+1 is unacceptable: it draws
    <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with the window still zero."""
    _open(dut, conn)
    _fill_until_zero_window(conn)
    conn.send("A", seq=conn.seq + 1, advance=False)
    conn.expect_next(flags="A", ack=conn.seq, window=0)


# req: SHLD-14
@case("RFC 9293 §3.8.6 SHLD-14")
def test_right_edge_never_moves_left_while_the_window_closes(dut: Dut, conn: TcpConnection) -> None:
    """The receiver SHOULD NOT shrink the window: while unread data closes it, each
    ACK's right edge (SEG.ACK + SEG.WND) stays at or beyond the one offered before,
    the SYN-ACK's included."""
    lfd = dut.socket()
    dut.setsockopt(lfd, socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    dut.bind(lfd, ("0.0.0.0", 8080))
    dut.listen(lfd)
    synack = conn.connect_to(8080, options=[("MSS", MSS)])[TCP]
    dut.accept(lfd)
    isn = conn.bench_isn
    edges = [((int(synack.ack) - isn) & 0xFFFFFFFF) + int(synack.window)]
    for _ in range(MAX_SEGMENTS):
        conn.send("PA", b"e" * MSS)
        ack = conn.expect(flags="A", timeout=0.5)[TCP]
        edges.append(((int(ack.ack) - isn) & 0xFFFFFFFF) + int(ack.window))
        if int(ack.window) == 0:
            break
    shrinks = [(a, b) for a, b in itertools.pairwise(edges) if b < a]
    assert not shrinks, f"right edge moved left: {shrinks} (right edges, relative: {edges})"
