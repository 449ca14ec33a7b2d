"""Urgent data (RFC 9293 §3.8.5, §3.10.7.4 sixth; RFC 6093) as Linux implements it.

Every expectation here was first checked against the Linux 6.18 kernel: the wire
behaviour with ``.pkt`` scripts on the linux target, the socket behaviour over
loopback (see :mod:`refstack.tcp.urgent` for the kernel functions followed).
"""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.tcp.urgent import UrgentState, pointer_for, urgent_octet
from tests.tcp.conftest import Conn, establish
from tests.tcp.peer import Peer


def _errno_of(call: object) -> int:
    assert callable(call)
    with pytest.raises(OSError) as excinfo:
        call()
    assert excinfo.value.errno is not None
    return excinfo.value.errno


# --- the pointer ------------------------------------------------------------------------------


def test_pointer_names_the_octet_after_the_urgent_data() -> None:
    """RFC 6093 §2, MUST-62: SEG.SEQ + SEG.UP is the octet after; tcp_stdurg reads it
    the RFC 1122 way.  A zero pointer names SEG.SEQ either way (Linux tcp_check_urg)."""
    assert urgent_octet(100, 10) == 109
    assert urgent_octet(100, 10, stdurg=True) == 110
    assert urgent_octet(100, 0) == urgent_octet(100, 0, stdurg=True) == 100


def test_pointer_field_follows_tcp_transmit_skb() -> None:
    """URG only in urgent mode and before SND.UP; 0xFFFF when the distance does not fit
    16 bits, while the segment is within 0xFFFF of SND.NXT."""
    assert pointer_for(seq=1, snd_una=1, snd_up=1, snd_nxt=1) is None  # not in urgent mode
    assert pointer_for(seq=1, snd_una=1, snd_up=11, snd_nxt=1) == 10
    assert pointer_for(seq=11, snd_una=1, snd_up=11, snd_nxt=11) is None  # at or past SND.UP
    assert pointer_for(seq=0, snd_una=1, snd_up=11, snd_nxt=1) == 11  # a window probe
    assert pointer_for(seq=1, snd_una=1, snd_up=70_001, snd_nxt=1) == 0xFFFF
    assert pointer_for(seq=1, snd_una=1, snd_up=70_001, snd_nxt=70_000) is None


# --- sending ----------------------------------------------------------------------------------


def test_send_oob_sets_urg_and_pointer(conn: Conn) -> None:
    """§3.10.2 SEND with the urgent flag: the 10 octets leave with URG, pointer 10."""
    c = conn
    assert c.ep.send(b"0123456789", c.peer.now, urgent=True) == 10
    c.peer.at(c.peer.now)
    c.peer.expect("PU.", seq=c.iss + 1, length=10, up=10)
    c.peer.inject(".", 1, c.iss + 11)
    c.peer.expect_nothing(until=1.0)


def test_urgent_mode_ends_when_snd_una_passes_snd_up(conn: Conn) -> None:
    """Data after the urgent data carries URG only while SND.UP is unacknowledged."""
    c = conn
    c.ep.send(b"abc", c.peer.now, urgent=True)
    c.send(b"")
    c.peer.expect("PU.", length=3, up=3)
    c.peer.inject(".", 1, c.iss + 4)
    c.send(b"more")
    seg = c.peer.expect("P.", length=4)
    assert seg.urgent_pointer == 0


def test_urgent_data_skips_nagle(conn: Conn) -> None:
    """Linux tcp_nagle_test: no Nagle for urgent data; the held data goes with it."""
    c = conn
    c.send(b"12345")
    c.peer.expect("P.", length=5)
    c.send(b"67890")  # held by Nagle: a small segment is unacknowledged
    c.peer.expect_nothing()
    c.ep.send(b"!!!", c.peer.now, urgent=True)
    c.peer.at(c.peer.now)
    c.peer.expect("PU.", seq=c.iss + 6, length=8, up=8)


def test_pointer_rides_on_acks_and_probes_into_a_closed_window(conn: Conn) -> None:
    """The urgent pointer is sent before the urgent data can be: on the ACK of
    arriving data, and in the persist timer's ACK at SND.UNA sent before the usual
    probe at SND.UNA-1 (Linux tcp_write_wakeup)."""
    c = conn
    c.peer.inject(".", 1, c.iss + 1, win=0)
    c.ep.send(b"0123456789", c.peer.now, urgent=True)
    c.peer.at(c.peer.now)
    c.peer.expect_nothing()
    c.peer.inject("P.", 1, c.iss + 1, win=0, payload=b"data")
    c.peer.expect("U.", seq=c.iss + 1, ack=5, up=10)
    c.peer.at(0.5)
    c.peer.expect("U.", seq=c.iss + 1, ack=5, up=10)
    c.peer.expect("U.", seq=c.iss, ack=5, up=11)
    c.peer.inject(".", 5, c.iss + 1)
    c.peer.expect("PU.", seq=c.iss + 1, length=10, up=10)


def test_second_oob_send_moves_the_pointer_and_retransmission_keeps_it(conn: Conn) -> None:
    """SND.UP is the end of the last MSG_OOB send; a retransmission from a later
    SND.UNA carries SND.UP - SEG.SEQ."""
    c = conn
    c.peer.inject(".", 1, c.iss + 1, win=0)
    c.ep.send(b"abc", c.peer.now, urgent=True)
    c.ep.send(b"def", c.peer.now, urgent=True)
    c.ep.send(b"ghij", c.peer.now)
    c.peer.inject(".", 1, c.iss + 1)
    c.peer.expect("PU.", seq=c.iss + 1, length=10, up=6)
    c.peer.inject(".", 1, c.iss + 4)
    c.peer.at(1.0)
    c.peer.expect("PU.", seq=c.iss + 4, length=7, up=3)


# --- receiving --------------------------------------------------------------------------------


def _urgent(c: Conn, seq: int, payload: bytes, up: int) -> None:
    c.peer.inject("PU.", seq, c.iss + 1, payload=payload, up=up)


def test_urgent_octet_is_taken_out_of_band(conn: Conn) -> None:
    """MUST-32/33: POLLPRI while the octet waits; recv(MSG_OOB) returns it once and it
    is not read in band (the read stops before it and then skips it)."""
    c = conn
    _urgent(c, 1, b"0123456789", up=10)
    c.peer.expect(".", ack=11)
    assert c.ep.urgent_pending and not c.ep.at_mark
    assert c.ep.recv_urgent(peek=True) == b"9"
    assert c.ep.recv_urgent() == b"9"
    assert not c.ep.urgent_pending
    assert _errno_of(c.ep.recv_urgent) == errno.EINVAL
    assert c.ep.recv(100) == b"012345678"
    assert c.ep.at_mark and not c.ep.readable  # only the urgent octet is left
    with pytest.raises(BlockingIOError):
        c.ep.recv(100)  # skips it
    assert not c.ep.at_mark and c.ep.urgent.state is UrgentState.NONE


def test_read_stops_at_the_mark_and_skips_the_octet(conn: Conn) -> None:
    c = conn
    c.peer.inject("P.", 1, c.iss + 1, payload=b"ab")
    _urgent(c, 3, b"U", up=1)
    c.peer.inject("P.", 4, c.iss + 1, payload=b"cd")
    assert c.ep.recv(100, peek=True) == b"ab"
    assert c.ep.recv(100) == b"ab"
    assert c.ep.at_mark and c.ep.readable  # "cd" is readable past the octet
    assert c.ep.recv(100, peek=True) == b"cd"
    assert c.ep.recv_urgent() == b"U"
    assert c.ep.recv(100) == b"cd"


def test_reading_past_the_mark_forfeits_the_octet(conn: Conn) -> None:
    """Linux clears urg_data once the reader passes the mark: the octet is gone."""
    c = conn
    _urgent(c, 1, b"abU", up=3)
    c.peer.inject("P.", 4, c.iss + 1, payload=b"cd")
    assert c.ep.recv(100) == b"ab"
    assert c.ep.recv(100) == b"cd"
    assert _errno_of(c.ep.recv_urgent) == errno.EINVAL


def test_oobinline_keeps_the_octet_in_the_stream(conn: Conn) -> None:
    """SO_OOBINLINE (RFC 6093 §5): all octets in order, the read still stops once at
    the mark, and there is nothing out of band."""
    c = conn
    c.ep.oobinline = True
    _urgent(c, 1, b"0123456789", up=10)
    assert c.ep.urgent_pending
    assert c.ep.recv(100) == b"012345678"
    assert c.ep.at_mark and c.ep.readable
    assert c.ep.recv(100) == b"9"
    assert _errno_of(c.ep.recv_urgent) == errno.EINVAL


def test_newer_pointer_replaces_an_unread_octet(conn: Conn) -> None:
    """The older urgent octet stays in the normal stream; the newer one is out of band."""
    c = conn
    _urgent(c, 1, b"12A", up=3)
    _urgent(c, 4, b"34B", up=3)
    assert c.ep.recv_urgent() == b"B"
    assert c.ep.recv(100) == b"12A34"
    with pytest.raises(BlockingIOError):
        c.ep.recv(100)


def test_newer_pointer_drops_an_older_octet_at_the_read_point(conn: Conn) -> None:
    c = conn
    _urgent(c, 1, b"abU", up=3)
    assert c.ep.recv(100) == b"ab" and c.ep.at_mark
    _urgent(c, 4, b"cdV", up=3)
    assert c.ep.recv(100) == b"cd"
    assert c.ep.recv_urgent() == b"V"


def test_pointer_below_rcv_nxt_is_ignored(conn: Conn) -> None:
    """A retransmitted urgent segment does not bring read urgent data back."""
    c = conn
    _urgent(c, 1, b"abU", up=3)
    assert c.ep.recv_urgent() == b"U"
    _urgent(c, 1, b"abU", up=3)
    assert c.ep.urgent.state is UrgentState.READ
    assert _errno_of(c.ep.recv_urgent) == errno.EINVAL


def test_octet_not_yet_arrived_is_eagain_then_found_out_of_order(conn: Conn) -> None:
    """The pointer may run ahead of the data (RFC 9293 §3.10.7.4 sixth: RCV.UP may be
    beyond RCV.NXT); the octet is taken from whichever segment brings it."""
    c = conn
    _urgent(c, 1, b"abc", up=6)  # the urgent octet is sequence number 6
    assert not c.ep.urgent_pending
    with pytest.raises(BlockingIOError):
        c.ep.recv_urgent()
    assert c.ep.recv(100) == b"abc"
    c.peer.inject("P.", 7, c.iss + 1, payload=b"gh")
    c.peer.inject("P.", 4, c.iss + 1, payload=b"deF")
    assert c.ep.urgent_pending
    assert c.ep.recv(100) == b"de"
    assert c.ep.recv_urgent() == b"F"
    assert c.ep.recv(100) == b"gh"


def test_pending_octet_after_fin_or_shutdown_reads_zero(conn: Conn) -> None:
    """tcp_recv_urg: once the octet cannot come, recv(MSG_OOB) returns 0."""
    c = conn
    _urgent(c, 1, b"abc", up=6)
    c.ep.shutdown(0, c.peer.now)
    assert c.ep.recv_urgent() == b""


def test_urg_after_fin_is_processed_as_linux(conn: Conn) -> None:
    """RFC 9293 says ignore URG in CLOSE-WAIT; Linux records it (recv(MSG_OOB) -> 0)."""
    c = conn
    c.peer.inject("F.", 1, c.iss + 1)
    c.peer.inject("U.", 2, c.iss + 1, up=5)
    assert c.ep.recv_urgent() == b""


def test_zero_pointer_names_the_first_octet(conn: Conn) -> None:
    c = conn
    _urgent(c, 1, b"Xbc", up=0)
    assert c.ep.recv_urgent() == b"X"
    assert c.ep.recv(100) == b"bc"


def test_stdurg_reads_the_pointer_as_the_last_urgent_octet() -> None:
    c = establish(Profile().replace(tcp_stdurg=True))
    _urgent(c, 1, b"abUd", up=2)
    assert c.ep.recv_urgent() == b"U"
    assert c.ep.recv(100) == b"ab"


def test_after_reset_the_octet_is_enotconn(conn: Conn) -> None:
    c = conn
    _urgent(c, 1, b"U", up=1)
    c.peer.inject("R.", 2, c.iss + 1)
    assert _errno_of(c.ep.recv_urgent) == errno.ENOTCONN
    assert _errno_of(lambda: c.ep.recv(10)) == errno.ECONNRESET  # skipping the octet
    assert _errno_of(c.ep.recv_urgent) == errno.EINVAL


def test_listener_and_unconnected_socket() -> None:
    c = establish()
    listener = c.peer.listener(port=9090)
    assert _errno_of(listener.recv_urgent) == errno.ENOTCONN
    fresh = c.peer.stack.tcp.endpoint()
    assert _errno_of(fresh.recv_urgent) == errno.EINVAL


def test_accepted_connection_inherits_oobinline() -> None:
    """Linux copies the listener's socket flags into the child (sk_clone_lock)."""
    peer = Peer()
    listener = peer.listener()
    listener.oobinline = True
    peer.inject("S", 0)
    iss = peer.expect("S.", ack=1).seq
    peer.inject(".", 1, iss + 1)
    assert listener.accept().oobinline
