"""RFC 5961 §4: SYNs in ESTABLISHED at sequence numbers beyond the matrix's cells.

Python cases: the .pkt executor takes every inbound SYN without ACK as the opening of
a new flow (new remote port, new remote ISN), so it cannot inject one into an
established connection.
"""

from __future__ import annotations

import errno

import pytest

from conformance.case_api import Dut, DutError, TcpConnection, case


# req: RFC5961-4 SM-8
@case("RFC 5961 §4")
def test_syn_inside_the_window_draws_a_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
    """A SYN inside the window, not at RCV.NXT: challenge ACK, no reset (RFC 793 reset)."""
    fd, _ = dut.establish(conn)
    conn.send("S", seq=conn.seq + 100, ack=0, options=[("MSS", 1000)], advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    conn.send("PA", b"alive")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"alive"


# req: RFC5961-4 SM-8
@case("RFC 5961 §4")
def test_syn_at_the_right_window_edge_draws_a_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
    """A SYN on the last octet of the receive window: challenge ACK, connection stays."""
    fd, _ = dut.establish(conn)
    assert conn.dut_window is not None
    conn.send("S", seq=conn.seq + conn.dut_window - 1, ack=0, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    conn.send("PA", b"alive")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"alive"


# req: RFC5961-4 SM-8
@case("RFC 5961 §4")
def test_syn_with_data_at_rcv_nxt_is_dropped_whole(dut: Dut, conn: TcpConnection) -> None:
    """A SYN at RCV.NXT that carries data: challenge ACK, and the data is neither
    acknowledged nor delivered."""
    fd, _ = dut.establish(conn)
    conn.send("S", b"injected", seq=conn.seq, ack=0, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN


# req: RFC5961-4 SM-8
@case("RFC 5961 §4")
def test_syn_with_ack_bit_at_rcv_nxt_draws_a_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
    """A SYN-ACK at RCV.NXT acknowledging SND.NXT (a plausible crossing SYN-ACK) is still
    a SYN: challenge ACK and nothing else."""
    fd, _ = dut.establish(conn)
    conn.send("SA", seq=conn.seq, advance=False)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    conn.expect_none(0.2)
    dut.send(fd, b"still")
    conn.expect(payload=b"still")
