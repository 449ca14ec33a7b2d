"""FIN-WAIT-2: a SYN (no ACK bit) on the connection, at three sequence positions, and
at RCV.NXT on an orphaned FIN-WAIT-2 (reached with close()).

These cases use the case API: they were written when the ``.pkt`` executor sent
every script SYN on a new flow (it now follows packetdrill: a SYN joins the live
connection).
"""

from __future__ import annotations

import socket

from conformance.case_api import Dut, TcpConnection, case

MSS_ONLY = [("MSS", 1000)]


def _fin_wait_2(dut: Dut, conn: TcpConnection, *, orphan: bool = False) -> int:
    lfd = dut.listen_tcp(8080)
    conn.connect_to(8080, options=MSS_ONLY)
    fd, _ = dut.accept(lfd)
    dut.set_nonblocking(fd)
    if orphan:
        dut.close(fd)
    else:
        dut.shutdown(fd, socket.SHUT_WR)
    conn.expect_next(flags="FA", ack=conn.seq)
    conn.send("A")  # acknowledges our FIN
    return fd


def _rcv_wnd(conn: TcpConnection) -> int:
    """RCV.WND: the window of the DUT's last segment (no window scaling here)."""
    assert conn.dut_window is not None
    return conn.dut_window


def _alive(dut: Dut, conn: TcpConnection, fd: int) -> None:
    """Still FIN-WAIT-2 with RCV.NXT unchanged: new data is acknowledged and read."""
    conn.send("PA", b"d" * 10)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    assert dut.recv(fd) == b"d" * 10


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in FIN-WAIT-2, a SYN at RCV.NXT-1 (the peer's
# SYN retransmitted) is answered with <SEQ=SND.NXT><ACK=RCV.NXT><ACK> and dropped; the
# connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4")
def test_syn_below(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_2(dut, conn)
    conn.send("S", seq=conn.seq - 1, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in FIN-WAIT-2, a SYN at RCV.NXT draws a
# challenge ACK and is dropped; the connection stays (RFC 793 reset it instead).
# req: SM-8 RFC5961-4
@case("RFC 9293 §3.10.7.4")
def test_syn_left(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_2(dut, conn)
    conn.send("S", seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in FIN-WAIT-2, a SYN at RCV.NXT+RCV.WND, past
# the window, is answered with an ACK and dropped; the connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4")
def test_syn_beyond(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_2(dut, conn)
    conn.send("S", seq=conn.seq + _rcv_wnd(conn), options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in FIN-WAIT-2 reached with close(), a SYN at
# RCV.NXT draws a challenge ACK and is dropped; the connection stays: a later duplicate
# ACK draws nothing (a closed connection would answer it with an RST).
# req: SM-8 RFC5961-4
@case(
    "RFC 9293 §3.10.7.4",
    xfail={
        "linux": "D11: Linux's orphaned FIN-WAIT-2 (a timewait socket) answers an in-window SYN"
        " with an RST and is killed (RFC 5961 §4: challenge ACK, the connection stays)"
    },
)
def test_syn_left_orphan(dut: Dut, conn: TcpConnection) -> None:
    _fin_wait_2(dut, conn, orphan=True)
    conn.send("S", seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    conn.send("A")
    conn.expect_none(0.2)
