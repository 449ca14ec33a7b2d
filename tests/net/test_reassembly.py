"""IPv4 reassembly on the kernel path (RFC 791 §3.2, RFC 815, RFC 1122 §3.3.2), unit
tests of :class:`Reassembler` and end-to-end through a :class:`Stack`.

Linux is the model for what RFCs leave open (``net/ipv4/ip_fragment.c``): 30 s
timeout, overlaps drop the datagram, duplicates inside a run are ignored, memory
bounded by ``ipfrag_high_thresh``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, fragment  # the oracle builds fragments independently

from refstack.counters import Counters
from refstack.net.reassembly import QUEUE_COST, Reassembler, fragment_cost
from refstack.profile import Profile, apply_sysctl
from refstack.timers import TimerQueue
from refstack.wire.icmp import (
    ECHO_REQUEST,
    TIME_EXCEEDED_REASSEMBLY,
    build_icmp,
    build_icmp_time_exceeded,
    quote_datagram,
)
from refstack.wire.ipv4 import PROTO_ICMP, PROTO_UDP, Ipv4Packet, build_ipv4
from refstack.wire.udp import build_udp
from tests.net.peer import LOCAL, REMOTE, Wire, udp_ip

PAYLOAD = bytes(range(256)) * 16  # 4096 bytes


def split(datagram: bytes, size: int = 1480) -> list[bytes]:
    """RFC 791 §3.2: ``datagram`` cut into fragments of ``size`` data bytes (a multiple of 8)."""
    ip = Ipv4Packet(datagram)
    return train(ip.payload, size, src=ip.src, dst=ip.dst, protocol=ip.protocol, ident=ip.ident, tos=ip.tos)


def train(
    data: bytes,
    size: int,
    *,
    src: bytes = REMOTE,
    dst: bytes = LOCAL,
    protocol: int = PROTO_UDP,
    ident: int = 0x1234,
    tos: int = 0,
) -> list[bytes]:
    """Fragments carrying ``data`` (which may exceed one datagram: oversize tests)."""
    assert size % 8 == 0
    return [
        build_ipv4(
            src,
            dst,
            protocol,
            data[off : off + size],
            ident=ident,
            tos=tos,
            fragment_offset=off,
            more_fragments=off + size < len(data),
        )
        for off in range(0, len(data), size)
    ]


def piece(offset: int, length: int, *, more: bool = True, ident: int = 0x1234, fill: int = 0) -> bytes:
    """One fragment of ``length`` bytes at ``offset`` (octet values ``(fill + i) % 256``)."""
    data = bytes((fill + offset + i) % 256 for i in range(length))
    return build_ipv4(
        REMOTE, LOCAL, PROTO_UDP, data, ident=ident, fragment_offset=offset, more_fragments=more
    )


class Harness:
    """A :class:`Reassembler` on its own timer queue, with the expiries it reports."""

    def __init__(self, **options: object) -> None:
        self.timers = TimerQueue()
        self.counters = Counters()
        self.expired: list[tuple[Ipv4Packet, float]] = []
        self.r = Reassembler(self.timers, self.counters, lambda f, t: self.expired.append((f, t)), **options)  # type: ignore[arg-type]

    def feed(self, fragments: list[bytes], now: float = 0.0) -> list[Ipv4Packet]:
        done = []
        for f in fragments:
            whole = self.r.add(Ipv4Packet(f), now)
            if whole is not None:
                done.append(whole)
        return done


ORIGINAL = udp_ip(REMOTE, LOCAL, 5000, 7, PAYLOAD, ident=0x1234)
FRAGS = split(ORIGINAL)  # 4104 bytes of UDP: 1480 + 1480 + 1144


# --- unit: orders, duplicates, overlaps -----------------------------------------------
@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (2, 0, 1)], ids=str)
def test_fragments_in_any_order_reassemble_to_the_original(order: tuple[int, ...]) -> None:
    """RFC 791 §3.2 / RFC 815 §3: fragments may arrive in any order; the datagram is the
    original one, header included (fragment fields cleared, checksum redone)."""
    h = Harness()
    mark = h.counters.mark()
    done = h.feed([FRAGS[i] for i in order])
    assert [bytes(d) for d in done] == [ORIGINAL]
    assert done[0].checksum_ok()
    assert h.counters.since(mark) == {"ReasmReqds": 3, "ReasmOKs": 1}
    assert len(h.r) == 0 and h.r.memory == 0
    assert h.timers.next_deadline() is None  # the queue's timer went with it


def test_duplicate_fragment_is_ignored_and_the_queue_kept() -> None:
    """RFC 791 §3.2: duplicates are expected; Linux drops the copy (inet_frag_queue_insert
    IPFRAG_DUP) and keeps the queue."""
    h = Harness()
    mark = h.counters.mark()
    done = h.feed([FRAGS[0], FRAGS[1], FRAGS[0], FRAGS[1], FRAGS[2]])
    assert [bytes(d) for d in done] == [ORIGINAL]
    assert h.counters.since(mark) == {"ReasmReqds": 5, "ip_frag_duplicate": 2, "ReasmOKs": 1}


def test_overlapping_fragment_discards_the_whole_datagram() -> None:
    """Linux (RFC 5722 §4 spirit, for IPv4 since 4.19): a fragment overlapping queued
    data without being a duplicate discards the datagram; later fragments of it start
    a new queue, which never completes."""
    h = Harness()
    mark = h.counters.mark()
    assert h.feed([piece(0, 16), piece(8, 16), piece(24, 8, more=False)]) == []
    assert h.counters.since(mark) == {"ReasmReqds": 3, "ReasmOverlaps": 1, "ReasmFails": 1}
    assert len(h.r) == 1  # the third fragment's fresh queue


@pytest.mark.parametrize(
    ("first", "verdict"),
    [
        ([piece(0, 8), piece(8, 8)], "ip_frag_duplicate"),  # one run 0..16: a covering copy is a dup
        ([piece(8, 8), piece(0, 8)], "ReasmOverlaps"),  # two runs: the same copy overlaps both
    ],
    ids=["one_run", "two_runs"],
)
def test_covering_copy_depends_on_arrival_order_as_on_linux(first: list[bytes], verdict: str) -> None:
    """Linux's duplicate test is per run of contiguous fragments, so a copy spanning
    two fragments is a duplicate only if they arrived in order (the order-dependence
    packetimpact notes, FRAGMENTATION_MULTICAST.md F-7)."""
    h = Harness()
    h.feed(first)
    mark = h.counters.mark()
    h.feed([piece(0, 16)])
    assert verdict in h.counters.since(mark)


def test_rfc815_mode_accepts_overlaps_later_data_winning() -> None:
    """RFC 791 §3.2 / RFC 815: overlaps are merged; the data that arrives last wins."""
    h = Harness(overlaps="rfc815")
    done = h.feed([piece(0, 16), piece(8, 16, fill=100), piece(24, 8, more=False)])
    assert len(done) == 1
    expected = piece(0, 8)[20:] + piece(8, 16, fill=100)[20:] + piece(24, 8)[20:]
    assert done[0].payload == expected
    assert h.counters["ReasmOverlaps"] == 0


@pytest.mark.parametrize(
    "fragments",
    [
        [piece(8, 8, more=False), piece(16, 8)],  # data beyond a known end
        [piece(16, 8, more=False), piece(0, 8, more=False)],  # two different ends
        [piece(16, 8), piece(0, 8, more=False)],  # a last fragment ending before queued data
        [piece(8, 7)],  # a non-final fragment with less than 8 octets (cut to nothing)
    ],
    ids=["past_end", "two_ends", "end_before_data", "empty"],
)
def test_inconsistent_lengths_discard_the_datagram(fragments: list[bytes]) -> None:
    """Linux ``ip_frag_queue``'s corruption checks: the queue goes, ReasmFails counts."""
    h = Harness()
    mark = h.counters.mark()
    assert h.feed(fragments) == []
    assert h.counters.since(mark) == {
        "ReasmReqds": len(fragments),
        "ReasmFails": 1,
        "ip_frag_bad_length": 1,
    }


def test_non_final_fragment_is_cut_to_a_multiple_of_8() -> None:
    """RFC 791 §3.2 (non-final fragments carry multiples of 8 octets); Linux trims the
    excess rather than dropping the fragment."""
    h = Harness()
    done = h.feed([piece(0, 13), piece(8, 8, more=False)])
    assert len(done) == 1 and done[0].payload == piece(0, 16)[20:]


def test_ecn_not_ect_mixed_with_ce_discards_and_ce_on_ect_marks() -> None:
    """RFC 3168 §5.3 (Linux ``ip_frag_ecn_table``)."""
    h = Harness()
    assert h.feed(train(PAYLOAD[:16], 8, tos=0)[:1] + train(PAYLOAD[:16], 8, tos=3)[1:]) == []
    assert h.counters["ip_frag_ecn_invalid"] == 1
    done = h.feed(train(PAYLOAD[:16], 8, tos=2, ident=9)[:1] + train(PAYLOAD[:16], 8, tos=3, ident=9)[1:])
    assert done[0].ecn == 3


def test_key_is_source_destination_protocol_and_id() -> None:
    """RFC 791 §3.2: fragments that differ in any part of the key never mix."""
    h = Harness()
    a, b = train(PAYLOAD[:16], 8, ident=1)
    assert h.feed([a, train(PAYLOAD[:16], 8, ident=2)[1]]) == []
    assert h.feed([train(PAYLOAD[:16], 8, ident=1, protocol=PROTO_ICMP)[1]]) == []
    assert h.feed([train(PAYLOAD[:16], 8, ident=1, src=LOCAL, dst=REMOTE)[1]]) == []
    assert len(h.feed([b])) == 1


# --- unit: timeouts (RFC 1122 §3.3.2) ----------------------------------------------------
def test_timeout_without_fragment_0_reports_nothing() -> None:
    """RFC 1122 §3.3.2: Time Exceeded only if fragment 0 was received."""
    h = Harness()
    h.feed(FRAGS[1:], now=1.0)
    assert h.timers.next_deadline() == 31.0  # 30 s from the first fragment, not extended
    h.timers.run_due(30.999)
    assert len(h.r) == 1
    mark = h.counters.mark()
    h.timers.run_due(31.0)
    assert h.counters.since(mark) == {"ReasmFails": 1, "ReasmTimeout": 1}
    assert h.expired == [] and len(h.r) == 0 and h.r.memory == 0


def test_timeout_with_fragment_0_reports_it() -> None:
    """RFC 1122 §3.3.2: the partial datagram is discarded and fragment 0 handed back for
    the ICMP quote (Linux ``ip_expire`` sends about the head fragment)."""
    h = Harness(timeout=5.0)
    h.feed(FRAGS[:2], now=0.0)
    h.feed(FRAGS[:1], now=4.0)  # a duplicate does not extend the timer
    h.timers.run_due(5.0)
    assert [(bytes(f), t) for f, t in h.expired] == [(FRAGS[0], 5.0)]
    assert h.counters["ReasmTimeout"] == 1


# --- unit: sizes and memory --------------------------------------------------------------
def test_64k_datagram_reassembles() -> None:
    """RFC 1122 §3.3.2 (EMTU_R SHOULD allow the largest datagram): 65535 bytes."""
    datagram = udp_ip(REMOTE, LOCAL, 5000, 7, bytes(i % 251 for i in range(65507)), ident=7)
    assert len(datagram) == 65535
    h = Harness()
    assert [bytes(d) for d in h.feed(split(datagram))] == [datagram]


def test_datagram_past_65535_bytes_is_dropped() -> None:
    """RFC 791 §3.1 (Total Length is 16 bits); Linux ``ip_frag_reasm`` out_oversize."""
    h = Harness()
    frags = train(bytes(65600), 1480)
    mark = h.counters.mark()
    assert h.feed(frags) == []
    assert h.counters.since(mark) == {"ReasmReqds": len(frags), "ReasmFails": 1, "ip_frag_oversize": 1}
    assert len(h.r) == 0 and h.r.memory == 0


def test_fragment_cost_models_linux_truesize() -> None:
    """ipv4_frags_init_net: "A 64K fragment consumes 129736 bytes (44*2944)+200"."""
    assert 44 * fragment_cost(1500) + QUEUE_COST == 129736


def test_flood_is_refused_above_high_thresh_until_timeouts_free_memory() -> None:
    """Linux >= 4.17 ``inet_frag_find``: over ipfrag_high_thresh every fragment is refused
    (ReasmFails) until queues time out; memory never grows past the bound by more than
    the one fragment that crossed it."""
    h = Harness()  # Linux defaults: 4 MiB
    flood = [piece(0, 1480, ident=i) for i in range(2000)]
    peak = 0
    for f in flood:
        h.feed([f])
        peak = max(peak, h.r.memory)
    assert peak <= 4 * 1024 * 1024 + fragment_cost(1500) + QUEUE_COST
    refused = h.counters["ip_frag_mem_full"]
    assert refused > 0 and len(h.r) == 2000 - refused
    assert h.feed(FRAGS) == []  # a legitimate datagram is refused too
    h.timers.run_due(30.0)
    assert len(h.r) == 0 and h.r.memory == 0
    assert h.counters["ReasmTimeout"] == 2000 - refused
    assert [bytes(d) for d in h.feed(FRAGS, now=30.0)] == [ORIGINAL]


def test_flood_with_evict_oldest_stays_under_the_bound_and_counts_evictions() -> None:
    """Linux < 4.17 ``ip_evictor``: least recently updated queues are evicted down to
    ipfrag_low_thresh, so a legitimate datagram still gets through a flood."""
    high, low = 256 * 1024, 192 * 1024
    h = Harness(evict_oldest=True, high_thresh=high, low_thresh=low)
    for i in range(1000):
        h.feed([piece(0, 1480, ident=i)])
        assert h.r.memory <= high
    evicted = h.counters["ip_frag_evicted"]
    assert evicted > 0 and evicted == 1000 - len(h.r)
    assert h.counters["ReasmFails"] == evicted
    assert [bytes(d) for d in h.feed(FRAGS)] == [ORIGINAL]
    assert h.r.memory <= high


# --- property: any permutation and duplication ---------------------------------------------
@st.composite
def shuffled_trains(draw: st.DrawFn) -> tuple[bytes, list[bytes], int]:
    data = draw(st.binary(min_size=1, max_size=3000))
    size = 8 * draw(st.integers(1, 185))
    datagram = build_ipv4(REMOTE, LOCAL, 253, data, ident=draw(st.integers(0, 0xFFFF)))
    frags = split(datagram, size)
    order = draw(st.permutations(range(len(frags))))
    extra = draw(st.lists(st.integers(0, len(frags) - 1), max_size=len(frags)))
    sequence = list(order)
    for i in extra:
        sequence.insert(draw(st.integers(0, len(sequence))), i)
    return datagram, [frags[i] for i in sequence], len(frags)


@given(shuffled_trains())
def test_any_permutation_and_duplication_reassembles_to_the_original(
    case: tuple[bytes, list[bytes], int],
) -> None:
    """RFC 815 §3 / RFC 791 §3.2: order and duplicates do not matter; the datagram is
    complete exactly when the last missing fragment arrives."""
    datagram, sequence, n = case
    h = Harness()
    seen: set[bytes] = set()
    for f in sequence:
        seen.add(f)
        whole = h.r.add(Ipv4Packet(f), 0.0)
        if len(seen) == n:
            assert whole is not None and bytes(whole) == datagram
            return
        assert whole is None
    raise AssertionError("never completed")


@given(
    st.binary(min_size=16, max_size=600),
    st.lists(st.tuples(st.integers(0, 74), st.integers(1, 20)), max_size=30),
)
def test_rfc815_mode_any_cover_of_consistent_copies_reassembles(
    data: bytes, spans: list[tuple[int, int]]
) -> None:
    """RFC 815 §3: however the octets are covered (overlaps included), identical copies
    reassemble the original."""
    data = data[: len(data) // 8 * 8]
    units = len(data) // 8
    h = Harness(overlaps="rfc815")
    done: list[Ipv4Packet] = []
    pieces = [(min(s, units - 1), min(s + n, units)) for s, n in spans] + [(u, u + 1) for u in range(units)]
    for lo, hi in pieces:
        f = build_ipv4(
            REMOTE,
            LOCAL,
            253,
            data[lo * 8 : hi * 8],
            ident=5,
            fragment_offset=lo * 8,
            more_fragments=hi < units,
        )
        done += h.feed([f])
        if done:
            break
    assert len(done) == 1 and done[0].payload == data


# --- end to end through a Stack --------------------------------------------------------------
def test_udp_datagram_in_three_scapy_fragments_reaches_a_bound_socket() -> None:
    """RFC 1122 §3.3.2 (MUST reassemble), Onload UG1586 "IP Fragmentation": fragments
    go to the kernel path, which reassembles and delivers to the socket."""
    wire = Wire()
    ep = wire.udp(port=7)
    data = bytes(range(256)) * 12  # 3072 bytes -> 3 fragments of at most 1480
    packet = IP(src="192.0.2.1", dst="192.168.0.1", id=0x4242) / UDP(sport=5000, dport=7) / data
    frags = [bytes(f) for f in fragment(packet, fragsize=1480)]  # type: ignore[no-untyped-call]
    assert len(frags) == 3
    mark = wire.stack.counters.mark()
    for f in frags:
        wire.inject(f)
    assert ep.recvfrom() == (data, (REMOTE, 5000))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 3,
        "kernel_path_rx_fragments": 3,
        "ReasmReqds": 3,
        "ReasmOKs": 1,
        "ip_rx_delivered": 1,
        "udp_rx_delivered": 1,
    }
    wire.expect_nothing(until=60.0)


def test_stack_sends_time_exceeded_quoting_fragment_0_when_the_last_is_missing() -> None:
    """RFC 1122 §3.3.2: the reassembly timer is the stack's deadline; on expiry ICMP Time
    Exceeded code 1 quotes fragment 0 (as Linux ``icmp_send`` quotes, up to 576 bytes)."""
    wire = Wire()
    wire.udp(port=7)
    wire.inject(FRAGS[0])
    wire.inject(FRAGS[1])
    assert wire.stack.next_deadline() == 30.0
    wire.expect_nothing(until=29.9)
    wire.at(30.0)
    error = build_icmp_time_exceeded(TIME_EXCEEDED_REASSEMBLY, quote_datagram(FRAGS[0]))
    wire.expect_ip(build_ipv4(LOCAL, REMOTE, PROTO_ICMP, error, tos=0xC0))
    wire.expect_nothing(until=120.0)


def test_stack_is_silent_when_fragment_0_never_came() -> None:
    """RFC 1122 §3.3.2 and §3.2.2 (never an error about a non-initial fragment)."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(FRAGS[2])
    wire.expect_nothing(until=31.0)
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "kernel_path_rx_fragments": 1,
        "ReasmReqds": 1,
        "ReasmFails": 1,
        "ReasmTimeout": 1,
    }


def test_ipfrag_time_sysctl_sets_the_timeout() -> None:
    """Linux ``net.ipv4.ipfrag_time`` (seconds) through the profile's sysctl mapping."""
    profile = apply_sysctl(Profile(), "net.ipv4.ipfrag_time", "5")
    assert apply_sysctl(profile, "net.ipv4.ipfrag_high_thresh", "1000").ipfrag_high_thresh == 1000
    wire = Wire(profile)
    wire.inject(FRAGS[0])
    assert wire.stack.next_deadline() == 5.0
    wire.at(5.0)
    assert wire.expect_ip().protocol == PROTO_ICMP


def test_fragmented_echo_request_is_answered() -> None:
    """RFC 1122 §3.2.1.4/§3.3.2 (F-1): a fragmented ICMP echo is reassembled and answered;
    the reply, larger than the MTU, leaves in fragments."""
    request = build_ipv4(
        REMOTE, LOCAL, PROTO_ICMP, build_icmp(ECHO_REQUEST, 0, b"\x00\x01\x00\x01", PAYLOAD), ident=3
    )
    wire = Wire()
    for f in split(request):
        wire.inject(f)
    replies = [wire.expect_ip() for _ in range(3)]
    assert all(r.is_fragment for r in replies)
    h = Harness()
    (whole,) = h.feed([bytes(r) for r in replies])
    assert whole.payload[0] == 0 and whole.payload[8:] == PAYLOAD


def test_udp_payload_is_unchanged_by_reassembly() -> None:
    """The reassembled datagram's UDP checksum still verifies (RFC 768): the data is
    put back exactly as sent."""
    datagram = build_ipv4(REMOTE, LOCAL, PROTO_UDP, build_udp(REMOTE, LOCAL, 1, 2, PAYLOAD), ident=1)
    h = Harness()
    (whole,) = h.feed(list(reversed(split(datagram, 512))))
    assert bytes(whole) == datagram
