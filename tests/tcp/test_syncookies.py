"""SYN cookies (RFC 4987 §3.6) as Linux makes them: the encoding
(:mod:`refstack.tcp.syncookies`) and the listener that uses it (tcp_conn_request,
cookie_v4_check)."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.config import Config
from refstack.profile import Profile
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.tcp.state import TcpState
from refstack.tcp.syncookies import (
    COOKIE_PERIOD,
    MSSTAB,
    NO_OPTIONS,
    TSMASK,
    CookieOptions,
    SynCookies,
    decode_ts,
    encode_ts,
    mss_index,
)
from refstack.wire import (
    ACK,
    CWR,
    ECE,
    NOP,
    RST,
    SACK_PERMITTED,
    SYN,
    Ipv4Packet,
    Mss,
    SackPermitted,
    TcpOption,
    TcpSegment,
    Timestamps,
    WindowScale,
    build_ipv4,
    build_tcp,
    ipv4_addr,
)

SECRET = bytes(range(16))
LOCAL, REMOTE = ipv4_addr("192.168.0.1"), ipv4_addr("192.0.2.1")
PORT = 8080
MASK = 0xFFFFFFFF
CONN = (REMOTE, 40000, LOCAL, PORT)


# --- the encoding ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mss", "index"),
    [(0, 0), (535, 0), (536, 0), (1299, 0), (1300, 1), (1439, 1), (1440, 2), (1459, 2), (1460, 3), (9000, 3)],
)
def test_mss_table_picks_largest_entry_not_above(mss: int, index: int) -> None:
    assert MSSTAB == (536, 1300, 1440, 1460)  # Linux msstab
    assert mss_index(mss) == index


@pytest.mark.parametrize("mss", [536, 1000, 1300, 1400, 1440, 1452, 1460, 8960])
def test_round_trip_gives_the_encoded_mss(mss: int) -> None:
    cookies = SynCookies(SECRET)
    cookie, encoded = cookies.make(CONN, 123456, mss, 42.0)
    assert encoded == MSSTAB[mss_index(mss)]
    assert cookies.check(cookie, CONN, 123456, 42.5) == encoded


@given(
    sseq=st.integers(0, MASK),
    made=st.floats(0, 1e7, allow_nan=False),
    later=st.floats(0, 300, allow_nan=False),
    mss=st.sampled_from(MSSTAB),
)
def test_valid_for_this_minute_and_the_next_only(sseq: int, made: float, later: float, mss: int) -> None:
    cookies = SynCookies(SECRET)
    cookie, _ = cookies.make(CONN, sseq, mss, made)
    checked = made + later
    minutes = int(checked // COOKIE_PERIOD) - int(made // COOKIE_PERIOD)
    assert cookies.check(cookie, CONN, sseq, checked) == (mss if minutes < 2 else None)


def test_expires_after_two_minutes() -> None:
    cookies = SynCookies(SECRET)
    cookie, mss = cookies.make(CONN, 7, 1460, 0.0)
    assert cookies.check(cookie, CONN, 7, 59.999) == mss
    assert cookies.check(cookie, CONN, 7, 60.0) == mss  # the next minute: still good
    assert cookies.check(cookie, CONN, 7, 119.999) == mss
    assert cookies.check(cookie, CONN, 7, 120.0) is None
    assert cookies.check(cookie, CONN, 7, 3600.0) is None


def test_bound_to_the_four_tuple_sequence_and_secret() -> None:
    cookies = SynCookies(SECRET)
    cookie, _ = cookies.make(CONN, 1000, 1460, 10.0)
    others = [
        (REMOTE, 40001, LOCAL, PORT),
        (REMOTE, 40000, LOCAL, PORT + 1),
        (ipv4_addr("192.0.2.2"), 40000, LOCAL, PORT),
        (REMOTE, 40000, ipv4_addr("192.168.0.2"), PORT),
        (LOCAL, PORT, REMOTE, 40000),
    ]
    for conn in others:
        assert cookies.check(cookie, conn, 1000, 10.0) is None
    assert cookies.check(cookie, CONN, 1000 + 16, 10.0) is None  # another SYN
    assert cookies.check(cookie + 1, CONN, 1000, 10.0) is None  # MSS index 4: none
    # SEG.SEQ enters the cookie by addition, as in Linux: a SYN one lower reads as the
    # next MSS index.  Harmless: the ACK must still name this 4-tuple and minute.
    assert cookies.check(cookie, CONN, 1001, 10.0) == 1440
    assert SynCookies(b"another secret!!").check(cookie, CONN, 1000, 10.0) is None


def test_random_values_are_rarely_cookies() -> None:
    """A blind attacker's guess: 2 minutes x 4 MSS values out of 2**24 (about 5e-7)."""
    cookies = SynCookies(SECRET)
    rng = random.Random(1)
    hits = sum(cookies.check(rng.getrandbits(32), CONN, 1000, 10.0) is not None for _ in range(20_000))
    assert hits == 0


def test_cookie_of_one_syn_changes_every_minute() -> None:
    """The minute counter sits in the top byte: (H0 + SEQ + (count << 24) + low) mod 2**32,
    the low 24 bits rehashed with the count."""
    cookies = SynCookies(SECRET)
    values = [cookies.make(CONN, 0, 1460, 60.0 * m)[0] for m in range(256)]
    assert len(set(values)) == 256
    steps = {((b >> 24) - (a >> 24)) & 0xFF for a, b in itertools.pairwise(values)}
    assert steps <= {0, 1, 2}  # one minute, give or take the carry out of the low 24 bits


@pytest.mark.parametrize(
    "options",
    [
        NO_OPTIONS,
        CookieOptions(7, True, False),
        CookieOptions(0, False, True),
        CookieOptions(14, True, True),
        CookieOptions(None, True, False),
    ],
)
def test_timestamp_carries_options(options: CookieOptions) -> None:
    for now in (0, 63, 64, 1000, 123_456_789, MASK):
        ts = encode_ts(now, options)
        assert now - TSMASK - 1 <= ts <= now or now < TSMASK  # never ahead of the clock
        assert decode_ts(ts) == options


def test_timestamp_without_window_scaling_is_0xf() -> None:
    assert encode_ts(1000, NO_OPTIONS) & TSMASK == 0xF
    assert encode_ts(1000, CookieOptions(7, True, True)) & TSMASK == 7 | 16 | 32


# --- the listener --------------------------------------------------------------------
class Listener:
    """A stack with a listener on PORT and the wire around it (virtual time)."""

    def __init__(
        self, backlog: int = 2, profile: Profile | None = None, config: Config | None = None
    ) -> None:
        self.stack = Stack(profile, seed=5, config=config)
        self.stack.add_interface("tun0", LOCAL, 24)
        self.stack.add_route("192.0.2.0", 24, "tun0")
        self.ep = self.stack.tcp.endpoint()
        self.ep.bind(bytes(4), PORT)
        self.ep.listen(backlog)
        self.now = 1.0
        self.next_port = 40000

    def send(
        self,
        sport: int,
        flags: int,
        seq: int,
        ack: int = 0,
        options: list[TcpOption] | None = None,
        payload: bytes = b"",
        window: int = 64240,
    ) -> list[TcpSegment]:
        seg = build_tcp(
            REMOTE,
            LOCAL,
            sport,
            PORT,
            seq=seq & MASK,
            ack=ack & MASK,
            flags=flags,
            window=window,
            options=options or [],
            payload=payload,
        )
        self.stack.receive(build_ipv4(REMOTE, LOCAL, 6, seg), self.now)
        return [TcpSegment(Ipv4Packet(f).payload) for f in self.stack.poll(self.now)]

    def syn(self, options: list[TcpOption] | None = None, seq: int = 1000) -> tuple[int, TcpSegment]:
        """A SYN from a new port: (that port, the SYN-ACK)."""
        sport, self.next_port = self.next_port, self.next_port + 1
        out = self.send(sport, SYN, seq, options=options if options is not None else FULL_SYN)
        assert len(out) == 1 and out[0].flags & (SYN | ACK) == SYN | ACK, out
        return sport, out[0]

    def advance(self, seconds: float) -> None:
        """Let time pass; what the stack sends meanwhile (SYN-ACK retransmissions of
        the queued requests) is discarded."""
        end = self.now + seconds
        while (deadline := self.stack.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.stack.poll(self.now)
        self.now = end
        self.stack.poll(self.now)

    def fill_syn_queue(self) -> None:
        """SYNs until the next one overflows the queue (Linux: more than the backlog)."""
        while len(self.ep.syn_queue) <= self.ep.backlog:
            self.syn()


FULL_SYN: list[TcpOption] = [Mss(1460), SACK_PERMITTED, Timestamps(5000, 0), NOP, WindowScale(7)]
NO_TS_SYN: list[TcpOption] = [Mss(1460), NOP, NOP, SACK_PERMITTED, NOP, WindowScale(7)]


def tsval(seg: TcpSegment) -> int:
    return next(o.tsval for o in seg.options if isinstance(o, Timestamps))


def kinds(seg: TcpSegment) -> set[type]:
    return {type(o) for o in seg.options}


def test_no_cookie_while_the_syn_queue_has_room() -> None:
    w = Listener(backlog=2)
    for _ in range(3):  # backlog + 1: Linux's queue is full when it holds *more* than the backlog
        w.syn()
    assert len(w.ep.syn_queue) == 3
    assert w.stack.counters["SyncookiesSent"] == 0


def test_overflow_answered_with_a_cookie_keeping_no_state() -> None:
    w = Listener(backlog=2)
    w.fill_syn_queue()
    connections = len(w.stack.tcp.connections)
    timers = len(w.stack.timers.armed())
    for _ in range(200):
        w.syn()
    assert w.stack.counters["SyncookiesSent"] == 200
    assert w.stack.counters["TCPReqQFullDoCookies"] == 200
    assert len(w.ep.syn_queue) == 3
    assert len(w.stack.tcp.connections) == connections
    assert len(w.stack.timers.armed()) == timers  # no SYN-ACK retransmission timer


def test_cookie_syn_ack_without_timestamps_offers_mss_only() -> None:
    """tcp_conn_request: want_cookie and no timestamp -> tcp_clear_options."""
    w = Listener()
    w.fill_syn_queue()
    _, synack = w.syn(NO_TS_SYN)
    assert kinds(synack) <= {Mss, type(NOP)}
    assert not synack.flags & ECE


def test_cookie_syn_ack_with_timestamps_carries_options_in_tsval() -> None:
    w = Listener()
    w.fill_syn_queue()
    _, synack = w.syn()
    assert {Mss, SackPermitted, Timestamps, WindowScale} <= kinds(synack)
    offset = w.stack.tcp.isn.ts_offset(LOCAL, REMOTE)
    assert decode_ts((tsval(synack) - offset) & MASK) == CookieOptions(7, True, False)


def complete(
    w: Listener, sport: int, synack: TcpSegment, *, ts: bool = True, payload: bytes = b""
) -> list[TcpSegment]:
    options: list[TcpOption] = [NOP, NOP, Timestamps(5001, tsval(synack))] if ts else []
    return w.send(sport, ACK, 1001, synack.seq + 1, options, payload, window=502)


@pytest.mark.parametrize(
    ("offered", "mss"), [(1460, 1460), (1452, 1440), (1400, 1300), (1000, 536), (None, 536)]
)
def test_cookie_connection_takes_mss_from_the_cookie(offered: int | None, mss: int) -> None:
    w = Listener()
    w.fill_syn_queue()
    opts: list[TcpOption] = [SACK_PERMITTED, Timestamps(5000, 0), NOP, WindowScale(7)]
    sport, synack = w.syn(([Mss(offered)] if offered else []) + opts)
    complete(w, sport, synack)
    child = w.ep.accept()
    assert child.peer_mss == mss


def test_cookie_connection_with_timestamps() -> None:
    w = Listener()
    w.fill_syn_queue()
    sport, synack = w.syn()
    out = complete(w, sport, synack, payload=b"hello")
    assert w.stack.counters["SyncookiesRecv"] == 1
    assert [s.flags for s in out] == [ACK]  # the data is acknowledged
    assert out[0].ack == 1006
    child: TcpEndpoint = w.ep.accept()
    assert child.state == TcpState.ESTABLISHED and child.from_cookie
    assert child.iss == synack.seq and child.irs == 1000
    assert (child.ws_ok, child.snd_wscale, child.sack_ok, child.ts_ok) == (True, 7, True, True)
    assert child.snd_wnd == 502 << 7
    assert child.ts_recent == 5001
    assert child.recv(100) == b"hello"
    assert child.send(b"world", w.now) == 5
    (data,) = [TcpSegment(Ipv4Packet(f).payload) for f in w.stack.poll(w.now)]
    assert data.payload == b"world" and data.seq == (synack.seq + 1) & MASK and data.ack == 1006
    assert child not in w.ep.syn_queue and len(w.ep.syn_queue) == 3


def test_cookie_connection_without_timestamps_has_no_ws_no_sack() -> None:
    w = Listener()
    w.fill_syn_queue()
    sport, synack = w.syn(NO_TS_SYN)
    complete(w, sport, synack, ts=False)
    child = w.ep.accept()
    assert (child.ws_ok, child.sack_ok, child.ts_ok, child.ecn_ok) == (False, False, False, False)
    assert child.snd_wscale == child.rcv_wscale == 0
    assert child.snd_wnd == 502
    assert child.rto.initial == child.rto.rto  # no RTT sample from an untimed SYN-ACK


def test_cookie_carries_ecn_with_timestamps() -> None:
    w = Listener()
    w.fill_syn_queue()
    sport, out = w.next_port, w.send(w.next_port, SYN | ECE | CWR, 1000, options=FULL_SYN)
    (synack,) = out
    assert synack.flags & ECE
    complete(w, sport, synack)
    assert w.ep.accept().ecn_ok


def test_forged_cookie_fails_with_a_reset() -> None:
    w = Listener()
    w.fill_syn_queue()
    sport, synack = w.syn()
    out = w.send(sport, ACK, 1001, synack.seq + 2, [NOP, NOP, Timestamps(5001, tsval(synack))])
    assert [(s.flags, s.seq) for s in out] == [(RST, (synack.seq + 2) & MASK)]
    assert w.stack.counters["SyncookiesFailed"] == 1
    assert w.stack.counters["SyncookiesRecv"] == 0
    assert not w.ep.accept_queue


def test_cookie_older_than_two_minutes_fails() -> None:
    w = Listener()
    w.fill_syn_queue()
    sport, synack = w.syn()
    w.advance(110.0)
    w.fill_syn_queue()
    w.syn()  # a recent overflow, so ACKs are still checked as cookies
    w.advance(20.0)  # the first cookie is now two minutes old
    out = complete(w, sport, synack)
    assert [s.flags for s in out] == [RST]
    assert w.stack.counters["SyncookiesFailed"] == 1


def test_ack_not_checked_without_a_recent_overflow() -> None:
    """tcp_synq_no_recent_overflow: 2 minutes after the last cookie, a stray ACK to the
    listener is just answered with a RST, uncounted."""
    w = Listener()
    w.fill_syn_queue()
    sport, synack = w.syn()
    w.advance(121.0)
    out = complete(w, sport, synack)
    assert [s.flags for s in out] == [RST]
    assert w.stack.counters["SyncookiesFailed"] == 0
    plain = Listener()
    assert [s.flags for s in plain.send(41000, ACK, 5, 77)] == [RST]
    assert plain.stack.counters["SyncookiesFailed"] == 0


def test_accept_queue_full_drops_cookie_ack_silently() -> None:
    w = Listener(backlog=1, profile=Profile().replace(tcp_syncookies=2))
    ports = [w.syn() for _ in range(3)]
    assert w.stack.counters["SyncookiesSent"] == 3 and not w.ep.syn_queue
    for sport, synack in ports[:2]:
        complete(w, sport, synack)
    assert len(w.ep.accept_queue) == 2 and w.ep.accept_queue_full
    sport, synack = ports[2]
    assert complete(w, sport, synack) == []  # dropped: the peer will retransmit
    assert w.stack.counters["tcp_accept_queue_overflow"] == 1
    w.ep.accept()
    assert complete(w, sport, synack) == []  # its retransmission gets in
    assert len(w.ep.accept_queue) == 2
    assert w.stack.counters["SyncookiesRecv"] == 4


def test_syncookies_2_always_sends_cookies() -> None:
    w = Listener(backlog=128, profile=Profile().replace(tcp_syncookies=2))
    sport, synack = w.syn()
    assert not w.ep.syn_queue and w.stack.counters["SyncookiesSent"] == 1
    complete(w, sport, synack)
    assert w.ep.accept().state == TcpState.ESTABLISHED


def test_syncookies_0_drops_the_overflowing_syn() -> None:
    w = Listener(backlog=2, profile=Profile().replace(tcp_syncookies=0))
    for _ in range(3):
        w.syn()
    assert w.send(w.next_port, SYN, 1000, options=FULL_SYN) == []
    assert w.stack.counters["SyncookiesSent"] == 0
    assert w.stack.counters["tcp_listen_overflow"] == 1


def test_onload_syn_limits_send_no_cookies() -> None:
    """EF_TCP_BACKLOG_MAX set: Onload's rules, and its syncookies are off by default."""
    w = Listener(backlog=16, config=Config.from_env({"EF_TCP_BACKLOG_MAX": "2"}))
    for _ in range(2):
        w.syn()
    assert w.send(w.next_port, SYN, 1000, options=FULL_SYN) == []
    assert w.stack.counters["SyncookiesSent"] == 0
