"""Closing (RFC 9293 §3.6, §3.10.4, §3.10.7.4 eighth), TIME-WAIT, aborts, keep-alive, PAWS."""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.tcp.state import TcpState
from refstack.wire import NOP, SACK_PERMITTED, Mss, Timestamps, WindowScale
from tests.tcp.conftest import Conn, establish


def test_active_close_through_time_wait(conn: Conn) -> None:
    """ESTABLISHED -close-> FIN-WAIT-1 -ACK-> FIN-WAIT-2 -FIN-> TIME-WAIT -2MSL-> CLOSED."""
    p, iss = conn.peer, conn.iss
    conn.ep.close(p.now)
    p.at(p.now)
    p.expect("F.", seq=iss + 1, ack=1)
    assert conn.ep.state == TcpState.FIN_WAIT_1
    p.inject(".", 1, iss + 2)
    assert conn.ep.state == TcpState.FIN_WAIT_2
    p.at(1.0)
    p.inject("F.", 1, iss + 2)
    p.expect(".", seq=iss + 2, ack=2)
    assert conn.ep.state == TcpState.TIME_WAIT
    p.at(60.999)
    assert conn.ep.state == TcpState.TIME_WAIT
    p.at(61.0)
    assert conn.ep.state == TcpState.CLOSED
    p.expect_nothing()


def test_time_wait_acks_retransmitted_fin_and_restarts_timer(conn: Conn) -> None:
    """MUST-13: a retransmitted FIN in TIME-WAIT is ACKed and 2MSL restarts."""
    p, iss = conn.peer, conn.iss
    conn.ep.close(p.now)
    p.at(0)
    p.expect("F.")
    p.inject("F.", 1, iss + 2)
    p.expect(".", ack=2)
    p.at(30)
    p.inject("F.", 1, iss + 2)
    p.expect(".", seq=iss + 2, ack=2)
    p.at(89)
    assert conn.ep.state == TcpState.TIME_WAIT
    p.at(90)
    assert conn.ep.state == TcpState.CLOSED


def test_passive_close(conn: Conn) -> None:
    """After data, a FIN -> CLOSE-WAIT and EOF to the app with its ACK delayed 40 ms
    (Linux: pingpong, ato TCP_ATO_MIN); close -> FIN, LAST-ACK; ACK -> CLOSED."""
    p, iss = conn.peer, conn.iss
    p.inject("P.", 1, iss + 1, payload=b"x" * 10)
    p.expect(".", ack=11)
    p.inject("F.", 11, iss + 1)
    assert conn.ep.state == TcpState.CLOSE_WAIT and conn.ep.recv(100) == b"x" * 10
    assert conn.ep.recv(10) == b""
    p.expect_nothing(until=0.039)
    p.at(0.04)
    p.expect(".", seq=iss + 1, ack=12, at=0.04)
    conn.ep.close(p.now)
    p.at(p.now)
    p.expect("F.", seq=iss + 1, ack=12)
    assert conn.ep.state == TcpState.LAST_ACK
    p.inject(".", 12, iss + 2)
    assert conn.ep.state == TcpState.CLOSED


def test_fin_before_any_data_is_acked_at_once(conn: Conn) -> None:
    """Linux's delayed-ACK timeout is 0 until the first data segment (icsk_ack.ato), so
    a FIN on a connection that never carried data is ACKed at once (checked on Linux)."""
    p, iss = conn.peer, conn.iss
    p.inject("F.", 1, iss + 1)
    p.at(p.now)
    p.expect(".", seq=iss + 1, ack=2, at=0.0)
    assert conn.ep.state == TcpState.CLOSE_WAIT


def test_close_right_after_peer_fin_sends_one_fin_ack(conn: Conn) -> None:
    """GRAMMAR.md §10 (verified on Linux): after data, the delayed ACK of the peer's
    FIN rides on our FIN when the application closes at once."""
    p, iss = conn.peer, conn.iss
    p.inject("P.", 1, iss + 1, payload=b"x" * 10)
    p.expect(".", ack=11)
    conn.ep.recv(100)
    p.inject("F.", 11, iss + 1)
    conn.ep.close(p.now)
    p.at(p.now)
    p.expect("F.", seq=iss + 1, ack=12)
    p.expect_nothing()  # no separate ACK of the peer's FIN was sent
    p.inject(".", 12, iss + 2)
    p.expect_nothing(until=1.0)  # and, with our FIN acknowledged, nothing follows


def test_simultaneous_close(conn: Conn) -> None:
    """FIN-WAIT-1 + FIN -> CLOSING; ACK of our FIN -> TIME-WAIT (§3.10.7.4 eighth)."""
    p, iss = conn.peer, conn.iss
    conn.ep.close(p.now)
    p.at(0)
    p.expect("F.", seq=iss + 1, ack=1)
    p.inject("F.", 1, iss + 1)
    p.expect(".", seq=iss + 2, ack=2)
    assert conn.ep.state == TcpState.CLOSING
    p.inject(".", 2, iss + 2)
    assert conn.ep.state == TcpState.TIME_WAIT


def test_half_close_keeps_receiving(conn: Conn) -> None:
    """shutdown(SHUT_WR): our FIN goes, data from the peer still arrives (§3.6)."""
    p, iss = conn.peer, conn.iss
    conn.ep.shutdown(1, p.now)
    p.at(0)
    p.expect("F.", seq=iss + 1)
    p.inject(".", 1, iss + 2, payload=b"more data")
    p.expect(".", ack=10)
    assert conn.ep.recv(100) == b"more data" and conn.ep.state == TcpState.FIN_WAIT_2


def test_fin_retransmitted_on_timeout(conn: Conn) -> None:
    p, iss = conn.peer, conn.iss
    conn.ep.close(p.now)
    p.at(0)
    p.expect("F.", seq=iss + 1, at=0)
    p.at(0.2)
    p.expect("F.", seq=iss + 1, at=0.2)


def test_fin_rides_on_queued_data(conn: Conn) -> None:
    """Linux sets FIN on the last queued segment (tcp_send_fin) and pushes it out,
    Nagle notwithstanding."""
    p, iss = conn.peer, conn.iss
    conn.send(b"head")
    p.expect("P.", seq=iss + 1, length=4)
    conn.send(b"tail")  # held by Nagle: a small segment is unacknowledged
    p.expect_nothing()
    conn.ep.close(p.now)
    p.at(p.now)
    p.expect("FP.", seq=iss + 5, length=4)


def test_close_with_unread_data_sends_rst(conn: Conn) -> None:
    """RFC 9293 §3.10.4 / RFC 2525 §2.17, as Linux: unread data -> RST (with ACK)."""
    p, iss = conn.peer, conn.iss
    p.inject("P.", 1, iss + 1, payload=b"unread")
    p.expect(".", ack=7)
    conn.ep.close(p.now)
    p.at(p.now)
    p.expect("R.", seq=iss + 1, ack=7)
    assert conn.ep.state == TcpState.CLOSED


def test_linger_zero_close_sends_rst(conn: Conn) -> None:
    """SO_LINGER with l_linger 0: close aborts with RST (RFC 9293 §3.10.5 ABORT)."""
    conn.ep.linger = 0
    conn.ep.close(conn.peer.now)
    conn.peer.at(conn.peer.now)
    conn.peer.expect("R.", seq=conn.iss + 1, ack=1)


def test_rst_in_time_wait_closes(conn: Conn) -> None:
    """§3.10.7.4 second: TIME-WAIT + exact RST -> CLOSED (RFC 1337 ambiguity A6)."""
    p, iss = conn.peer, conn.iss
    conn.ep.close(p.now)
    p.at(0)
    p.expect("F.")
    p.inject("F.", 1, iss + 2)
    p.expect(".")
    p.inject("R", 2)
    assert conn.ep.state == TcpState.CLOSED


def test_data_after_peer_fin_is_ignored(conn: Conn) -> None:
    """§3.10.7.4 seventh: text after the FIN (CLOSE-WAIT) is ignored."""
    p, iss = conn.peer, conn.iss
    p.inject("F.", 1, iss + 1)
    p.at(0.04)
    p.expect(".", ack=2)
    p.inject("P.", 2, iss + 1, payload=b"late")
    assert conn.ep.recv(10) == b""


def test_keepalive_probes_then_abort() -> None:
    """RFC 1122 §4.2.3.6 / RFC 9293 §3.8.4: after idle, <SEQ=SND.UNA-1> probes with no
    data (SHLD-12) every interval; keepcnt unanswered -> ETIMEDOUT."""
    c = establish()
    c.ep.keepalive, c.ep.keepidle, c.ep.keepintvl, c.ep.keepcnt = True, 10.0, 2.0, 3
    c.ep.arm_keepalive(0.0)
    p = c.peer
    for t in (10.0, 12.0, 14.0):
        p.at(t)
        p.expect(".", seq=c.iss, ack=1, length=0, at=t)
    p.at(16.0)
    p.expect("R.", seq=c.iss + 1, ack=1, at=16.0)  # Linux resets what it gives up on
    assert c.ep.state == TcpState.CLOSED and c.ep.take_error() == errno.ETIMEDOUT


def test_keepalive_answer_keeps_connection() -> None:
    """MUST-29: an answered probe resets the count; the connection lives on."""
    c = establish()
    c.ep.keepalive, c.ep.keepidle, c.ep.keepintvl, c.ep.keepcnt = True, 10.0, 2.0, 3
    c.ep.arm_keepalive(0.0)
    p = c.peer
    p.at(10.0)
    p.expect(".", seq=c.iss)
    p.inject(".", 1, c.iss + 1)
    p.at(19.99)
    p.expect_nothing()
    p.at(20.0)
    p.expect(".", seq=c.iss, at=20.0)
    assert c.ep.state == TcpState.ESTABLISHED


def test_setting_so_keepalive_arms_the_timer_from_the_last_segment() -> None:
    """Regression: setting SO_KEEPALIVE / TCP_KEEPIDLE did not arm the timer, so a
    socket configured through setsockopt never probed (found with the harness)."""
    c = establish()
    c.peer.at(3.0)
    c.ep.keepidle, c.ep.keepintvl, c.ep.keepcnt = 10.0, 2.0, 3
    c.ep.keepalive = True
    c.peer.expect_nothing(until=9.99)
    c.peer.at(10.0)  # ten idle seconds after the last segment (t=0), as Linux counts
    c.peer.expect(".", seq=c.iss, ack=1, length=0, at=10.0)


def test_keepalive_off_by_default(conn: Conn) -> None:
    """MUST-25: keep-alives default to off."""
    assert not conn.ep.keepalive
    conn.peer.expect_nothing(until=8000)


@pytest.fixture
def ts_conn() -> Conn:
    return establish(options=[Mss(1000), SACK_PERMITTED, Timestamps(1000, 0), NOP, WindowScale(7)])


def test_paws_rejects_old_timestamp(ts_conn: Conn) -> None:
    """RFC 7323 §5.3: TSval older than TS.Recent -> ACK, segment dropped."""
    c = ts_conn
    p = c.peer
    p.inject(".", 1, c.iss + 1, payload=b"new", options=[NOP, NOP, Timestamps(2000, 0)])
    p.expect(".", ack=4)
    p.inject(".", 4, c.iss + 1, payload=b"old", options=[NOP, NOP, Timestamps(1500, 0)])
    seg = p.expect(".", ack=4)
    assert seg.timestamps is not None and seg.timestamps.tsecr == 2000
    assert c.ep.recv(10) == b"new"


def test_timestamps_echo_ts_recent(ts_conn: Conn) -> None:
    """RFC 7323 §4.3: TSecr echoes the TSval of the segment that advanced Last.ACK.sent."""
    c = ts_conn
    c.peer.inject(".", 1, c.iss + 1, payload=b"abc", options=[NOP, NOP, Timestamps(5555, 0)])
    seg = c.peer.expect(".", ack=4)
    assert seg.timestamps is not None and seg.timestamps.tsecr == 5555
    assert seg.options[:2] == (NOP, NOP)


def test_window_scale_applied_after_handshake(ts_conn: Conn) -> None:
    """RFC 7323 §2.3: windows in non-SYN segments are scaled; ours by 10."""
    c = ts_conn
    c.peer.inject(".", 1, c.iss + 1, payload=b"abc", options=[NOP, NOP, Timestamps(6000, 0)])
    seg = c.peer.expect(".", ack=4)
    assert seg.window == 64  # ceil(65160 / 1024): Linux rounds the scaled window up
    assert c.ep.snd_wscale == 7


def test_profile_without_sack_or_timestamps() -> None:
    """Sysctls tcp_sack=0 / tcp_timestamps=0 remove those options from the SYN-ACK."""
    c = establish(
        Profile().replace(tcp_sack=False, tcp_timestamps=False),
        options=[Mss(1000), SACK_PERMITTED, Timestamps(1, 0), NOP, WindowScale(7)],
    )
    assert not c.ep.sack_ok and not c.ep.ts_ok and c.ep.ws_ok
