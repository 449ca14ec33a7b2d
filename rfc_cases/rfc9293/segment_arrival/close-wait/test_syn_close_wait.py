"""RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): a SYN arriving in CLOSE-WAIT.

A SYN at any sequence number in a synchronized state draws a challenge ACK
<SEQ=SND.NXT><ACK=RCV.NXT><ACK> and is dropped; the connection stays (RFC 793:
an in-window SYN reset the connection). Below and beyond the window the
sequence check (s1) answers with the same ACK first.

These rows are Python cases: they were written when the .pkt executor sent every
script SYN on a new flow; it now follows packetdrill (a SYN joins the live
connection), so they could be scripts too.
The peer's SYN offers MSS 1000 only (matrix §6); RCV.NXT is the octet after the
peer's FIN and RCV.WND the window the DUT advertised last.
"""

from __future__ import annotations

from conformance.case_api import Dut, TcpConnection, case

MSS = [("MSS", 1000)]
MASK = 0xFFFFFFFF


def _enter(dut: Dut, conn: TcpConnection) -> tuple[int, int, int]:
    """The matrix preamble for CLOSE-WAIT: (accepted fd, SND.UNA, SND.NXT)."""
    lfd = dut.listen_tcp(8080, backlog=1)
    conn.connect_to(8080, options=MSS)
    fd, _ = dut.accept(lfd)
    assert conn.dut_isn is not None
    iss = conn.dut_isn
    conn.send("FA")
    conn.expect(flags="A", ack=conn.seq)
    return fd, (iss + 1) & MASK, (iss + 1) & MASK


def _alive(conn: TcpConnection, una: int, nxt: int) -> None:
    """Old data (the octet of the peer's FIN) draws <SEQ=SND.NXT><ACK=RCV.NXT><ACK>:
    the TCB is still there (a data segment is exempt from Linux's ACK throttle)."""
    conn.send("PA", b"x", seq=(conn.seq - 1) & MASK, ack=una, advance=False)
    conn.expect_next(flags="A", seq=nxt, ack=conn.seq)


def _syn_at(dut: Dut, conn: TcpConnection, offset: int | None) -> None:
    """A SYN at RCV.NXT+offset (None: RCV.NXT+RCV.WND, just past the window)."""
    _, una, nxt = _enter(dut, conn)
    if offset is None:
        assert conn.dut_window is not None
        offset = conn.dut_window
    conn.send("S", seq=(conn.seq + offset) & MASK, options=MSS, advance=False)
    conn.expect_next(flags="A", seq=nxt, ack=conn.seq)  # the (challenge) ACK
    conn.expect_none(0.1)
    _alive(conn, una, nxt)


# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4 s1/s4")
def test_syn_below(dut: Dut, conn: TcpConnection) -> None:
    """syn-below: a SYN at RCV.NXT-1 fails the sequence check: an ACK, dropped."""
    _syn_at(dut, conn, -1)


# req: SM-8
@case("RFC 9293 §3.10.7.4 s4, RFC 5961 §4")
def test_syn_left(dut: Dut, conn: TcpConnection) -> None:
    """syn-left: a SYN exactly at RCV.NXT draws a challenge ACK and is dropped."""
    _syn_at(dut, conn, 0)


# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4 s1/s4")
def test_syn_beyond(dut: Dut, conn: TcpConnection) -> None:
    """syn-beyond: a SYN at RCV.NXT+RCV.WND fails the sequence check: an ACK, dropped."""
    _syn_at(dut, conn, None)
