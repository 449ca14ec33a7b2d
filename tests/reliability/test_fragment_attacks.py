"""IPv4 fragment attacks against the kernel path's reassembly (refstack/net/reassembly.py,
modelled on Linux >= 4.19: RFC 5722-style overlap rejection, ipfrag_high_thresh,
ipfrag_time, ipfrag_max_dist).

- Overlaps (teardrop and its relatives, RFC 1858's overlapping-fragment attack): a
  fragment that overlaps queued data other than as an exact duplicate inside one run
  discards the whole datagram (``ReasmOverlaps``, ``ReasmFails``); a final fragment
  ending inside queued data is a bad length (``ip_frag_bad_length``).
- Tiny fragments (RFC 1858): 8-byte pieces reassemble (a host is no firewall) and each
  is charged its modelled skb truesize, so they fill the memory bound quickly.
- Past 65535 bytes (ping of death): fragment offsets up to 65528 plus data; the
  datagram is dropped when it completes (``ip_frag_oversize``).
- Floods of incomplete trains from many sources and IDs: reassembly memory stays under
  ``ipfrag_high_thresh`` plus one fragment; beyond it fragments are refused
  (``ip_frag_mem_full``, Linux >= 4.17) until ``ipfrag_time`` expires the queues
  (``ReasmTimeout``); with ``ipfrag_evict_oldest`` (Linux < 4.17) old queues are
  evicted instead (``ip_frag_evicted``).  Legitimate fragmented datagrams interleaved
  with the attack arrive whenever memory allows, unfragmented ones always.

After every attack the stack's invariants hold (tests/reliability/invariants.py:
memory accounting, the bound, timers, counters).  Figures are printed for the report.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.case_api import Case, Dut, open_case
from conformance.target import CaseConfig, Setting
from conformance.targets import get_target
from refstack.net.reassembly import QUEUE_COST, fragment_cost
from refstack.profile import Profile
from refstack.stack import Stack
from refstack.udp import UdpEndpoint
from refstack.wire import SYN, Ipv4Packet, Mss, TcpSegment, build_ipv4, build_tcp, ipv4_addr
from refstack.wire.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from refstack.wire.udp import build_udp

from .invariants import assert_stack, check_counters

LOCAL, REMOTE = ipv4_addr("192.168.0.1"), ipv4_addr("192.0.2.1")
UDP_PORT, TCP_PORT = 9999, 8080
SMALL_THRESH = 256 * 1024


class Host:
    """A stack on a point-to-point interface, a UDP socket on 9999, a TCP listener on 8080."""

    def __init__(self, profile: Profile | None = None) -> None:
        self.stack = Stack(profile, seed=11)
        self.stack.add_interface("tun0", LOCAL, 24)
        self.stack.add_route("0.0.0.0", 0, "tun0")
        self.udp: UdpEndpoint = self.stack.udp.endpoint()
        self.udp.bind(bytes(4), UDP_PORT)
        listener = self.stack.tcp.endpoint()
        listener.bind(bytes(4), TCP_PORT)
        listener.listen(16)
        self.now = 0.0
        self.out: list[bytes] = []

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.stack.counters)

    @property
    def memory(self) -> int:
        return self.stack.ip.reassembly.memory

    def inject(self, packets: list[bytes], *, check: bool = False) -> None:
        for p in packets:
            self.stack.receive(p, self.now)
            if check:
                assert_stack(self.stack, after_poll=False, udp=[self.udp])
        self.out += self.stack.poll(self.now)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (deadline := self.stack.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.out += self.stack.poll(self.now)
        self.now = end
        self.out += self.stack.poll(self.now)

    def received(self) -> list[bytes]:
        got = []
        while self.udp.readable:
            got.append(self.udp.recvfrom()[0])
        return got


def fragment(
    src: bytes, ident: int, payload: bytes, pieces: list[tuple[int, int, bool]], protocol: int = PROTO_UDP
) -> list[bytes]:
    """IPv4 fragments of ``payload`` (a transport datagram): each piece is (offset,
    length, more_fragments); offsets in bytes, multiples of 8 where the wire needs it."""
    return [
        build_ipv4(
            src,
            LOCAL,
            protocol,
            payload[off : off + length],
            ident=ident,
            more_fragments=more,
            fragment_offset=off,
        )
        for off, length, more in pieces
    ]


def udp_datagram(size: int, src: bytes = REMOTE, fill: int = 0x41) -> bytes:
    return build_udp(src, LOCAL, 5000, UDP_PORT, bytes([fill]) * size)


def split(payload: bytes, size: int) -> list[tuple[int, int, bool]]:
    """Pieces of ``size`` bytes (a multiple of 8), the last one with MF clear."""
    n = len(payload)
    return [(off, min(size, n - off), off + size < n) for off in range(0, n, size)]


def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


REASM_KEYS = (
    "ReasmReqds",
    "ReasmOKs",
    "ReasmFails",
    "ReasmTimeout",
    "ReasmOverlaps",
    "ip_frag_duplicate",
    "ip_frag_mem_full",
    "ip_frag_evicted",
    "ip_frag_oversize",
    "ip_frag_bad_length",
    "ip_frag_too_far",
)


def reasm(delta: dict[str, int]) -> dict[str, int]:
    return {k: delta[k] for k in REASM_KEYS if delta.get(k)}


# =====================================================================================
# Overlaps
# =====================================================================================
def test_teardrop_overlap_discards_the_datagram() -> None:
    """Classic teardrop: the second fragment starts inside the first (offset 24 < 48)."""
    h = Host()
    dgram = udp_datagram(80)
    before = h.counters
    h.inject(fragment(REMOTE, 1, dgram, [(0, 48, True), (24, 64, False)]), check=True)
    assert reasm(moved(before, h.counters)) == {"ReasmReqds": 2, "ReasmFails": 1, "ReasmOverlaps": 1}
    assert h.received() == [] and h.memory == 0 and len(h.stack.ip.reassembly) == 0


def test_teardrop_short_final_fragment_is_a_bad_length() -> None:
    """The original teardrop (1997): the last fragment lies wholly inside the first and
    ends before it, so a naive reassembler computes a negative length."""
    h = Host()
    dgram = udp_datagram(80)
    before = h.counters
    h.inject(fragment(REMOTE, 2, dgram, [(0, 48, True), (8, 8, False)]), check=True)
    assert reasm(moved(before, h.counters)) == {"ReasmReqds": 2, "ReasmFails": 1, "ip_frag_bad_length": 1}
    assert h.received() == [] and h.memory == 0


def test_exact_duplicate_inside_a_run_is_dropped_and_the_datagram_kept() -> None:
    h = Host()
    dgram = udp_datagram(80)
    first, second = fragment(REMOTE, 3, dgram, [(0, 48, True), (48, 40, False)])
    before = h.counters
    h.inject([first, first, second], check=True)
    assert reasm(moved(before, h.counters)) == {"ReasmReqds": 3, "ReasmOKs": 1, "ip_frag_duplicate": 1}
    assert h.received() == [b"A" * 80]


def test_rfc1858_overlap_rewriting_tcp_flags_is_refused() -> None:
    """RFC 1858 §3.2: a second fragment at offset 8 overwrites the TCP header's flags
    (an ACK turned into a SYN past a filter).  Linux discards the whole datagram, so
    no SYN reaches the listener."""
    h = Host()
    ack = build_tcp(REMOTE, LOCAL, 40000, TCP_PORT, seq=1, ack=1, flags=0x10, payload=b"x" * 40)
    syn = build_tcp(REMOTE, LOCAL, 40000, TCP_PORT, seq=1, flags=SYN, payload=b"x" * 40)
    frags = fragment(REMOTE, 4, ack, [(0, 16, True)], PROTO_TCP)
    frags += fragment(REMOTE, 4, syn, [(8, len(syn) - 8, False)], PROTO_TCP)
    before = h.counters
    h.inject(frags, check=True)
    delta = moved(before, h.counters)
    assert reasm(delta) == {"ReasmReqds": 2, "ReasmFails": 1, "ReasmOverlaps": 1}
    assert h.out == [] and "tcp_rx_segments" not in delta


def test_tiny_fragments_of_a_syn_reassemble() -> None:
    """RFC 1858 §3.1 tiny fragments: a SYN in 8-byte pieces (the flags in the second).
    A host reassembles it (filtering is a firewall's business) and answers."""
    h = Host()
    syn = build_tcp(REMOTE, LOCAL, 40001, TCP_PORT, seq=7, flags=SYN, options=[Mss(1460)])
    frags = fragment(REMOTE, 5, syn, split(syn, 8), PROTO_TCP)
    h.inject(frags, check=True)
    (reply,) = h.out
    seg = TcpSegment(Ipv4Packet(reply).payload)
    assert seg.flags == 0x12 and seg.ack == 8
    assert h.counters["ReasmOKs"] == 1 and h.counters["ReasmReqds"] == len(frags)


@pytest.mark.parametrize("seed", range(5))
def test_random_overlapping_trains_never_break_invariants(seed: int) -> None:
    """Random fragment soup (offsets, lengths, MF, duplicates) over a few IDs."""
    rng = random.Random(seed)
    h = Host(Profile().replace(ipfrag_high_thresh=64 * 1024))
    payloads = {i: udp_datagram(rng.randrange(8, 4000), fill=0x30 + i) for i in range(4)}
    for _ in range(2000):
        ident = rng.randrange(4)
        data = payloads[ident]
        off = rng.randrange(0, len(data) // 8 + 2) * 8
        length = rng.randrange(1, 600)
        more = rng.random() < 0.7
        h.inject(fragment(REMOTE, ident, data, [(off, length, more)]), check=True)
        if rng.random() < 0.01:
            h.advance(rng.uniform(0, 40))
    for got in h.received():
        assert got in {p[8:] for p in payloads.values()}  # only whole, true datagrams
    assert check_counters(h.stack.counters) == []


# =====================================================================================
# Tiny fragments, oversize
# =====================================================================================
def test_tiny_fragment_train_reassembles_and_is_charged_per_fragment() -> None:
    h = Host()
    dgram = udp_datagram(1000)
    frags = fragment(REMOTE, 6, dgram, split(dgram, 8))
    h.inject(frags[:-1], check=True)
    # 125 fragments of 28 bytes: each charged a 32-byte buffer plus the skb overhead.
    assert h.memory == QUEUE_COST + (len(frags) - 1) * fragment_cost(28)
    h.inject(frags[-1:])
    assert h.received() == [b"A" * 1000] and h.memory == 0


def test_tiny_fragment_flood_is_bounded() -> None:
    """Incomplete trains of 8-byte fragments: ~940 bytes charged per 28-byte fragment,
    so a 256 KiB bound refuses the flood after ~280 fragments."""
    h = Host(Profile().replace(ipfrag_high_thresh=SMALL_THRESH))
    rng = random.Random(2)
    sent = 0
    for ident in range(200):
        dgram = udp_datagram(400, fill=ident & 0xFF)
        pieces = split(dgram, 8)[:-1]  # never the last
        rng.shuffle(pieces)
        h.inject(fragment(REMOTE, ident, dgram, pieces))
        sent += len(pieces)
        assert h.memory <= SMALL_THRESH + fragment_cost(28) + QUEUE_COST
    c = h.counters
    stored = (h.memory - QUEUE_COST * len(h.stack.ip.reassembly)) // fragment_cost(28)
    print(f"\ntiny-fragment flood: {sent} fragments, {stored} stored, memory {h.memory} B, {reasm(c)}")
    assert c["ip_frag_mem_full"] == sent - stored
    assert_stack(h.stack, udp=[h.udp])


def test_ping_of_death_past_65535_is_dropped() -> None:
    """An ICMP echo whose last fragment sits at offset 65528 (the largest the 13-bit
    field allows) with 100 bytes: 20 + 65628 > 65535.  Dropped when complete, no reply."""
    h = Host()
    body = bytes(8) + b"P" * (65_528 + 100 - 8)
    pieces = [*split(body[:65528], 1480), (65528, 100, False)]
    pieces = [(o, n, True) for o, n, _ in pieces[:-1]] + [pieces[-1]]
    frags = fragment(REMOTE, 7, body, pieces, PROTO_ICMP)
    before = h.counters
    h.inject(frags)
    assert reasm(moved(before, h.counters)) == {
        "ReasmReqds": len(frags),
        "ReasmFails": 1,
        "ip_frag_oversize": 1,
    }
    assert h.out == [] and h.memory == 0
    assert_stack(h.stack, udp=[h.udp])


def test_largest_legal_datagram_still_reassembles() -> None:
    h = Host()
    dgram = udp_datagram(65_535 - 20 - 8)
    h.inject(fragment(REMOTE, 8, dgram, split(dgram, 1480)))
    assert h.received() == [b"A" * (65_535 - 28)]


# =====================================================================================
# Floods of incomplete trains
# =====================================================================================
@dataclass
class FloodFigures:
    fragments: int = 0
    legit_sent: int = 0
    legit_ok: int = 0
    legit_fitting: int = 0  # sent while memory left room for the whole datagram
    legit_fitting_ok: int = 0
    peak_memory: int = 0
    cpu_s: float = 0.0


def incomplete_flood(h: Host, count: int, *, legit_every: int, seed: int = 1) -> FloodFigures:
    """``count`` first fragments (1480 bytes, MF set, the rest never sent) from random
    sources and IDs, at 10 000 a second; every ``legit_every`` a legitimate 3000-byte
    UDP datagram in three fragments from REMOTE and a small unfragmented one."""
    rng = random.Random(seed)
    f = FloodFigures()
    bound = h.stack.profile.ipfrag_high_thresh
    legit_cost = QUEUE_COST + 3 * fragment_cost(1500)
    t0 = time.process_time()
    for i in range(count):
        src = (10 << 24 | rng.randrange(2, 1 << 24)).to_bytes(4, "big")
        dgram = build_udp(src, LOCAL, rng.randrange(1024, 65536), UDP_PORT, bytes(3000))
        h.inject(fragment(src, rng.getrandbits(16), dgram, [(0, 1480, True)]))
        h.now += 1e-4
        f.fragments += 1
        f.peak_memory = max(f.peak_memory, h.memory)
        if i % legit_every == legit_every - 1:
            fits = h.memory + legit_cost <= bound
            dgram = udp_datagram(3000, fill=0x61 + f.legit_sent % 26)
            h.inject(fragment(REMOTE, 0x8000 + f.legit_sent, dgram, split(dgram, 1480)))
            h.inject([build_ipv4(REMOTE, LOCAL, PROTO_UDP, udp_datagram(100))])
            f.legit_sent += 1
            got = h.received()
            assert udp_datagram(100)[8:] in got  # unfragmented: always delivered
            ok = dgram[8:] in got
            f.legit_ok += ok
            f.legit_fitting += fits
            f.legit_fitting_ok += fits and ok
            f.peak_memory = max(f.peak_memory, h.memory)
    f.cpu_s = time.process_time() - t0
    return f


def test_incomplete_train_flood_bounded_then_expires() -> None:
    """Linux >= 4.17: beyond ipfrag_high_thresh every fragment is refused until the
    queues time out (30 s); legitimate datagrams get through while there is room and
    again once the queues expire."""
    h = Host(Profile().replace(ipfrag_high_thresh=SMALL_THRESH))
    f = incomplete_flood(h, 5_000, legit_every=50)
    c = h.counters
    queued = len(h.stack.ip.reassembly)
    print(
        f"\nincomplete-train flood (refuse, {SMALL_THRESH} B): {f.fragments} fragments in"
        f" {f.cpu_s:.2f} CPU s, peak memory {f.peak_memory} B, queues {queued};"
        f" legitimate {f.legit_ok}/{f.legit_sent} ({f.legit_fitting_ok}/{f.legit_fitting} sent"
        f" while memory allowed); {reasm(c)}"
    )
    assert f.peak_memory <= SMALL_THRESH + QUEUE_COST + fragment_cost(1500)
    assert f.legit_fitting > 0 and f.legit_fitting_ok == f.legit_fitting
    assert c["ip_frag_mem_full"] > 0
    assert c["ReasmFails"] == c["ip_frag_mem_full"]  # nothing else failed yet
    assert_stack(h.stack, udp=[h.udp])
    h.advance(h.stack.profile.ipfrag_time + 1)
    c = h.counters
    assert h.memory == 0 and len(h.stack.ip.reassembly) == 0
    assert c["ReasmTimeout"] == queued
    assert all(Ipv4Packet(p).protocol == PROTO_ICMP for p in h.out)  # Time Exceeded (rate-limited)
    # Memory free again: a legitimate fragmented datagram arrives.
    dgram = udp_datagram(3000, fill=0x7A)
    h.inject(fragment(REMOTE, 0x7FFF, dgram, split(dgram, 1480)))
    assert h.received() == [b"z" * 3000]


def test_incomplete_train_flood_evict_oldest() -> None:
    """ipfrag_evict_oldest (Linux < 4.17): old queues are evicted down to low_thresh,
    memory never passes high_thresh, and every legitimate datagram arrives."""
    profile = Profile().replace(
        ipfrag_high_thresh=SMALL_THRESH, ipfrag_low_thresh=SMALL_THRESH * 3 // 4, ipfrag_evict_oldest=True
    )
    h = Host(profile)
    f = incomplete_flood(h, 5_000, legit_every=50)
    c = h.counters
    print(
        f"\nincomplete-train flood (evict, {SMALL_THRESH} B): {f.fragments} fragments in"
        f" {f.cpu_s:.2f} CPU s, peak memory {f.peak_memory} B; legitimate"
        f" {f.legit_ok}/{f.legit_sent}; {reasm(c)}"
    )
    assert f.peak_memory <= SMALL_THRESH
    assert f.legit_ok == f.legit_sent
    assert c.get("ip_frag_evicted", 0) > 0 and c.get("ip_frag_mem_full", 0) == 0
    assert_stack(h.stack, udp=[h.udp])


def test_incomplete_train_flood_default_threshold() -> None:
    """The default 4 MiB bound: 20 000 first fragments from random sources."""
    h = Host()
    f = incomplete_flood(h, 20_000, legit_every=200)
    c = h.counters
    print(
        f"\nincomplete-train flood (refuse, 4 MiB): {f.fragments} fragments in {f.cpu_s:.2f} CPU s"
        f" ({f.fragments / f.cpu_s:,.0f}/s), peak memory {f.peak_memory / 2**20:.2f} MiB,"
        f" queues {len(h.stack.ip.reassembly)}; legitimate {f.legit_ok}/{f.legit_sent}"
        f" ({f.legit_fitting_ok}/{f.legit_fitting} while memory allowed); {reasm(c)}"
    )
    bound = h.stack.profile.ipfrag_high_thresh
    assert f.peak_memory <= bound + QUEUE_COST + fragment_cost(1500)
    assert f.legit_fitting_ok == f.legit_fitting > 0
    assert_stack(h.stack, udp=[h.udp])


def test_many_ids_from_one_source_trip_max_dist() -> None:
    """ipfrag_max_dist (64): a source that sends more than 64 fragments of other
    datagrams between two fragments of one makes that queue stale (ip_frag_too_far)."""
    h = Host()
    dgram = udp_datagram(3000)
    first, second, third = fragment(REMOTE, 9, dgram, split(dgram, 1480))
    h.inject([first])
    for ident in range(100, 200):
        other = udp_datagram(2000)
        h.inject(fragment(REMOTE, ident, other, [(0, 1480, True)]))
    before = h.counters
    h.inject([second, third])
    assert reasm(moved(before, h.counters)) == {"ReasmReqds": 2, "ReasmFails": 1, "ip_frag_too_far": 1}
    assert h.received() == []
    assert_stack(h.stack, udp=[h.udp])


# =====================================================================================
# Both targets through the case API: the same attacks, the same counters
# =====================================================================================
SNMP_KEYS = ("ReasmReqds", "ReasmOKs", "ReasmFails", "ReasmTimeout", "ReasmOverlaps")


def _reasm_counters(case: Case, tmp: Path) -> dict[str, int]:
    """Ip: and IpExt: reassembly counters inside the case's namespace (/proc/net/snmp,
    /proc/net/netstat) on Linux, the stack's on refstack."""
    stack = getattr(case.session, "stack", None)
    if isinstance(stack, Stack):
        return {k: stack.counters[k] for k in SNMP_KEYS}
    out = tmp / "snmp"
    ok, why = case.session.apply(Setting("shell", f"cat /proc/net/snmp /proc/net/netstat > {out}"))
    assert ok, why
    lines = out.read_text().splitlines()
    values: dict[str, int] = {}
    for names, nums in itertools.pairwise(lines):
        prefix = names.split(":")[0]
        if (
            prefix in ("Ip", "IpExt")
            and nums.startswith(prefix + ":")
            and nums.split()[1].lstrip("-").isdigit()
        ):
            values.update(zip(names.split()[1:], map(int, nums.split()[1:]), strict=False))
    return {k: values.get(k, 0) for k in SNMP_KEYS}


@pytest.fixture(params=["refstack", "linux"])
def target_name(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def test_fragment_attacks_on_both_targets(target_name: str, tmp_path: Path) -> None:
    """Teardrop (overlap and short final fragment), RFC 1858's flag rewrite, a ping of
    death, then a legitimate fragmented datagram: the same counters move by the same
    amounts on refstack and on Linux, and only the legitimate datagram arrives."""
    target = get_target(target_name)
    ok, why = target.available()
    if not ok:
        pytest.skip(f"{target_name} unavailable: {why}")
    remote = ipv4_addr("192.0.2.1")
    with open_case(target, CaseConfig(name=f"fragment_attacks_{target_name}")) as case:
        dut = Dut(case)
        ufd = dut.bind_udp(UDP_PORT)
        dut.listen_tcp(TCP_PORT)
        before = _reasm_counters(case, tmp_path)
        dgram = build_udp(remote, LOCAL, 5000, UDP_PORT, b"T" * 80)
        attack = fragment(remote, 0x101, dgram, [(0, 48, True), (24, 64, False)])
        attack += fragment(remote, 0x102, dgram, [(0, 48, True), (8, 8, False)])
        ack = build_tcp(remote, LOCAL, 40000, TCP_PORT, seq=1, ack=1, flags=0x10, payload=b"x" * 40)
        syn = build_tcp(remote, LOCAL, 40000, TCP_PORT, seq=1, flags=SYN, payload=b"x" * 40)
        attack += fragment(remote, 0x103, ack, [(0, 16, True)], PROTO_TCP)
        attack += fragment(remote, 0x103, syn, [(8, len(syn) - 8, False)], PROTO_TCP)
        body = bytes([8, 0, 0, 0]) + bytes(4) + b"P" * (65_528 + 100 - 8)  # ICMP echo request
        pieces = [(o, n, True) for o, n, _ in split(body[:65528], 1480)] + [(65528, 100, False)]
        attack += fragment(remote, 0x104, body, pieces, PROTO_ICMP)
        legit = build_udp(remote, LOCAL, 5000, UDP_PORT, b"L" * 3000)
        attack += fragment(remote, 0x105, legit, split(legit, 1480))
        for packet in attack:
            case.session.inject(packet)
        data, _ = dut.recvfrom(ufd, timeout=2.0)
        assert data == b"L" * 3000
        case.sleep(0.2)
        sent = []
        while (got := case.session.sniff(case.now())) is not None:
            sent.append(Ipv4Packet(got.packet))
        after = _reasm_counters(case, tmp_path)
    delta = {k: after[k] - before[k] for k in SNMP_KEYS}
    print(f"\n{target_name} fragment attacks: {len(attack)} fragments; counters moved {delta}")
    assert [p for p in sent if p.protocol in (PROTO_ICMP, PROTO_TCP)] == []  # no echo reply, no SYN-ACK
    assert delta == {
        "ReasmReqds": len(attack),
        "ReasmOKs": 1,
        "ReasmFails": 4,  # overlap, bad length, flag rewrite (overlap), oversize
        "ReasmTimeout": 0,
        "ReasmOverlaps": 2,
    }
