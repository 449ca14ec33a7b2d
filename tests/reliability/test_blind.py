"""Blind attacks (RFC 5961) and the unpredictability an off-path attacker faces
(RFC 6528 ISNs, RFC 6056 ephemeral ports), in virtual time, with fixed seeds.

An off-path attacker knows the 4-tuple but not the sequence numbers.  100 000
segments with random 32-bit SEQ and ACK -- RSTs, SYNs and data, a third each --
go into an established connection; it must survive (no reset, no injected byte
delivered), and its answers must be rate limited as RFC 5961 §7 asks: refstack's
profile models Linux's per-socket ``tcp_invalid_ratelimit`` (500 ms between ACKs
to out-of-window or challenged segments) and the system-wide
``tcp_challenge_ack_limit`` (per second; default INT_MAX, i.e. off, as Linux >= 6.0).
Data segments are answered every time, as Linux does (``tcp_oow_rate_limited``
exempts segments that carry data: they cannot be part of an ACK loop).

Each test prints its measured figures (segments, CPU seconds, ACKs) for the report.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from refstack.profile import Profile
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.tcp.state import TcpState
from refstack.wire import (
    ACK,
    NOP,
    RST,
    SACK_PERMITTED,
    SYN,
    Ipv4Packet,
    Mss,
    TcpOption,
    TcpSegment,
    Timestamps,
    WindowScale,
    build_ipv4,
    build_tcp,
    ipv4_addr,
)

LOCAL, REMOTE = ipv4_addr("192.168.0.1"), ipv4_addr("192.0.2.1")
PORT = 8080
BLIND = 100_000
RATE = 10_000  # blind segments per virtual second
MASK = 0xFFFFFFFF


@dataclass
class Conn:
    """An established connection reached passively, and the wire around it."""

    stack: Stack
    ep: TcpEndpoint
    sport: int
    peer_seq: int  # the next sequence number the real peer would send (wire value)
    now: float = 0.0

    def inject(
        self, flags: int, seq: int, ack: int, payload: bytes = b"", *, ts: bool = False
    ) -> list[TcpSegment]:
        """One segment from the peer's address and port; the segments sent in reply."""
        options: list[TcpOption] = [NOP, NOP, Timestamps(random.getrandbits(32), 0)] if ts else []
        seg = build_tcp(
            REMOTE, LOCAL, self.sport, PORT, seq=seq, ack=ack, flags=flags, options=options, payload=payload
        )
        self.stack.receive(build_ipv4(REMOTE, LOCAL, 6, seg), self.now)
        return [TcpSegment(Ipv4Packet(f).payload) for f in self.stack.poll(self.now)]


def establish(
    profile: Profile | None = None, *, seed: int = 9, sport: int = 40000, stack: Stack | None = None
) -> Conn:
    """SYN (MSS, SACK, TS, WS 7) -> SYN-ACK -> ACK, as Linux would open it."""
    if stack is None:
        stack = Stack(profile, seed=seed)
        stack.add_interface("tun0", LOCAL, 24)
        stack.add_route("192.0.2.0", 24, "tun0")
        listener = stack.tcp.endpoint()
        listener.bind(bytes(4), PORT)
        listener.listen(1024)
    listener = stack.tcp.listeners[(bytes(4), PORT)]
    c = Conn(stack, listener, sport, 1, stack.now)
    opts: list[TcpOption] = [Mss(1460), SACK_PERMITTED, Timestamps(100, 0), NOP, WindowScale(7)]
    syn = build_tcp(REMOTE, LOCAL, sport, PORT, seq=0, flags=SYN, window=64240, options=opts)
    stack.receive(build_ipv4(REMOTE, LOCAL, 6, syn), c.now)
    (synack,) = [TcpSegment(Ipv4Packet(f).payload) for f in stack.poll(c.now)]
    tsval = next(o.tsval for o in synack.options if isinstance(o, Timestamps))
    options: list[TcpOption] = [NOP, NOP, Timestamps(101, tsval)]
    ack = build_tcp(
        REMOTE, LOCAL, sport, PORT, seq=1, ack=synack.seq + 1, flags=ACK, window=502, options=options
    )
    stack.receive(build_ipv4(REMOTE, LOCAL, 6, ack), c.now)
    stack.poll(c.now)
    c.ep = listener.accept()
    assert c.ep.state == TcpState.ESTABLISHED
    return c


def blind_flood(c: Conn, count: int, rng: random.Random) -> tuple[Counter[str], Counter[str]]:
    """``count`` blind segments at :data:`RATE` a second: (sent by kind, ACKs in reply by kind)."""
    sent: Counter[str] = Counter()
    acks: Counter[str] = Counter()
    kinds = ("rst", "syn", "data")
    for i in range(count):
        kind = kinds[i % 3]
        seq, ack = rng.getrandbits(32), rng.getrandbits(32)
        c.now += 1 / RATE
        ts = rng.random() < 0.5  # half carry a (random) timestamp, as a guessing attacker might
        if kind == "rst":
            out = c.inject(RST | (ACK if rng.random() < 0.5 else 0), seq, ack, ts=ts)
        elif kind == "syn":
            out = c.inject(SYN, seq, 0, ts=ts)
        else:
            out = c.inject(ACK, seq, ack, bytes(rng.randrange(1, 1400)), ts=ts)
        sent[kind] += 1
        for seg in out:
            assert not seg.flags & RST, f"a blind {kind} drew a reset: {seg!r}"
            acks[kind] += 1
    return sent, acks


def _bound(seconds: float, interval: float) -> int:
    """The most ACKs one socket may send in ``seconds`` with one per ``interval``."""
    return int(seconds / interval) + 1


def test_blind_flood_leaves_the_connection_up(capsys: pytest.CaptureFixture[str]) -> None:
    """100k blind RSTs, SYNs and data segments: no reset, no injected byte delivered,
    RST answers rate limited (RFC 5961 §3.2, §7), the connection still carries data."""
    c = establish()
    counters = c.stack.counters
    mark = counters.mark()
    rcv_nxt = c.ep.rcv_nxt
    cpu = time.process_time()
    sent, acks = blind_flood(c, BLIND, random.Random(2026))
    cpu = time.process_time() - cpu
    moved = counters.since(mark)
    with capsys.disabled():
        print(
            f"\nblind: {sum(sent.values())} segments ({dict(sent)}) in {cpu:.2f} s CPU;"
            f" ACKs in reply {dict(acks)}; challenge ACKs {moved.get('tcp_challenge_ack_rst', 0)} RST"
            f" + {moved.get('tcp_challenge_ack_syn', 0)} SYN considered,"
            f" {moved.get('tcp_oow_ack_ratelimited', 0)} suppressed by tcp_invalid_ratelimit"
        )
    assert c.ep.state == TcpState.ESTABLISHED
    assert moved.get("tcp_rst_received", 0) == 0, "a blind RST reset the connection"
    assert c.ep.rcv_nxt == rcv_nxt and not c.ep.rcv_buf, "blind data was accepted"
    seconds = BLIND / RATE
    limit = c.stack.profile.tcp_invalid_ratelimit
    assert acks["rst"] <= _bound(seconds, limit), f"{acks['rst']} ACKs to blind RSTs in {seconds} s"
    # The real peer's next segment still goes through.
    out = c.inject(ACK, c.peer_seq, c.ep.snd_nxt & MASK, b"hello")
    assert c.ep.recv(100) == b"hello"
    assert out and out[-1].ack == (c.ep.rcv_nxt & MASK)
    assert cpu < 30, f"{BLIND} blind segments took {cpu:.1f} s of CPU"


def test_in_window_rsts_draw_rate_limited_challenge_acks(capsys: pytest.CaptureFixture[str]) -> None:
    """RFC 5961 §3.2 + §7: 10 s of in-window (not exact) RSTs at 1000/s draw at most one
    challenge ACK per tcp_invalid_ratelimit (500 ms) and never reset."""
    c = establish()
    rng = random.Random(7)
    rcv_nxt = c.ep.rcv_nxt & MASK
    acks = 0
    for _ in range(10_000):
        c.now += 0.001
        out = c.inject(RST, (rcv_nxt + rng.randrange(1, 30_000)) & MASK, 0)
        acks += sum(1 for s in out if s.flags == ACK)
    with capsys.disabled():
        print(f"\nin-window RSTs: 10000 over 10 s -> {acks} challenge ACKs")
    assert c.ep.state == TcpState.ESTABLISHED
    assert 1 <= acks <= _bound(10.0, c.stack.profile.tcp_invalid_ratelimit)


def test_challenge_ack_limit_is_system_wide(capsys: pytest.CaptureFixture[str]) -> None:
    """tcp_challenge_ack_limit (RFC 5961 §7's system-wide budget): 40 connections each
    hit by in-window RSTs for 5 s; with a limit of 10 a second, at most 10 challenge
    ACKs leave per second in all although each socket's own limit would allow 2."""
    profile = Profile(tcp_challenge_ack_limit=10)
    first = establish(profile, sport=30000)
    conns = [first] + [establish(stack=first.stack, sport=30001 + i) for i in range(39)]
    rng = random.Random(11)
    per_second: Counter[int] = Counter()
    now = 0.0
    for _ in range(5 * 200):
        now += 0.005
        for c in conns:
            c.now = now
            rcv_nxt = c.ep.rcv_nxt & MASK
            for seg in c.inject(RST, (rcv_nxt + rng.randrange(1, 30_000)) & MASK, 0):
                if seg.flags == ACK:
                    per_second[int(now - 1e-9)] += 1
    with capsys.disabled():
        print(f"\nchallenge ACK limit 10/s, 40 sockets: per second {dict(sorted(per_second.items()))}")
    assert all(c.ep.state == TcpState.ESTABLISHED for c in conns)
    assert max(per_second.values()) <= 10 + 1, per_second  # the budget is drawn per second
    assert sum(per_second.values()) >= 40  # but challenge ACKs do go out


def test_blind_syns_draw_rate_limited_challenge_acks() -> None:
    """RFC 5961 §4.2 + §7: SYNs with any sequence number draw challenge ACKs, at most
    one per tcp_invalid_ratelimit per socket."""
    c = establish()
    rng = random.Random(5)
    acks = 0
    for _ in range(10_000):
        c.now += 0.001
        acks += len(c.inject(SYN, rng.getrandbits(32), 0))
    assert c.ep.state == TcpState.ESTABLISHED
    assert acks <= _bound(10.0, c.stack.profile.tcp_invalid_ratelimit), (
        f"{acks} ACKs to 10000 blind SYNs in 10 s"
    )


# =====================================================================================
# RFC 6528 ISNs and RFC 6056 ephemeral ports
# =====================================================================================
def _chi_square(values: list[int], bins: int, span: int) -> float:
    counts = Counter(v * bins // span for v in values)
    expected = len(values) / bins
    return sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(bins))


def _correlation(xs: list[int], ys: list[int]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return float(cov / (vx * vy) ** 0.5)


# chi-square with 255 degrees of freedom: mean 255, sd 22.6; 400 is p < 1e-8
CHI2_256_LIMIT = 400.0
CHI2_64_LIMIT = 140.0  # 63 degrees of freedom: mean 63, sd 11.2; p < 1e-9


def _syns(count: int, seed: int) -> list[tuple[float, int, int]]:
    """(time, source port, ISN) of ``count`` connect()s, one a millisecond, each to a
    different remote port, through the stack (each connection closed after its SYN)."""
    stack = Stack(seed=seed)
    stack.add_interface("tun0", LOCAL, 24)
    stack.add_route("192.0.2.0", 24, "tun0")
    out = []
    for i in range(count):
        now = i * 0.001
        ep = stack.tcp.endpoint()
        ep.connect(REMOTE, 1 + i % 60000, now)
        (frame,) = stack.poll(now)
        seg = TcpSegment(Ipv4Packet(frame).payload)
        assert seg.flags == SYN
        out.append((now, seg.src_port, seg.seq))
        ep.close(now)
    return out


def test_isns_of_different_connections_look_random(capsys: pytest.CaptureFixture[str]) -> None:
    """RFC 6528 §3: 10k ISNs of different 4-tuples (through connect()): no repeats,
    uniform high bits, no correlation between consecutive ones."""
    syns = _syns(10_000, seed=3)
    isns = [s for _, _, s in syns]
    assert len(set(isns)) == len(isns)
    chi = _chi_square([i >> 24 for i in isns], 256, 256)
    r = _correlation(isns[:-1], isns[1:])
    diffs = [(b - a) & MASK for a, b in itertools.pairwise(isns)]
    r_diff = _correlation(diffs[:-1], diffs[1:])
    with capsys.disabled():
        print(
            f"\nISNs of 10k tuples: chi2(top byte, 255 df) {chi:.0f},"
            f" r(consecutive) {r:+.4f}, r(diffs) {r_diff:+.4f}"
        )
    assert chi < CHI2_256_LIMIT
    assert abs(r) < 0.05 and abs(r_diff) < 0.6  # successive differences share a term: r ~ -0.5
    assert max(Counter(diffs).values()) == 1, "two consecutive ISN differences repeat: a linear pattern"


def test_isns_of_one_tuple_follow_the_clock_and_cover_the_space(capsys: pytest.CaptureFixture[str]) -> None:
    """RFC 6528 §3 / RFC 9293 §3.4.1: for one 4-tuple the ISN is M + F: it advances
    with the 4 µs clock (so a reused tuple moves forward) and, over random times, is
    spread over the whole space; another secret gives an unrelated sequence space."""
    stack, other = Stack(seed=3), Stack(seed=4)
    rng = random.Random(99)
    ticks = rng.sample(range(1 << 32), 10_000)
    isns = [stack.tcp.isn.isn(LOCAL, 40000, REMOTE, 80, t / 250_000) for t in ticks]
    assert len(set(isns)) == len(isns)
    chi = _chi_square([i >> 24 for i in isns], 256, 256)
    base = stack.tcp.isn.isn(LOCAL, 40000, REMOTE, 80, 0.0)
    # M = floor(now / 4 us); now = tick * 4 us as a float may round one tick down
    assert all(0 <= t - ((isn - base) & MASK) <= 1 for isn, t in zip(isns, ticks, strict=True))
    secrets = [other.tcp.isn.isn(LOCAL, 40000, REMOTE, 80, t / 250_000) for t in ticks]
    offsets = {(a - b) & MASK for a, b in zip(isns, secrets, strict=True)}
    with capsys.disabled():
        print(f"\nISNs of one tuple over random times: chi2 {chi:.0f}; other secret: offset {offsets}")
    assert chi < CHI2_256_LIMIT
    assert len(offsets) == 1 and offsets != {0}  # F differs with the secret


def test_ephemeral_ports_are_random(capsys: pytest.CaptureFixture[str]) -> None:
    """RFC 6056 §3.3.1 (Algorithm 1): 10k connect() source ports spread over
    ip_local_port_range with no increment pattern.  Linux (and refstack) pick even
    ports for connect() first, odd ones for bind(0)."""
    low, high = Profile().ip_local_port_range
    ports = [p for _, p, _ in _syns(10_000, seed=8)]
    assert all(low <= p <= high for p in ports)
    chi = _chi_square([p - low for p in ports], 64, high - low + 1)
    diffs = [b - a for a, b in itertools.pairwise(ports)]
    top_diff, top_count = Counter(diffs).most_common(1)[0]
    r = _correlation(ports[:-1], ports[1:])
    with capsys.disabled():
        print(
            f"\nephemeral ports: {len(set(ports))} distinct of 10000, chi2(64 bins) {chi:.0f},"
            f" commonest difference {top_diff} x{top_count}, r(consecutive) {r:+.4f}"
        )
    assert chi < CHI2_64_LIMIT
    assert top_count < 0.01 * len(diffs), f"difference {top_diff} repeats {top_count} times"
    assert abs(r) < 0.05
    assert len(set(ports)) > 0.7 * len(ports)
