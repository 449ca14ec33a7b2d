"""ESTABLISHED: a SYN (no ACK bit) on the connection, at three sequence positions.

These cases use the case API: they were written when the ``.pkt`` executor sent
every script SYN on a new flow (it now follows packetdrill: a SYN joins the live
connection).  The bench offers
only MSS 1000 (no timestamps, SACK or window scaling), as the matrix preamble does.
"""

from __future__ import annotations

import errno

import pytest

from conformance.case_api import Dut, DutError, TcpConnection, case

MSS_ONLY = [("MSS", 1000)]


def _established(dut: Dut, conn: TcpConnection) -> int:
    lfd = dut.listen_tcp(8080)
    conn.connect_to(8080, options=MSS_ONLY)
    fd, _ = dut.accept(lfd)
    dut.set_nonblocking(fd)
    return fd


def _rcv_wnd(conn: TcpConnection) -> int:
    """RCV.WND: the window of the DUT's last segment (no window scaling here)."""
    assert conn.dut_window is not None
    return conn.dut_window


def _alive(dut: Dut, conn: TcpConnection, fd: int) -> None:
    """The connection is up and RCV.NXT has not moved: a write goes out acking conn.seq."""
    dut.send(fd, b"w" * 10)
    conn.expect_next(flags="PA", seq=conn.ack, ack=conn.seq, payload_len=10)
    with pytest.raises(DutError) as err:
        dut.recv(fd)
    assert err.value.errno == errno.EAGAIN


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in ESTABLISHED, a SYN at RCV.NXT-1 (the
# peer's SYN retransmitted) is answered with <SEQ=SND.NXT><ACK=RCV.NXT><ACK> and dropped;
# the connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4")
def test_syn_below(dut: Dut, conn: TcpConnection) -> None:
    fd = _established(dut, conn)
    conn.send("S", seq=conn.seq - 1, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in ESTABLISHED, a SYN at RCV.NXT draws a
# challenge ACK and is dropped; the connection stays (RFC 793 reset it instead).
# req: SM-8 RFC5961-4
@case("RFC 9293 §3.10.7.4")
def test_syn_left(dut: Dut, conn: TcpConnection) -> None:
    fd = _established(dut, conn)
    conn.send("S", seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s1/s4 (RFC 5961 §4): in ESTABLISHED, a SYN at RCV.NXT+RCV.WND,
# past the window, is answered with an ACK and dropped; the connection stays.
# req: SM-5 SM-8
@case("RFC 9293 §3.10.7.4")
def test_syn_beyond(dut: Dut, conn: TcpConnection) -> None:
    fd = _established(dut, conn)
    conn.send("S", seq=conn.seq + _rcv_wnd(conn), options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in ESTABLISHED, a SYN+FIN at RCV.NXT (the
# optional ninth segment kind) is handled as a SYN: a challenge ACK, and the segment is
# dropped, so its FIN is not processed (no EOF) and the connection stays.
# req: SM-8 RFC5961-4
@case("RFC 9293 §3.10.7.4")
def test_synfin_left(dut: Dut, conn: TcpConnection) -> None:
    fd = _established(dut, conn)
    conn.send("SF", seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)


# RFC 9293 §3.10.7.4 s4 (RFC 5961 §4): in ESTABLISHED, a SYN at RCV.NXT that carries 10
# octets draws a challenge ACK and is dropped whole: the payload is not delivered and
# the connection stays.
# req: SM-8 RFC5961-4
@case("RFC 9293 §3.10.7.4")
def test_syn_left_payload(dut: Dut, conn: TcpConnection) -> None:
    fd = _established(dut, conn)
    conn.send("S", b"p" * 10, seq=conn.seq, options=MSS_ONLY, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    _alive(dut, conn, fd)
