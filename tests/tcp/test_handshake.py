"""Connection establishment (RFC 9293 §3.5, §3.10.7.2-3) in the inject/expect style."""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.tcp.state import TcpState
from refstack.wire import NOP, SACK_PERMITTED, Mss, Timestamps, WindowScale
from tests.tcp.peer import REMOTE, Peer

LINUX_SYN = [Mss(1460), SACK_PERMITTED, Timestamps(100, 0), NOP, WindowScale(7)]


def passive(peer: Peer, options: list | None = None) -> int:  # type: ignore[type-arg]
    """Inject a SYN at a listener; return the ISS of the SYN-ACK."""
    peer.listener()
    peer.inject("S", 0, options=options if options is not None else [Mss(1000)])
    return peer.expect("S.", ack=1).seq


def test_passive_open_mss_only_mirrors_options_and_window() -> None:
    """§3.10.7.2 third: SYN -> <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.  With only MSS
    offered the SYN-ACK carries only MSS (RFC 7323 §2.2/§3.2, RFC 2018 §2) and the
    window is 65535 rounded down to 44 x 1460 = 64240, as Linux."""
    peer = Peer()
    peer.listener()
    peer.inject("S", 0, options=[Mss(1000)])
    peer.expect("S.", ack=1, win=64240, options=(Mss(1460),))


def test_passive_open_linux_option_layout_with_timestamps() -> None:
    """A full SYN gets MSS, SACK-permitted, TS, NOP, WS (Linux's layout) and window
    65160 = 45 x 1448 (the MSS less the 12 option bytes); WS 10 from tcp_rmem."""
    peer = Peer()
    peer.listener()
    peer.inject("S", 0, options=LINUX_SYN)
    seg = peer.expect("S.", ack=1, win=65160)
    ts = seg.timestamps
    assert ts is not None and ts.tsecr == 100
    assert seg.options == (Mss(1460), SACK_PERMITTED, ts, NOP, WindowScale(10))


def test_passive_open_completes_on_ack_and_is_accepted() -> None:
    """SYN-RECEIVED + acceptable ACK -> ESTABLISHED (§3.10.7.4 fifth)."""
    peer = Peer()
    iss = passive(peer)
    listener = peer.stack.tcp.listeners[(bytes(4), 8080)]
    peer.inject(".", 1, iss + 1)
    conn = listener.accept()
    assert conn.state == TcpState.ESTABLISHED and conn.remote == (REMOTE, peer.port)
    peer.expect_nothing()


def test_synack_retransmitted_with_backoff_then_dropped() -> None:
    """RFC 6298 §5.5 doubling from 1 s (Linux's SYN-ACK timer too), at most
    tcp_synack_retries (5) times; then the request is dropped."""
    peer = Peer()
    iss = passive(peer)
    times = [1, 3, 7, 15, 31]
    for t in times:
        peer.at(t)
        peer.expect("S.", seq=iss, ack=1, at=t)
    peer.expect_nothing(until=100)
    assert not peer.stack.tcp.connections


def test_retransmitted_syn_in_syn_received_gets_synack_again() -> None:
    """Linux answers the SYN retransmission with the SYN-ACK (matrix D8, RFC ambiguity A4)."""
    peer = Peer()
    iss = passive(peer)
    peer.at(0.5)
    peer.inject("S", 0, options=[Mss(1000)])
    peer.expect("S.", seq=iss, ack=1)


def test_rst_in_passive_syn_received_returns_to_listen() -> None:
    """§3.10.7.4 second: SYN-RECEIVED from a passive OPEN goes back to LISTEN (MUST-11)."""
    peer = Peer()
    passive(peer)
    peer.inject("R", 1)
    assert not peer.stack.tcp.connections
    assert peer.stack.tcp.listeners[(bytes(4), 8080)].state == TcpState.LISTEN
    peer.expect_nothing(until=5)


def test_bad_ack_in_syn_received_draws_reset() -> None:
    """§3.10.7.4 fifth, SYN-RECEIVED: an unacceptable ACK -> <SEQ=SEG.ACK><CTL=RST>."""
    peer = Peer()
    iss = passive(peer)
    peer.inject(".", 1, iss + 100)
    peer.expect("R", seq=iss + 100)


def test_syn_to_closed_port_draws_rst_ack() -> None:
    """§3.10.7.1: no ACK -> <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    peer = Peer()
    peer.inject("S", 1000)
    peer.expect("R.", seq=0, ack=1001, win=0)


def test_ack_to_closed_port_draws_rst_at_seg_ack() -> None:
    peer = Peer()
    peer.inject(".", 1000, 5000, payload=b"abc")
    peer.expect("R", seq=5000)


def test_rst_to_closed_port_is_dropped() -> None:
    peer = Peer()
    peer.inject("R", 1000)
    peer.inject("R.", 1000, 5)
    peer.expect_nothing(until=1)


def test_ack_to_listener_draws_reset() -> None:
    """§3.10.7.2 second: any ACK at a listener -> <SEQ=SEG.ACK><CTL=RST>."""
    peer = Peer()
    peer.listener()
    peer.inject(".", 10, 777)
    peer.expect("R", seq=777)


def test_syn_fin_at_listener_is_a_syn() -> None:
    """RFC 9293 §3.10.7.2 L3: SYN+FIN at a listener draws a SYN,ACK acking the SYN
    only; the FIN waits (Linux drops the segment: matrix D10)."""
    peer = Peer()
    peer.listener()
    peer.inject("SF", 0)
    synack = peer.expect("S.")
    assert synack.ack == 1


def test_full_accept_queue_drops_syns() -> None:
    """Linux drops a SYN when the accept queue is full: more than the backlog queued
    (sk_acceptq_is_full), so listen(0) holds one connection."""
    peer = Peer()
    peer.listener(backlog=0)
    peer.inject("S", 0, options=[Mss(1000)], sport=1111)
    iss = peer.expect("S.").seq
    peer.inject(".", 1, iss + 1, sport=1111)
    peer.inject("S", 0, options=[Mss(1000)], sport=2222)
    peer.expect_nothing()
    assert peer.stack.counters["tcp_listen_overflow"] == 1


def active(peer: Peer, profile_options: bool = True) -> tuple[object, int]:
    conn = peer.stack.tcp.endpoint()
    conn.connect(REMOTE, 8080, peer.now)
    peer.at(peer.now)
    syn = peer.expect("S", ack=0, win=64240)
    return conn, syn.seq


def test_active_open_syn_options_linux_layout() -> None:
    """RFC 9293 §3.10.1 OPEN: a SYN with MSS 1460, SACK-permitted, TS, NOP, WS 10."""
    peer = Peer()
    conn = peer.stack.tcp.endpoint()
    conn.connect(REMOTE, 8080, 0.0)
    peer.at(0.0)
    seg = peer.expect("S", win=64240)
    ts = seg.timestamps
    assert ts is not None and ts.tsecr == 0
    assert seg.options == (Mss(1460), SACK_PERMITTED, ts, NOP, WindowScale(10))
    assert 32768 <= seg.src_port <= 60999 and seg.src_port % 2 == 0  # Linux connect(): even ports


def test_active_open_established_on_synack() -> None:
    """SYN-SENT + SYN,ACK acking our SYN -> ESTABLISHED and <ACK> (§3.10.7.3 fourth)."""
    peer = Peer()
    conn, iss = active(peer)
    peer.port = peer.stack.tcp.connections.copy().popitem()[0][1]
    peer.at(0.1)
    peer.inject("S.", 5000, iss + 1, dport=peer.port, sport=8080, options=[Mss(1000)])
    peer.expect(".", seq=iss + 1, ack=5001)
    assert conn.state == TcpState.ESTABLISHED  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("profile", "intervals"),
    [
        (Profile(), [1, 2, 4, 8, 16, 32]),  # RFC 6298 §5.5
        # tcp_syn_linear_timeouts = 4: five 1 s intervals, then doubling, and 6 + 4 tries
        (Profile.linux(), [1, 1, 1, 1, 1, 2, 4, 8, 16, 32]),
    ],
)
def test_syn_retransmission_schedule(profile: Profile, intervals: list[int]) -> None:
    """tcp_syn_retries (+ linear timeouts on Linux) retransmissions, then ETIMEDOUT
    after one more doubled interval (RFC 9293 §3.8.3, MUST-20)."""
    peer = Peer(profile)
    conn, iss = active(peer)
    t = 0
    for gap in intervals:
        t += gap
        peer.at(t)
        peer.expect("S", seq=iss, at=t)
    peer.at(t + intervals[-1] * 2)
    peer.expect_nothing()
    assert conn.state == TcpState.CLOSED and conn.connect_result() == errno.ETIMEDOUT  # type: ignore[attr-defined]


def _syn_sent(peer: Peer) -> tuple[object, int, int]:
    conn, iss = active(peer)
    port = next(iter(peer.stack.tcp.connections))[1]
    return conn, iss, port


def test_syn_sent_rst_with_acceptable_ack_refuses() -> None:
    """§3.10.7.3 second: RST with an acceptable ACK -> CLOSED, "connection reset";
    Linux reports ECONNREFUSED (matrix D10)."""
    peer = Peer()
    conn, iss, port = _syn_sent(peer)
    peer.inject("R.", 0, iss + 1, sport=8080, dport=port)
    assert conn.state == TcpState.CLOSED and conn.connect_result() == errno.ECONNREFUSED  # type: ignore[attr-defined]
    peer.expect_nothing()


def test_syn_sent_rst_without_ack_is_dropped() -> None:
    peer = Peer()
    conn, _, port = _syn_sent(peer)
    peer.inject("R", 0, sport=8080, dport=port)
    assert conn.state == TcpState.SYN_SENT  # type: ignore[attr-defined]


def test_syn_sent_unacceptable_ack_draws_reset() -> None:
    """§3.10.7.3 first: SEG.ACK =< ISS or > SND.NXT -> <SEQ=SEG.ACK><CTL=RST>."""
    peer = Peer()
    conn, iss, port = _syn_sent(peer)
    peer.inject("S.", 9, iss + 5, sport=8080, dport=port)
    peer.expect("R", seq=iss + 5)
    assert conn.state == TcpState.SYN_SENT  # type: ignore[attr-defined]


def test_simultaneous_open() -> None:
    """MUST-10: SYN-SENT + SYN -> SYN-RECEIVED with <SYN,ACK>; its ACK -> ESTABLISHED."""
    peer = Peer()
    conn, iss, port = _syn_sent(peer)
    peer.inject("S", 700, sport=8080, dport=port, options=[Mss(1000)])
    peer.expect("S.", seq=iss, ack=701)
    assert conn.state == TcpState.SYN_RECEIVED  # type: ignore[attr-defined]
    peer.inject(".", 701, iss + 1, sport=8080, dport=port)
    assert conn.state == TcpState.ESTABLISHED  # type: ignore[attr-defined]
