"""RFC 791 §3.2, RFC 1122 §3.3.2-3.3.3: reassembly and fragmentation cases a .pkt line
cannot say: many fragments built in a loop, other protocols than UDP, oversize trains,
payload contents and "two IDs differ".
"""

from __future__ import annotations

import errno
import itertools
import random
import struct

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.packet import Packet, Raw

from conformance.case_api import Case, Dut, DutError, UdpFlow, case

PORT = 8080
MF = 0x1
DF = 0x2


def _pattern(n: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(n))


def _fragments(case: Case, payload: bytes, proto: int, ident: int, size: int) -> list[bytes]:
    """The fragments (``size`` data bytes each, a multiple of 8) of one datagram from the
    bench whose IP payload is ``payload``."""
    assert size % 8 == 0
    out = []
    for offset in range(0, len(payload), size):
        piece = payload[offset : offset + size]
        more = offset + size < len(payload)
        ip = IP(src=case.remote_ip, dst=case.local_ip, proto=proto, id=ident, flags=MF if more else 0)
        ip.frag = offset // 8
        out.append(bytes(ip / Raw(piece)))
    return out


def _udp_payload(case: Case, udp: UdpFlow, data: bytes) -> bytes:
    """A UDP header plus ``data``, checksum computed (the IP payload of the datagram)."""
    whole = IP(src=case.remote_ip, dst=case.local_ip) / UDP(sport=udp.bench_port, dport=PORT) / Raw(data)
    return bytes(IP(bytes(whole)).payload)


def _nothing_to_read(dut: Dut, fd: int) -> None:
    dut.set_nonblocking(fd)
    with pytest.raises(DutError) as nothing:
        dut.recv(fd)
    assert nothing.value.errno == errno.EAGAIN
    dut.set_nonblocking(fd, False)


def _sent_fragments(case: Case, count: int, timeout: float = 1.0) -> list[Packet]:
    """The next ``count`` IPv4 fragments the DUT sends (other packets skipped)."""
    got: list[Packet] = []
    deadline = case.now() + timeout
    while len(got) < count:
        pkt = case.sniff_any(max(deadline - case.now(), 0.0))
        assert pkt is not None, f"only {len(got)} of {count} fragments came"
        if int(pkt.flags) & MF or int(pkt.frag):
            got.append(pkt)
    return got


def _reassemble(frags: list[Packet]) -> bytes:
    data = bytearray()
    for f in sorted(frags, key=lambda p: int(p.frag)):
        assert int(f.frag) * 8 == len(data), "a hole or an overlap in the DUT's fragments"
        data += bytes(f.payload)[: f.len - f.ihl * 4]
    return bytes(data)


# req: F-1 F-13 RFC1122-3.2.2.6
@case("RFC 1122 §3.3.2, §3.2.2.6 (echo)")
def test_fragmented_echo_request_answered(case: Case, dut: Dut) -> None:
    """A 3000-byte ICMP echo request in three fragments is reassembled and answered;
    the 3008-byte reply does not fit the MTU, so it leaves fragmented (Linux's ICMP
    replies do not set DF), all of it under one ID, echoing every data byte."""
    data = _pattern(3000)
    echo = bytes(
        IP(bytes(IP(src=case.remote_ip, dst=case.local_ip) / ICMP(id=0x4242, seq=7) / Raw(data))).payload
    )
    for frag in _fragments(case, echo, 1, 0x1111, 1480):
        case.inject(frag)
    frags = _sent_fragments(case, 3)
    assert len({int(f.id) for f in frags}) == 1, "the reply's fragments carry different IDs"
    assert all(not int(f.flags) & DF for f in frags)
    reply = ICMP(_reassemble(frags))
    assert (reply.type, reply.id, reply.seq) == (0, 0x4242, 7)
    assert bytes(reply.payload) == data


# req: F-4
@case("RFC 791 §3.2")
def test_same_id_other_protocol_not_mixed(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """The reassembly key includes the protocol: fragment 0 of a UDP datagram and a last
    fragment with the same source, destination and ID but protocol ICMP are not joined;
    the UDP datagram completes with its own last fragment."""
    fd = dut.bind_udp(PORT)
    data = _pattern(2000)
    first, last = _fragments(case, _udp_payload(case, udp, data), 17, 0x2222, 1480)
    case.inject(first)
    wrong = IP(last)
    wrong.proto = 1
    wrong.chksum = None
    case.inject(bytes(wrong))
    case.sleep(0.05)
    _nothing_to_read(dut, fd)
    case.inject(last)
    assert dut.recv(fd) == data


# req: F-3 F-1
@case("RFC 1122 §3.3.2, RFC 791 §3.1")
def test_largest_datagram_reassembled(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """EMTU_R may be 65535 (RFC 1122 §3.3.2, Linux's): a UDP datagram with 65507 bytes
    of data, 65535 bytes with its IP header, arrives in 45 fragments and is delivered
    intact."""
    fd = dut.bind_udp(PORT)
    data = _pattern(65507)
    for frag in _fragments(case, _udp_payload(case, udp, data), 17, 0x3333, 1480):
        case.inject(frag)
    assert dut.recv(fd, 70000) == data


# req: F-3 RFC791-3.1
@case("RFC 791 §3.1 (Total Length is 16 bits)")
def test_reassembly_beyond_65535_bytes_dropped(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Fragments whose data would make a datagram of 65544 bytes (more than Total
    Length can say) are discarded at reassembly (Linux ip_frag_reasm's oversize check),
    silently; a normal datagram after them is delivered."""
    fd = dut.bind_udp(PORT)
    # 8 + 65516 = 65524 bytes of IP payload; the UDP length field cannot say it (0 here)
    payload = struct.pack("!HHHH", udp.bench_port, PORT, 0, 0) + bytes(65516)
    for frag in _fragments(case, payload, 17, 0x4444, 1480):
        case.inject(frag)
    assert case.sniff_any(0.2) is None, "something was sent about an oversize datagram"
    udp.send(b"after", dut_port=PORT)
    assert dut.recv(fd) == b"after"


# req: F-2 F-6 F-5
@case("RFC 791 §3.1, RFC 1122 §3.3.2 (EMTU_R >= 576)")
def test_576_byte_datagram_in_8_octet_fragments_any_order(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Every host accepts a 576-octet datagram, whole or in fragments: here in 70
    fragments of 8 octets (the smallest non-final fragment) in a shuffled order."""
    fd = dut.bind_udp(PORT)
    data = _pattern(576 - 20 - 8)
    frags = _fragments(case, _udp_payload(case, udp, data), 17, 0x5555, 8)
    assert len(frags) == 70
    random.Random(576).shuffle(frags)
    for frag in frags:
        case.inject(frag)
    assert dut.recv(fd) == data


# req: F-18 F-13
@case("RFC 791 §3.2, RFC 6864 §4.1")
def test_fragmented_datagrams_get_distinct_ids(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Two fragmented datagrams sent back to back to the same destination: each one's
    fragments share an ID, and the two IDs differ (a non-atomic datagram's ID is unique
    per source, destination and protocol)."""
    fd = dut.bind_udp(PORT)
    dut.sendto(fd, bytes(2000), (case.remote_ip, udp.bench_port))
    dut.sendto(fd, bytes(2000), (case.remote_ip, udp.bench_port))
    frags = _sent_fragments(case, 4)
    first, second = {int(f.id) for f in frags[:2]}, {int(f.id) for f in frags[2:]}
    assert len(first) == 1 and len(second) == 1, (first, second)
    assert first != second


# req: F-6 F-1
@case("RFC 815 §3")
def test_fragments_with_different_sizes(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Fragment sizes need not match: pieces of 8, 1480, 24 and 512 octets and a last
    one, sent in a mixed order, fill the holes of one datagram."""
    fd = dut.bind_udp(PORT)
    data = _pattern(3000)
    payload = _udp_payload(case, udp, data)
    cuts = [0, 8, 1488, 1512, 2024, len(payload)]
    frags = []
    for start, end in itertools.pairwise(cuts):
        ip = IP(
            src=case.remote_ip, dst=case.local_ip, proto=17, id=0x6666, flags=MF if end < len(payload) else 0
        )
        ip.frag = start // 8
        frags.append(bytes(ip / Raw(payload[start:end])))
    for i in (3, 0, 4, 2, 1):
        case.inject(frags[i])
    assert dut.recv(fd) == data


# req: F-9 F-8
@case("RFC 1122 §3.3.2, RFC 792 (Time Exceeded)", sysctls={"net.ipv4.ipfrag_time": "1"})
def test_time_exceeded_quotes_fragment_zero(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """The Time Exceeded (code 1) sent when reassembly times out quotes fragment 0: its
    IP header (ID, MF set, offset 0) and at least the first 8 octets of its data,
    here the UDP header (RFC 792, RFC 1122 §3.2.2)."""
    dut.bind_udp(PORT)
    first, _ = _fragments(case, _udp_payload(case, udp, _pattern(2000)), 17, 0x7777, 1480)
    case.inject(first)
    sent = case.now()
    error = case.sniff_any(2.0)
    assert error is not None, "no Time Exceeded"
    waited = float(error.time) - sent
    assert 0.9 <= waited <= 1.3, waited
    assert ICMP in error and (error[ICMP].type, error[ICMP].code) == (11, 1)
    quoted = IP(bytes(error[ICMP].payload))
    assert (quoted.src, quoted.dst, int(quoted.id), int(quoted.frag)) == (
        case.remote_ip,
        case.local_ip,
        0x7777,
        0,
    )
    assert int(quoted.flags) & MF
    assert bytes(quoted.payload)[:8] == bytes(IP(first).payload)[:8]


def _interleave_small_datagrams(case: Case, udp: UdpFlow, count: int) -> None:
    """``count`` 100-byte UDP datagrams from the same source, each in two fragments."""
    for i in range(count):
        for frag in _fragments(case, _udp_payload(case, udp, bytes(100)), 17, 0x9000 + i, 56):
            case.inject(frag)


def _received_sizes(dut: Dut, fd: int) -> list[int]:
    dut.set_nonblocking(fd)
    sizes = []
    while True:
        try:
            sizes.append(len(dut.recv(fd, 70000)))
        except DutError as e:
            assert e.errno == errno.EAGAIN
            return sizes


# req: F-19 F-6
@case("RFC 1122 §3.3.2 (Linux ipfrag_max_dist)")
def test_fragments_within_max_dist_reassembled(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Linux's ipfrag_max_dist (64): a datagram whose fragments are 61 fragments of the
    same source apart (30 small fragmented datagrams between its two halves) is still
    reassembled."""
    fd = dut.bind_udp(PORT)
    first, last = _fragments(case, _udp_payload(case, udp, _pattern(2000)), 17, 0x8888, 1480)
    case.inject(first)
    _interleave_small_datagrams(case, udp, 30)
    case.inject(last)
    case.sleep(0.05)
    sizes = _received_sizes(dut, fd)
    assert sorted(sizes) == [100] * 30 + [2000]


# req: F-19
@case("RFC 1122 §3.3.2 (Linux ipfrag_max_dist)")
def test_fragments_beyond_max_dist_discarded(case: Case, dut: Dut, udp: UdpFlow) -> None:
    """Linux's ipfrag_max_dist (64): when more than 64 fragments from the same source
    arrive between two fragments of one datagram (here 66, from 33 small datagrams),
    the older fragments are taken as stale and dropped (ip_frag_too_far), so the
    datagram never completes; the small ones are delivered."""
    fd = dut.bind_udp(PORT)
    first, last = _fragments(case, _udp_payload(case, udp, _pattern(2000)), 17, 0x8889, 1480)
    case.inject(first)
    _interleave_small_datagrams(case, udp, 33)
    case.inject(last)
    case.sleep(0.05)
    assert sorted(_received_sizes(dut, fd)) == [100] * 33
