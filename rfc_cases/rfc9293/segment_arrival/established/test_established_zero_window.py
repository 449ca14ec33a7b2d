"""ESTABLISHED with a zero receive window: RST processing still applies (MUST-66).

The bench fills the DUT's receive buffer (the app never reads) until the DUT
advertises a zero window; a loop that a ``.pkt`` script cannot express.
"""

from __future__ import annotations

import errno

from conformance.case_api import Dut, TcpConnection, case

MSS_ONLY = [("MSS", 1000)]


def _room(conn: TcpConnection) -> int:
    """Octets the DUT's last ACK still lets the bench send."""
    assert conn.dut_ack is not None and conn.dut_window is not None
    room = (conn.dut_ack + conn.dut_window - conn.seq) & 0xFFFFFFFF
    return 0 if room >= 1 << 31 else room


def _zero_window(dut: Dut, conn: TcpConnection) -> int:
    """Established, then data until the DUT's window is 0; returns the accepted fd."""
    lfd = dut.listen_tcp(8080)
    conn.connect_to(8080, options=MSS_ONLY)
    fd, _ = dut.accept(lfd)
    for _ in range(400):
        conn.drain(0.01)
        if _room(conn) == 0:
            conn.drain(0.25)  # the last ACK may be delayed, and may open the window again
            if _room(conn) == 0:
                break
        conn.send("PA", b"z" * min(1000, _room(conn)))
    assert conn.dut_ack == conn.seq, "every octet sent was taken"
    assert conn.dut_window == 0, f"the DUT still offers {conn.dut_window}"
    return fd


# RFC 9293 §3.4 and §3.10.7.4 s1/s2: with RCV.WND = 0, an RST exactly at RCV.NXT must
# still be processed (MUST-66): it resets the connection, nothing is sent, and the app
# sees "connection reset".
# req: MUST-66 SM-6 MUST-12
@case("RFC 9293 §3.4")
def test_rst_left_zero_window(dut: Dut, conn: TcpConnection) -> None:
    fd = _zero_window(dut, conn)
    conn.send("R", seq=conn.seq)
    conn.expect_none(0.2)
    assert dut.so_error(fd) == errno.ECONNRESET


# RFC 9293 §3.10.7.4 s1/s2 (RFC 5961 §3.2): with RCV.WND = 0 only SEG.SEQ = RCV.NXT is
# acceptable, so an RST at RCV.NXT+1 is outside the window and dropped silently (no
# challenge ACK); the connection stays (SO_ERROR 0, a write still sends data).
# req: MUST-66 SM-5 SM-6
@case("RFC 9293 §3.4")
def test_rst_after_rcv_nxt_zero_window(dut: Dut, conn: TcpConnection) -> None:
    fd = _zero_window(dut, conn)
    conn.send("R", seq=conn.seq + 1)
    conn.expect_none(0.2)
    assert dut.so_error(fd) == 0
    dut.send(fd, b"w" * 10)
    conn.expect_next(flags="PA", seq=conn.ack, ack=conn.seq, payload_len=10)
