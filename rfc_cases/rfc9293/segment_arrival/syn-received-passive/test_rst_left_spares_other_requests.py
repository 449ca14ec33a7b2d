"""SYN-RECEIVED reached from LISTEN, with two requests pending on one listener.

RFC 9293 §3.10.7.4 second check (MUST-11): an RST at exactly RCV.NXT returns a passively
opened connection "to the LISTEN state". Only that connection goes: the listener keeps
listening, and another request pending on it is not disturbed.
"""

from __future__ import annotations

import errno

import pytest

from conformance.case_api import Case, Dut, DutError, case

MSS_ONLY = [("MSS", 1000)]


# req: SM-7 MUST-11
@case("RFC 9293 §3.10.7.4")
def test_rst_left_spares_another_pending_request(case: Case, dut: Dut) -> None:
    lfd = dut.listen_tcp(8080, backlog=4)
    dut.set_nonblocking(lfd)
    first = case.tcp(dut_port=8080)
    first.send("S", options=MSS_ONLY)
    first.expect({"flags": "SA", "ack": first.seq})
    second = case.tcp(dut_port=8080)
    second.send("S", options=MSS_ONLY)
    second.expect({"flags": "SA", "ack": second.seq})

    first.send("R")  # exactly at RCV.NXT: the first request returns to LISTEN
    first.expect_none(0.3)

    second.send("A")  # the other request completes and can be accepted
    fd, _ = dut.accept(lfd)
    with pytest.raises(DutError) as nothing_more:
        dut.accept(lfd)
    assert nothing_more.value.errno == errno.EAGAIN

    # The first request is gone: its handshake ACK now reaches the listener, which
    # answers <SEQ=SEG.ACK><RST>.
    first.send("A")
    first.expect_next(flags="R", seq=first.ack)
    second.expect_none(0.2)
    dut.close(fd)
