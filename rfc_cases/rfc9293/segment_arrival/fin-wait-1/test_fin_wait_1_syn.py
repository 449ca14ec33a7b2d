"""FIN-WAIT-1: a SYN (no ACK bit) on the connection, at three sequence positions.

These cases use the case API: they were written when the ``.pkt`` executor sent
every script SYN on a new flow (it now follows packetdrill: a SYN joins the live
connection).  FIN-WAIT-1 is
reached with shutdown(SHUT_WR); tcp_rto_min_us = 1 s keeps our FIN's retransmission
out of the observation window.
"""

from __future__ import annotations

import socket

from conformance.case_api import Dut, TcpConnection, case

MSS_ONLY = [("MSS", 1000)]
RTO_1S = {"net.ipv4.tcp_rto_min_us": "1000000"}


def _fin_wait_1(dut: Dut, conn: TcpConnection) -> int:
    lfd = dut.listen_tcp(8080)
    conn.connect_to(8080, options=MSS_ONLY)
    fd, _ = dut.accept(lfd)
    dut.set_nonblocking(fd)
    dut.shutdown(fd, socket.SHUT_WR)
    conn.expect_next(flags="FA", ack=conn.seq)
    return fd


def _rcv_wnd(conn: TcpConnection) -> int:
    """RCV.WND: the window of the DUT's last segment (no window scaling here)."""
    assert conn.dut_window is not None
    return conn.dut_window


def _alive(dut: Dut, conn: TcpConnection, fd: int) -> None:
    """Still FIN-WAIT-1 with RCV.NXT unchanged: new data (not acking our FIN) is
    acknowledged and read."""
    assert conn.ack is not None
    una = conn.ack - 1  # our FIN stays unacknowledged
    conn.send("PA", b"d" * 10, ack=una)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    assert dut.recv(fd) == b"d" * 10


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in FIN-WAIT-1, a SYN at RCV.NXT-1 (the peer's
# SYN retransmitted) is answered with <SEQ=SND.NXT><ACK=RCV.NXT><ACK> and dropped; the
# connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4", sysctls=RTO_1S)
def test_syn_below(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_1(dut, conn)
    conn.send("S", seq=conn.seq - 1, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in FIN-WAIT-1, a SYN at RCV.NXT draws a
# challenge ACK and is dropped; the connection stays (RFC 793 reset it instead).
# req: SM-8 RFC5961-4
@case("RFC 9293 §3.10.7.4", sysctls=RTO_1S)
def test_syn_left(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_1(dut, conn)
    conn.send("S", seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in FIN-WAIT-1, a SYN at RCV.NXT+RCV.WND, past
# the window, is answered with an ACK and dropped; the connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4", sysctls=RTO_1S)
def test_syn_beyond(dut: Dut, conn: TcpConnection) -> None:
    fd = _fin_wait_1(dut, conn)
    conn.send("S", seq=conn.seq + _rcv_wnd(conn), options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)
