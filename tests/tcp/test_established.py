"""ESTABLISHED: segment arrival (RFC 9293 §3.10.7.4), ACK policy, sending, retransmission."""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.tcp.state import TcpState
from refstack.wire import NOP, Mss, Sack
from tests.tcp.conftest import Conn, establish

DATA = bytes(range(256)) * 40


# --- receiving ------------------------------------------------------------------------------


def test_first_data_is_quick_acked(conn: Conn) -> None:
    """Linux ACKs the first segments at once (quick-ack mode)."""
    conn.peer.inject("P.", 1, conn.iss + 1, payload=b"x" * 100)
    conn.peer.expect(".", seq=conn.iss + 1, ack=101)
    assert conn.ep.recv(1000) == b"x" * 100


def test_small_segment_ack_delayed_40ms() -> None:
    """RFC 1122 §4.2.3.2 delayed ACK (< 0.5 s); Linux's minimum delay is 40 ms."""
    c = establish(Profile().replace(tcp_quickack_segments=0))
    c.peer.inject("P.", 1, c.iss + 1, payload=b"x" * 10)
    c.peer.expect_nothing(until=0.039)
    c.peer.at(0.04)
    c.peer.expect(".", ack=11, at=0.04)


def test_every_second_full_segment_acked_at_once() -> None:
    """RFC 1122 §4.2.3.2 / RFC 5681 §4.2: an ACK at least for every second full segment."""
    c = establish(Profile().replace(tcp_quickack_segments=0))
    c.peer.inject(".", 1, c.iss + 1, payload=b"a" * 1000)
    c.peer.inject(".", 1001, c.iss + 1, payload=b"b" * 1000)
    c.peer.expect(".", ack=2001, at=0.0)


def test_out_of_order_segment_draws_immediate_dupack(conn: Conn) -> None:
    """RFC 5681 §4.2 / RFC 9293 §3.10.7.4 seventh: queue it, ACK RCV.NXT at once."""
    conn.peer.inject(".", 1001, conn.iss + 1, payload=b"b" * 1000)
    conn.peer.expect(".", ack=1)
    conn.peer.inject(".", 1, conn.iss + 1, payload=b"a" * 1000)
    conn.peer.expect(".", ack=2001)
    assert conn.ep.recv(5000) == b"a" * 1000 + b"b" * 1000


def test_out_of_order_dupack_carries_sack_block(sack_conn: Conn) -> None:
    """RFC 2018 §4: the first SACK block covers the most recent segment."""
    c = sack_conn
    c.peer.inject(".", 1001, c.iss + 1, payload=b"b" * 500)
    seg = c.peer.expect(".", ack=1)
    assert seg.sack_blocks == ((1001, 1501),)


def test_duplicate_segment_reported_with_dsack(sack_conn: Conn) -> None:
    """RFC 2883 §4: a duplicate below RCV.NXT is reported as the first SACK block."""
    c = sack_conn
    c.peer.inject(".", 1, c.iss + 1, payload=b"a" * 100)
    c.peer.expect(".", ack=101)
    c.peer.inject(".", 1, c.iss + 1, payload=b"a" * 100)
    seg = c.peer.expect(".", ack=101)
    assert seg.sack_blocks == ((1, 101),)


def test_ack_beyond_window_draws_ack_then_rate_limited(conn: Conn) -> None:
    """§3.10.7.4 first: unacceptable -> <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>; Linux
    answers pure ACKs at most once per 500 ms (tcp_invalid_ratelimit, matrix D13)."""
    p = conn.peer
    p.inject(".", 10_000_000, conn.iss + 1)
    p.expect(".", seq=conn.iss + 1, ack=1)
    p.at(0.1)
    p.inject(".", 10_000_000, conn.iss + 1)
    p.expect_nothing()
    p.at(0.7)
    p.inject(".", 10_000_000, conn.iss + 1)
    p.expect(".", ack=1)


def test_data_beyond_window_always_answered(conn: Conn) -> None:
    """Segments that carry data are exempt from the rate limit (Linux tcp_oow_rate_limited)."""
    p = conn.peer
    for _ in range(3):
        p.inject(".", 10_000_000, conn.iss + 1, payload=b"z")
        p.expect(".", seq=conn.iss + 1, ack=1)


def test_exact_rst_resets_connection(conn: Conn) -> None:
    """§3.10.7.4 second (RFC 5961 §3.2): RST at RCV.NXT -> CLOSED, ECONNRESET."""
    conn.peer.inject("R", 1)
    assert conn.ep.state == TcpState.CLOSED
    with pytest.raises(ConnectionResetError):
        conn.ep.recv(10)
    conn.peer.expect_nothing()


def test_in_window_rst_draws_challenge_ack(conn: Conn) -> None:
    """RFC 5961 §3.2: in window but not exact -> challenge ACK, connection stays."""
    conn.peer.inject("R", 100)
    conn.peer.expect(".", seq=conn.iss + 1, ack=1)
    assert conn.ep.state == TcpState.ESTABLISHED


def test_rst_outside_window_is_dropped(conn: Conn) -> None:
    conn.peer.inject("R", 5_000_000)
    conn.peer.expect_nothing(until=1)
    assert conn.ep.state == TcpState.ESTABLISHED


def test_syn_in_established_draws_challenge_ack(conn: Conn) -> None:
    """RFC 5961 §4: a SYN at any sequence number -> challenge ACK, no reset."""
    conn.peer.inject("S", 0, options=[Mss(1000)])
    conn.peer.expect(".", seq=conn.iss + 1, ack=1)
    assert conn.ep.state == TcpState.ESTABLISHED


def test_ack_of_unsent_data_is_answered_and_dropped(conn: Conn) -> None:
    """RFC 5961 §5.2 / §3.10.7.4 fifth: SEG.ACK > SND.NXT -> ACK, drop (text too)."""
    conn.peer.inject(".", 1, conn.iss + 1000, payload=b"q" * 10)
    conn.peer.expect(".", seq=conn.iss + 1, ack=1)
    with pytest.raises(BlockingIOError):
        conn.ep.recv(10)


def test_segment_without_ack_is_dropped(conn: Conn) -> None:
    """§3.10.7.4 fifth: if the ACK bit is off drop the segment."""
    conn.peer.inject("P", 1, payload=b"no ack")
    conn.peer.expect_nothing(until=1)
    with pytest.raises(BlockingIOError):
        conn.ep.recv(10)


# --- sending --------------------------------------------------------------------------------


def test_send_segments_at_peer_mss_with_push_on_last(conn: Conn) -> None:
    """MUST-16: segments of the effective MSS (the peer's 1000); PSH on the last."""
    assert conn.send(DATA[:2500]) == 2500
    p = conn.peer
    p.expect(".", seq=conn.iss + 1, length=1000)
    p.expect(".", seq=conn.iss + 1001, length=1000)
    p.expect("P.", seq=conn.iss + 2001, length=500)


def test_initial_window_is_ten_segments(conn: Conn) -> None:
    """RFC 6928 / Linux TCP_INIT_CWND: 10 segments before the first ACK."""
    conn.send(DATA[:10240] + DATA[:5000])
    sent = [conn.peer.expect(".P"[i == 9] + "." if i == 9 else ".", length=1000) for i in range(9)]
    assert len(sent) == 9 and len(conn.peer.out) == 1
    conn.peer.expect(".", length=1000)
    conn.peer.expect_nothing()


def test_nagle_holds_small_segment_until_ack(conn: Conn) -> None:
    """RFC 9293 §3.7.4 (RFC 1122 §4.2.3.4): one small segment outstanding at a time."""
    conn.send(b"a" * 10)
    conn.peer.expect("P.", length=10)
    conn.send(b"b" * 10)
    conn.peer.expect_nothing()
    conn.peer.inject(".", 1, conn.iss + 11)
    conn.peer.expect("P.", seq=conn.iss + 11, length=10)


def test_nodelay_sends_small_segments_at_once(conn: Conn) -> None:
    """MUST-17: the application can disable Nagle (TCP_NODELAY)."""
    conn.ep.nodelay = True
    conn.send(b"a" * 10)
    conn.send(b"b" * 10)
    conn.peer.expect("P.", length=10)
    conn.peer.expect("P.", seq=conn.iss + 11, length=10)


def test_retransmission_timeout_backs_off(conn: Conn) -> None:
    """RFC 6298 §5.4-5.5: resend the first unacked segment at RTO, doubling.  The
    handshake's RTT was 0, so RTO = 0 + max(4 x 0, 200 ms) (Linux rto_min)."""
    conn.send(b"a" * 100)
    conn.peer.expect("P.", length=100, at=0.0)
    for t in (0.2, 0.6, 1.4, 3.0):
        conn.peer.at(t)
        conn.peer.expect("P.", seq=conn.iss + 1, length=100, at=t)
    assert conn.ep.tcp_info()["tcpi_retransmits"] == 4


def test_ack_stops_retransmission_timer(conn: Conn) -> None:
    conn.send(b"a" * 100)
    conn.peer.expect("P.", length=100)
    conn.peer.at(0.1)
    conn.peer.inject(".", 1, conn.iss + 101)
    conn.peer.expect_nothing(until=5)


def test_three_dupacks_trigger_fast_retransmit(conn: Conn) -> None:
    """RFC 5681 §3.2: the third duplicate ACK retransmits SND.UNA's segment."""
    conn.send(DATA[:5000])
    for _ in range(5):
        conn.peer.out.popleft()
    p = conn.peer
    p.at(0.01)
    p.inject(".", 1, conn.iss + 1001)
    for _ in range(2):
        p.inject(".", 1, conn.iss + 1001)
        p.expect_nothing()
    p.inject(".", 1, conn.iss + 1001)
    p.expect(".", seq=conn.iss + 1001, length=1000, at=0.01)
    assert conn.ep.cc.in_recovery


def test_zero_window_probe_is_ack_below_snd_una(conn: Conn) -> None:
    """MUST-36: probe a zero window; Linux probes with <SEQ=SND.UNA-1> and no data,
    first after an RTO and backing off (SHLD-29, SHLD-30)."""
    p = conn.peer
    p.inject(".", 1, conn.iss + 1, win=0)
    conn.send(b"a" * 100)
    p.expect_nothing()
    p.at(0.2)
    p.expect(".", seq=conn.iss, ack=1, length=0, at=0.2)
    p.at(0.6)
    p.expect(".", seq=conn.iss, length=0, at=0.6)
    p.inject(".", 1, conn.iss + 1, win=1000)
    p.expect("P.", seq=conn.iss + 1, length=100)


def test_send_after_peer_reset_raises(conn: Conn) -> None:
    conn.peer.inject("R", 1)
    with pytest.raises(OSError) as info:
        conn.send(b"x")
    assert info.value.errno in (errno.ECONNRESET, errno.EPIPE)


def test_data_segments_carrying_sack_blocks_fit_the_mtu() -> None:
    """Regression: full-size data with SACK blocks exceeded the MTU (EMSGSIZE).  The
    payload shrinks by the SACK option (Linux tcp_current_mss)."""
    from refstack.wire import SACK_PERMITTED

    c = establish(options=[Mss(1460), SACK_PERMITTED])
    c.peer.inject(".", 5001, c.iss + 1, payload=b"o" * 100)  # out of order: one SACK block
    c.peer.expect(".", ack=1)
    c.send(DATA[:3000])
    seg = c.peer.expect(".", seq=c.iss + 1)
    assert seg.sack_blocks == ((5001, 5101),)
    assert 20 + seg.header_length + seg.payload_length <= 1500
    assert seg.payload_length == 1460 - 12


def test_rto_keeps_snd_nxt_so_our_acks_stay_acceptable(conn: Conn) -> None:
    """Regression: go-back after an RTO lowered SND.NXT, so our pure ACKs carried a
    sequence number below the peer's RCV.NXT and were dropped (a two-way deadlock).
    SND.NXT must stay the highest sequence number sent, as in Linux."""
    p, iss = conn.peer, conn.iss
    conn.send(DATA[:3000])
    for _ in range(3):
        p.out.popleft()
    p.at(0.2)
    p.expect(".", seq=iss + 1, length=1000)  # the RTO retransmission
    p.inject("P.", 1, iss + 1, payload=b"x" * 10)  # peer data: we ACK it
    p.expect(".", seq=iss + 3001, ack=11, length=0)


def test_retransmission_never_exceeds_what_was_sent() -> None:
    """Regression: once SACK blocks were gone the MSS grew, and an RTO retransmission
    resent a full MSS from SND.UNA, past SND.NXT and the peer's window."""
    from refstack.wire import SACK_PERMITTED

    c = establish(options=[Mss(1460), SACK_PERMITTED], win=1448)
    p, iss = c.peer, c.iss
    p.inject(".", 5001, iss + 1, win=1448, payload=b"o" * 100)  # a SACK block shrinks the MSS
    p.expect(".", ack=1)
    c.send(DATA[:5000])
    p.expect(".", seq=iss + 1, length=1460 - 12)  # 1460 less one SACK block (12 bytes)
    p.inject(".", 1, iss + 1, win=1448, payload=b"f" * 5000)  # fills the hole: no more SACK blocks
    p.expect(".", ack=5101)
    p.at(0.2)
    p.expect(".", seq=iss + 1, length=1448)  # the same octets, not a full 1460
    assert c.ep.snd_nxt == iss + 1 + 1448


# --- SACK-based loss recovery (RFC 6675) -----------------------------------------------------


def _flight_of_ten(c: Conn) -> None:
    c.send(DATA[:10000])
    for _ in range(10):
        c.peer.out.popleft()


def test_three_sack_dupacks_enter_rfc6675_recovery(sack_conn: Conn) -> None:
    """RFC 6675 §5 (4): DupThresh ACKs that SACK new data -> retransmit HighACK+1's
    segment, ssthresh = cwnd = FlightSize / 2."""
    c, p = sack_conn, sack_conn.peer
    _flight_of_ten(c)
    base = c.iss + 1
    p.inject(".", 1, base, options=[NOP, NOP, Sack(((base + 1000, base + 2000),))])
    p.expect_nothing()
    p.inject(".", 1, base, options=[NOP, NOP, Sack(((base + 1000, base + 2500),))])
    p.expect_nothing()
    p.inject(".", 1, base, options=[NOP, NOP, Sack(((base + 1000, base + 2900),))])
    p.expect(".", seq=base, length=1000)
    assert c.ep.cc.ssthresh == 5000 and c.ep.cc.cwnd == 5000 and c.ep.cc.in_recovery


def test_islost_enters_recovery_on_first_sack(sack_conn: Conn) -> None:
    """RFC 6675 §5 (2): one ACK SACKing more than (DupThresh-1) x SMSS above HighACK
    makes IsLost(HighACK+1) true: recovery starts at once."""
    c, p = sack_conn, sack_conn.peer
    _flight_of_ten(c)
    base = c.iss + 1
    p.inject(".", 1, base, options=[NOP, NOP, Sack(((base + 1000, base + 4000),))])
    p.expect(".", seq=base, length=1000)
    assert c.ep.layer.stack.counters["tcp_sack_recovery"] == 1


def test_sack_recovery_resends_every_hole_then_exits(sack_conn: Conn) -> None:
    """RFC 6675 §5 (C): NextSeg() rule 1 walks the lost holes; (A) a cumulative ACK
    beyond RecoveryPoint ends recovery."""
    c, p = sack_conn, sack_conn.peer
    _flight_of_ten(c)
    b = c.iss + 1
    holes = Sack(((b + 1000, b + 3000), (b + 4000, b + 10000)))
    p.inject(".", 1, b, options=[NOP, NOP, holes])
    p.expect(".", seq=b, length=1000)  # HighACK + 1
    p.inject(".", 1, b + 1000, options=[NOP, NOP, Sack(((b + 4000, b + 10000),))])
    p.expect(".", seq=b + 3000, length=1000)  # the second hole
    p.inject(".", 1, b + 10000)
    assert not c.ep.cc.in_recovery and not c.ep._sack_recovery


def test_rto_clears_the_scoreboard(sack_conn: Conn) -> None:
    """RFC 2018 §8 / RFC 6675 §5.1: after a timeout SACKed bits are turned off."""
    c, p = sack_conn, sack_conn.peer
    _flight_of_ten(c)
    b = c.iss + 1
    p.inject(".", 1, b, options=[NOP, NOP, Sack(((b + 1000, b + 2000),))])
    assert c.ep.scoreboard is not None and c.ep.scoreboard.sacked_bytes == 1000
    p.at(0.2)
    p.expect(".", seq=b, length=1000)
    assert c.ep.scoreboard.sacked_bytes == 0
