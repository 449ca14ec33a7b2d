"""Conformance checks written with the case API: each runs on refstack and on Linux
and must pass on both (they are the proof that the API can express real cases).

Linux rate-limits out-of-window ACKs and challenge ACKs to one per 500 ms per socket
(``net.ipv4.tcp_invalid_ratelimit``), so each test triggers at most one of them.
"""

from __future__ import annotations

import errno
import select

import pytest
from scapy.layers.inet import ICMP, IP, IPerror, UDPerror

from conformance.case_api import Case, Dut, DutError, TcpConnection, UdpFlow, case, match

# "Immediately": well before the 40 ms a delayed ACK waits at the least on Linux
# (TCP_DELACK_MIN), with room for scheduling on a busy 2-core machine.
IMMEDIATE = 0.03


@case("RFC 9293 §3.10.7.1")
def test_rst_to_a_closed_port(case: Case) -> None:
    """CLOSED: a segment without ACK draws <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>;
    one with ACK draws <SEQ=SEG.ACK><CTL=RST>."""
    syn = case.tcp(dut_port=9)
    syn.send("S")
    syn.expect(flags="RA", seq=0, ack=syn.seq)

    acked = case.tcp(dut_port=9)
    acked.send("PA", b"stray", ack=123456, advance=False)
    acked.expect(flags="R", seq=123456)


@case("RFC 5961 §3.2")
def test_in_window_rst_that_is_not_exact_draws_a_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    conn.send("R", seq=conn.seq + 100)  # inside the window, not RCV.NXT
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    # The connection survives: data still flows in both directions.
    conn.send("PA", b"still here")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"still here"
    dut.send(fd, b"me too")
    conn.expect(payload=b"me too")


@case("RFC 5961 §7", sysctls={"net.ipv4.tcp_invalid_ratelimit": "100"})
def test_challenge_acks_are_throttled(case: Case, dut: Dut, conn: TcpConnection) -> None:
    """ACK throttling: one challenge ACK per tcp_invalid_ratelimit (here 100 ms)."""
    dut.establish(conn)
    conn.send("R", seq=conn.seq + 100)
    first = conn.expect_next(flags="A", ack=conn.seq)
    conn.send("R", seq=conn.seq + 200)
    conn.expect_none(0.05)  # within the 100 ms: no second challenge ACK
    case.sleep_until(first.time + 0.15)
    conn.send("R", seq=conn.seq + 300)
    conn.expect_next(flags="A", ack=conn.seq)  # the limit has passed


@case("RFC 5961 §4")
def test_syn_in_established_draws_a_challenge_ack(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    conn.send("S", seq=conn.seq, ack=0, advance=False)  # RFC 793 would have reset
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    conn.send("PA", b"alive")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"alive"


@case("RFC 5681 §4.2")
def test_out_of_order_segment_draws_an_immediate_dup_ack(case: Case, dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    start = conn.seq
    sent_at = case.now()
    conn.send("PA", b"b" * 100, seq=start + 100)  # a hole of 100 octets before it
    dup = conn.expect(flags="A", ack=start, timeout=0.5)
    assert dup.time - sent_at < IMMEDIATE, f"duplicate ACK after {dup.time - sent_at:.3f} s"
    # Filling the hole is acknowledged at once too, up to the end of both segments.
    sent_at = case.now()
    conn.send("PA", b"a" * 100)
    full = conn.expect(flags="A", ack=start + 200, timeout=0.5)
    assert full.time - sent_at < IMMEDIATE, f"gap-filling ACK after {full.time - sent_at:.3f} s"
    assert dut.recv(fd, 1000) == b"a" * 100 + b"b" * 100


@case("RFC 9293 §3.10.7.4")
def test_data_beyond_the_receive_window_is_not_accepted(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    assert conn.dut_window is not None
    beyond = conn.seq + conn.dut_window + 1000
    conn.send("PA", b"x" * 100, seq=beyond)
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)  # an ACK of what it has, no more
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN
    conn.send("PA", b"in window")
    conn.expect(flags="A", ack=conn.seq)
    assert dut.recv(fd) == b"in window"


@case("RFC 9293 §3.10.7.4, RFC 5961 §5.2")
def test_ack_of_unsent_data_is_answered_and_the_segment_dropped(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    assert conn.ack is not None
    conn.send("PA", b"dropped", ack=conn.ack + 1000, advance=False)  # SEG.ACK > SND.NXT
    conn.expect_next(flags="A", seq=conn.ack, ack=conn.seq)
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN


@case("RFC 9293 §3.8.6")
def test_zero_window_then_window_update_resumes_sending(case: Case, dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    conn.send("A", window=0)
    assert dut.send(fd, b"q" * 500) == 500  # queued, not sent
    conn.expect_none(0.1, payload_len=lambda n: n > 0)
    opened_at = case.now()
    conn.send("A", window=65535)
    assert conn.ack is not None
    data = conn.expect(seq=conn.ack, payload=b"q" * 500)
    assert data.time >= opened_at


@case("RFC 6298 §5.4, §5.5")
def test_unacked_data_is_retransmitted_after_the_rto_with_backoff(dut: Dut, conn: TcpConnection) -> None:
    fd, _ = dut.establish(conn)
    dut.send(fd, b"r" * 100)
    first = conn.expect(payload=b"r" * 100)
    again = conn.expect(seq=first.seq, payload=b"r" * 100, timeout=2.0)  # the earliest unacked
    twice = conn.expect(seq=first.seq, payload=b"r" * 100, timeout=4.0)
    rto = again.time - first.time
    assert 0.2 - 1e-6 <= rto <= 1.5, f"first retransmission after {rto:.3f} s"  # Linux's floor: 200 ms
    backoff = (twice.time - again.time) / rto
    assert 1.7 <= backoff <= 2.3, f"timer backed off by x{backoff:.2f}, not x2"
    conn.send("A")
    conn.expect_none(0.3, payload_len=lambda n: n > 0)


@case("RFC 1122 §4.1.3.1, RFC 792")
def test_udp_to_a_closed_port_draws_port_unreachable(case: Case, udp: UdpFlow) -> None:
    udp.send(b"anyone?", dut_port=9)
    while (pkt := case.sniff_any(1.0)) is not None:
        if ICMP in pkt:
            break
    assert pkt is not None, "no ICMP error"
    assert match({"icmp.type": "dest-unreach", "icmp.code": "port-unreachable"}, pkt) == []
    quoted = pkt[IPerror]  # the offending datagram's header and first octets
    assert (quoted.src, quoted.dst) == (case.remote_ip, case.local_ip)
    assert (pkt[UDPerror].sport, pkt[UDPerror].dport) == (udp.bench_port, 9)


@case("RFC 768, RFC 1122 §4.1.3.5")
def test_udp_datagrams_carry_their_source_address_both_ways(dut: Dut, udp: UdpFlow) -> None:
    fd = dut.bind_udp(5353)
    udp.send(b"question", dut_port=5353)
    data, peer = dut.recvfrom(fd)
    assert (data, peer) == (b"question", (udp.bench_ip, udp.bench_port))
    assert dut.sendto(fd, b"answer", peer) == 6
    reply = udp.expect(payload=b"answer", sport=5353)
    assert reply[IP].src == dut.case.local_ip
    assert dut.poll([(fd, select.POLLIN)], 0) == [(fd, 0)]  # nothing more to read
