"""Listen backlog: what a full accept queue does to a new connection attempt.

RFC 9293 §3.9.1.1 leaves the number of pending connections of a passive OPEN to the
implementation; Linux's choice is the reference: with ``listen(fd, 1)`` the accept queue
holds two established connections (full once it holds more than the backlog), a SYN
that arrives while it is full is dropped silently (no SYN-ACK, no RST), and the peer's
retransmitted SYN is answered once accept() has made room.
"""

from __future__ import annotations

from conformance.case_api import Case, Dut, case

MSS_ONLY = [("MSS", 1000)]


# req: SM-2
@case("RFC 9293 §3.9.1.1, §3.10.7.2")
def test_syn_dropped_while_accept_queue_full(case: Case, dut: Dut) -> None:
    lfd = dut.listen_tcp(8080, backlog=1)
    first = case.tcp()
    first.connect_to(8080, options=MSS_ONLY)
    second = case.tcp()
    second.connect_to(8080, options=MSS_ONLY)
    third = case.tcp(dut_port=8080)
    third.send("S", options=MSS_ONLY)
    third.expect_none(0.5)  # the accept queue is full: the SYN is dropped, no RST
    fd, _ = dut.accept(lfd)
    # The peer retransmits its SYN: now there is room, and it is answered.
    third.send("S", seq=third.bench_isn, options=MSS_ONLY, advance=False)
    third.expect({"flags": "SA", "ack": third.seq}, timeout=0.5)
    third.send("A")
    third.expect_none(0.2)
    dut.accept(lfd)
    dut.close(fd)


# req: SM-2 MUST-41
@case("RFC 9293 §3.9.1.1, §3.10.7.2")
def test_accept_returns_connections_in_completion_order(case: Case, dut: Dut) -> None:
    """Each SYN to a listener makes a new connection of its own (the listener stays in
    LISTEN, MUST-41); accept() hands them out in the order their handshakes completed
    (Linux's FIFO accept queue), each with its own peer port."""
    lfd = dut.listen_tcp(8080, backlog=4)
    early = case.tcp(dut_port=8080)
    late = case.tcp(dut_port=8080)
    early.send("S", options=MSS_ONLY)
    late.send("S", options=MSS_ONLY)
    late.expect({"flags": "SA", "ack": late.seq})
    early.expect({"flags": "SA", "ack": early.seq})
    late.send("A")  # the second SYN completes first
    case.sleep(0.05)
    early.send("A")
    case.sleep(0.05)
    _, first_peer = dut.accept(lfd)
    _, second_peer = dut.accept(lfd)
    assert first_peer[1] == late.bench_port, (first_peer, late.bench_port)
    assert second_peer[1] == early.bench_port, (second_peer, early.bench_port)
