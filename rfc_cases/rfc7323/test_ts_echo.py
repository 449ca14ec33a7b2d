"""RFC 7323 §3.2 and §4.3: which TSval the DUT echoes in TSecr.

The .pkt executor does not compare an outbound TSecr, so these cases read it here.
"""

from __future__ import annotations

from scapy.layers.inet import TCP
from scapy.packet import Packet

from conformance.case_api import Case, Dut, TcpConnection, case


def _ts(pkt: Packet) -> tuple[int, int]:
    for name, value in pkt[TCP].options:
        if name == "Timestamp":
            return int(value[0]), int(value[1])
    raise AssertionError(f"no TSopt in {pkt[TCP].summary()}")


def _open(dut: Dut, conn: TcpConnection, tsval: int) -> tuple[int, int]:
    """Listen, handshake with TSopt (bench TSval ``tsval``), accept: (fd, DUT's last TSval)."""
    lfd = dut.listen_tcp(8080)
    synack = conn.connect_to(
        8080, options=[("MSS", 1000), ("NOP", None), ("NOP", None), ("Timestamp", (tsval, 0))]
    )
    dut_val, echoed = _ts(synack)
    assert echoed == tsval, f"SYN-ACK TSecr {echoed}, the SYN's TSval was {tsval}"
    fd, _ = dut.accept(lfd)
    return fd, dut_val


# req: RFC7323-3.2
@case("RFC 7323 §3.2")
def test_synack_echoes_the_syn_tsval(dut: Dut, conn: TcpConnection) -> None:
    """The SYN-ACK's TSecr is the TSval of the SYN it answers."""
    _open(dut, conn, 123456)


# req: RFC7323-3.2 RFC7323-4.3
@case("RFC 7323 §3.2, §4.3")
def test_ack_echoes_the_tsval_of_the_segment_it_acknowledges(dut: Dut, conn: TcpConnection) -> None:
    """An in-order data segment with TSval V updates TS.Recent: its ACK echoes V."""
    _, dut_val = _open(dut, conn, 1000)
    conn.send("PA", b"x" * 100, options=[("NOP", None), ("NOP", None), ("Timestamp", (2000, dut_val))])
    ack = conn.expect(flags="A", ack=conn.seq)
    assert _ts(ack)[1] == 2000, f"TSecr {_ts(ack)[1]}, expected 2000"


# req: RFC7323-4.3
@case("RFC 7323 §4.3")
def test_out_of_order_segment_does_not_update_ts_recent(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """§4.3 (B): TS.Recent is updated only by a segment at or before Last.ACK.sent.
    The duplicate ACK for an out-of-order segment (TSval 3000) echoes the last
    in-order TSval (2000); the segment that fills the hole (TSval 4000) is echoed."""
    _, dut_val = _open(dut, conn, 1000)
    ts = [("NOP", None), ("NOP", None)]
    conn.send("PA", b"a" * 100, options=[*ts, ("Timestamp", (2000, dut_val))])
    conn.expect(flags="A", ack=conn.seq)
    hole = conn.seq
    conn.send("PA", b"c" * 100, seq=hole + 100, options=[*ts, ("Timestamp", (3000, dut_val))], advance=False)
    dup = conn.expect(flags="A", ack=hole)
    assert _ts(dup)[1] == 2000, (
        f"duplicate ACK echoes {_ts(dup)[1]}, expected 2000 (not the out-of-order 3000)"
    )
    conn.send("PA", b"b" * 100, options=[*ts, ("Timestamp", (4000, dut_val))])
    full = conn.expect(flags="A", ack=hole + 200)
    assert _ts(full)[1] == 4000, f"ACK after the hole filled echoes {_ts(full)[1]}, expected 4000"


# req: RFC7323-5.3
@case("RFC 7323 §5.3")
def test_equal_tsval_passes_paws(dut: Dut, conn: TcpConnection) -> None:
    """§5.3 R1: PAWS drops a segment only when SEG.TSval < TS.Recent. A second segment
    with the same TSval (the peer's clock did not tick) is accepted and delivered."""
    fd, dut_val = _open(dut, conn, 1000)
    ts = [("NOP", None), ("NOP", None)]
    conn.send("PA", b"a" * 100, options=[*ts, ("Timestamp", (2000, dut_val))])
    conn.expect(flags="A", ack=conn.seq)
    conn.send("PA", b"b" * 100, options=[*ts, ("Timestamp", (2000, dut_val))])
    ack = conn.expect(flags="A", ack=conn.seq)
    assert _ts(ack)[1] == 2000, f"TSecr {_ts(ack)[1]}, expected 2000"
    assert dut.recv(fd, 1000) == b"a" * 100 + b"b" * 100


# req: RFC7323-3.2 RFC7323-4.3
@case("RFC 7323 §3.2, §4.3")
def test_active_open_ack_echoes_the_synack_tsval(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """Active open: the DUT's SYN carries TSecr 0; its ACK of the SYN-ACK echoes the
    SYN-ACK's TSval."""
    fd = dut.socket()
    call = dut.start("connect", fd, (case.remote_ip, conn.bench_port))
    syn = conn.expect(flags="S")
    assert _ts(syn)[1] == 0, f"SYN TSecr {_ts(syn)[1]}, expected 0"
    conn.dut_port = syn[TCP].sport
    conn.send("SA", options=[("MSS", 1000), ("NOP", None), ("NOP", None), ("Timestamp", (777, _ts(syn)[0]))])
    ack = conn.expect(flags="A", ack=conn.seq)
    assert _ts(ack)[1] == 777, f"ACK TSecr {_ts(ack)[1]}, expected the SYN-ACK's TSval 777"
    assert dut.finish(call).ret == 0


# req: RFC7323-5.4
@case("RFC 7323 §5.4")
def test_tsval_clock_ticks_in_milliseconds(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """§5.4: the timestamp clock must tick between once per 1 ms and once per 1 s, and
    TSval never goes backwards. Linux (and refstack) tick every millisecond: two
    segments 300 ms apart carry TSvals about 300 apart."""
    fd, _ = _open(dut, conn, 1000)
    ts = [("NOP", None), ("NOP", None)]
    dut.send(fd, b"a")
    first = conn.expect(payload=b"a")
    conn.send("A", options=[*ts, ("Timestamp", (2000, _ts(first)[0]))])
    case.sleep(0.3)
    dut.send(fd, b"b")
    second = conn.expect(payload=b"b")
    ticks = (_ts(second)[0] - _ts(first)[0]) & 0xFFFFFFFF
    assert 280 <= ticks <= 340, f"TSval advanced by {ticks} in 0.3 s (expected ~300 at 1 ms per tick)"


# req: RFC7323-4.1 RFC7323-3.2
@case("RFC 7323 §3.2, §4.1")
def test_retransmission_carries_a_fresh_tsval(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """A retransmitted segment carries the TSval of the moment it is resent, not the
    original's (which is how an ACK of it can give an RTT sample without ambiguity)."""
    fd, _ = _open(dut, conn, 1000)
    dut.send(fd, b"r" * 100)
    first = conn.expect(payload=b"r" * 100)
    again = conn.expect(seq=first[TCP].seq, payload=b"r" * 100, timeout=2.0)
    gap_ms = (float(again.time) - float(first.time)) * 1000
    ticks = (_ts(again)[0] - _ts(first)[0]) & 0xFFFFFFFF
    assert ticks > 0, "the retransmission repeats the original TSval"
    assert abs(ticks - gap_ms) <= 20, f"TSval advanced {ticks} over {gap_ms:.0f} ms"
    conn.send("A", options=[("NOP", None), ("NOP", None), ("Timestamp", (2000, _ts(again)[0]))])


# req: RFC7323-4.3
@case("RFC 7323 §4.3")
def test_delayed_ack_echoes_the_earliest_unacknowledged_tsval(dut: Dut, conn: TcpConnection) -> None:
    """§4.3 (A): when one ACK covers several segments (delayed ACK), its TSecr is the
    TSval of the earliest segment it acknowledges, so the peer's RTT sample includes
    the delay. Full-size segments with increasing TSvals are sent until the DUT leaves
    its start-of-connection quick-ACK mode and acknowledges two segments at once."""
    _, dut_val = _open(dut, conn, 1000)
    segments: list[tuple[int, int]] = []  # (end sequence number, TSval)
    acked = conn.seq
    for i in range(40):
        conn.send(
            "A", b"x" * 1000, options=[("NOP", None), ("NOP", None), ("Timestamp", (5000 + i, dut_val))]
        )
        segments.append((conn.seq, 5000 + i))
        for pkt in conn.drain(0.01):
            ack = pkt[TCP].ack
            if pkt[TCP].payload or ((ack - acked) & 0xFFFFFFFF) >= 1 << 31 or ack == acked:
                continue
            covered = [
                tsval
                for end, tsval in segments
                if 0 < ((end - acked) & 0xFFFFFFFF) <= ((ack - acked) & 0xFFFFFFFF)
            ]
            if len(covered) >= 2:
                assert _ts(pkt)[1] == covered[0], (
                    f"an ACK of TSvals {covered} echoes {_ts(pkt)[1]}, expected the earliest {covered[0]}"
                )
                return
            acked = ack
    raise AssertionError("every segment was acknowledged on its own")
