"""RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): a SYN arriving in TIME-WAIT.

In TIME-WAIT a SYN may also reopen the connection (RFC 9293 §3.6.1 MAY-2; with
timestamps RFC 6191, SHLD-4): see test_syn_beyond and test_syn_below_ts.

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

import socket

from conformance.case_api import Dut, TcpConnection, case

MSS = [("MSS", 1000)]
MASK = 0xFFFFFFFF


def _enter(
    dut: Dut, conn: TcpConnection, options: list[tuple[str, object]] | None = None
) -> tuple[int, int, int]:
    """The matrix preamble for TIME-WAIT: (listening fd, SND.UNA, SND.NXT)."""
    lfd = dut.listen_tcp(8080, backlog=1)
    conn.connect_to(8080, options=options or MSS)
    fd, _ = dut.accept(lfd)
    assert conn.dut_isn is not None
    iss = conn.dut_isn
    dut.shutdown(fd, socket.SHUT_WR)
    conn.expect(flags="FA", seq=(iss + 1) & MASK)
    conn.send("A", options=_ts(options))  # FIN-WAIT-2
    conn.send("FA", options=_ts(options))  # TIME-WAIT
    conn.expect(flags="A", seq=(iss + 2) & MASK, ack=conn.seq)
    return lfd, (iss + 2) & MASK, (iss + 2) & MASK


def _ts(options: list[tuple[str, object]] | None, val: int = 1001) -> list[tuple[str, object]] | None:
    """The timestamp option for the bench's later segments when the SYN offered one."""
    if not options or not any(name == "Timestamp" for name, _ in options):
        return None
    return [("NOP", None), ("NOP", None), ("Timestamp", (val, 0))]


def _alive(conn: TcpConnection, una: int, nxt: int) -> None:
    """A retransmission of the peer's FIN draws <SEQ=SND.NXT><ACK=RCV.NXT><ACK>:
    TIME-WAIT still holds the TCB (a FIN is exempt from Linux's ACK throttle)."""
    conn.send("FA", seq=(conn.seq - 1) & MASK, ack=una, advance=False)
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


def _reopened(
    dut: Dut,
    conn: TcpConnection,
    lfd: int,
    *,
    syn_seq: int,
    nxt: int,
    options: list[tuple[str, object]] | None,
) -> None:
    """The SYN reopened the connection: a SYN,ACK with an ISS above anything the old
    incarnation used (Linux: old SND.NXT + 65537), then a new connection to accept."""
    synack = conn.expect_next(flags="SA", seq=(nxt + 65537) & MASK, ack=(syn_seq + 1) & MASK)
    del synack
    conn.seq = (syn_seq + 1) & MASK
    conn.send("A", options=_ts(options, 1003))
    fd2, _ = dut.accept(lfd)
    conn.send("PA", b"again", options=_ts(options, 1004))
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd2) == b"again"


# req: SM-8 MAY-2
@case("RFC 9293 §3.6.1 MAY-2")
def test_syn_beyond(dut: Dut, conn: TcpConnection) -> None:
    """syn-beyond: with the listener open, a SYN above RCV.NXT (here RCV.NXT+RCV.WND)
    reopens the connection from TIME-WAIT (MAY-2), with an ISS larger than the old
    SND.NXT; the new connection is accepted and carries data."""
    lfd, _, nxt = _enter(dut, conn)
    assert conn.dut_window is not None
    syn_seq = (conn.seq + conn.dut_window) & MASK
    conn.send("S", seq=syn_seq, options=MSS, advance=False)
    _reopened(dut, conn, lfd, syn_seq=syn_seq, nxt=nxt, options=None)


# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4 s1/s4")
def test_syn_beyond_nolisten(dut: Dut, conn: TcpConnection) -> None:
    """syn-beyond-nolisten: with the listener closed nothing can take a new
    connection: a SYN at RCV.NXT+RCV.WND fails the sequence check and draws an ACK;
    TIME-WAIT goes on."""
    lfd, una, nxt = _enter(dut, conn)
    dut.close(lfd)
    assert conn.dut_window is not None
    conn.send("S", seq=(conn.seq + conn.dut_window) & MASK, options=MSS, advance=False)
    conn.expect_next(flags="A", seq=nxt, ack=conn.seq)
    conn.expect_none(0.1)
    _alive(conn, una, nxt)


TS_SYN: list[tuple[str, object]] = [("MSS", 1000), ("NOP", None), ("NOP", None), ("Timestamp", (1000, 0))]


# req: SHLD-4 MAY-2 RFC6191-2
@case("RFC 6191 §2, RFC 9293 §3.6.1 SHLD-4")
def test_syn_below_ts(dut: Dut, conn: TcpConnection) -> None:
    """syn-below-ts: with timestamps in use, a SYN whose sequence number is not above
    RCV.NXT (here RCV.NXT-1) but whose TSval is newer than the last one seen reopens
    the connection from TIME-WAIT (RFC 6191)."""
    lfd, _, nxt = _enter(dut, conn, TS_SYN)
    syn_seq = (conn.seq - 1) & MASK
    conn.send("S", seq=syn_seq, options=[*TS_SYN[:3], ("Timestamp", (1002, 0))], advance=False)
    _reopened(dut, conn, lfd, syn_seq=syn_seq, nxt=nxt, options=TS_SYN)
