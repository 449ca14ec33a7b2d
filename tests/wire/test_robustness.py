"""Robustness of every wire view: random and mutated bytes raise only ``WireError``.

The short variants run by default; the ``long`` ones (``pytest --long``) feed each
codec at least 100 000 hypothesis examples, as the foundation issue requires.
After a view is built, every getter is read: a checked constructor means no getter
may fail afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr, mac
from refstack.wire.arp import OP_REQUEST, ArpPacket, build_arp
from refstack.wire.errors import WireError
from refstack.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame, VlanTag, build_ethernet
from refstack.wire.icmp import IcmpMessage, build_icmp_echo, build_icmp_unreachable, quote_datagram
from refstack.wire.igmp import GroupRecord, build_igmp_v3_query, build_igmp_v3_report, parse_igmp
from refstack.wire.ipv4 import ROUTER_ALERT, Ipv4Packet, build_ipv4
from refstack.wire.tcp import SYN, TcpSegment, build_tcp
from refstack.wire.tcp_options import NOP, SACK_PERMITTED, Mss, Sack, Timestamps, WindowScale
from refstack.wire.udp import UdpDatagram, build_udp

A = ipv4_addr("192.168.0.1")
B = ipv4_addr("192.0.2.1")
GROUP = ipv4_addr("239.1.2.3")

TCP_SEED = build_tcp(
    A,
    B,
    40000,
    8080,
    seq=1,
    flags=SYN,
    options=[Mss(1460), SACK_PERMITTED, Timestamps(1, 0), NOP, WindowScale(7)],
)
TCP_SACK_SEED = build_tcp(A, B, 1, 2, options=[NOP, NOP, Sack(((1, 2), (3, 4)))], payload=b"data")
UDP_SEED = build_udp(A, B, 5353, 53, b"query")
IPV4_SEED = build_ipv4(A, B, 6, TCP_SEED, options=[ROUTER_ALERT])
ICMP_ECHO_SEED = build_icmp_echo(7, 1, b"ping")
ICMP_ERROR_SEED = build_icmp_unreachable(4, quote_datagram(build_ipv4(B, A, 6, TCP_SEED)), next_hop_mtu=1280)
IGMP_QUERY_SEED = build_igmp_v3_query(GROUP, sources=(A, B))
IGMP_REPORT_SEED = build_igmp_v3_report([GroupRecord(4, GROUP, (A,), b""), GroupRecord(1, GROUP, (), b"")])
ARP_SEED = build_arp(OP_REQUEST, mac("02:00:00:00:00:01"), A, bytes(6), B)
ETH_SEED = build_ethernet(
    BROADCAST_MAC, mac("02:00:00:00:00:01"), ETHERTYPE_IPV4, IPV4_SEED, vlan=VlanTag(pcp=1, dei=False, vid=5)
)


def _read_all(view: object) -> None:
    """Touch every public property: none may raise once the constructor accepted the bytes."""
    for name in dir(type(view)):
        if not name.startswith("_") and isinstance(getattr(type(view), name), property):
            getattr(view, name)
    repr(view)
    bytes(view)  # type: ignore[call-overload]


def _tcp(data: bytes) -> None:
    seg = TcpSegment(data)
    seg.checksum_ok(A, B)
    _read_all(seg)


def _udp(data: bytes) -> None:
    d = UdpDatagram(data)
    d.checksum_ok(A, B)
    _read_all(d)


def _ipv4(data: bytes) -> None:
    p = Ipv4Packet(data)
    p.checksum_ok()
    _read_all(p)
    _read_all(Ipv4Packet(data, truncated=True))


def _icmp(data: bytes) -> None:
    m = IcmpMessage(data)
    m.checksum_ok()
    _read_all(m)


def _igmp(data: bytes) -> None:
    m = parse_igmp(data)
    m.checksum_ok()
    _read_all(m)


def _arp(data: bytes) -> None:
    _read_all(ArpPacket(data))


def _ethernet(data: bytes) -> None:
    """A whole frame, down the stack as far as the headers allow."""
    frame = EthernetFrame(data)
    _read_all(frame)
    if frame.ethertype == ETHERTYPE_IPV4:
        ip = Ipv4Packet(frame.payload)
        parser = {1: _icmp, 2: _igmp, 6: _tcp, 17: _udp}.get(ip.protocol)
        if parser is not None and not ip.is_fragment:
            parser(ip.payload)


CODECS: dict[str, tuple[Callable[[bytes], None], tuple[bytes, ...]]] = {
    "tcp": (_tcp, (TCP_SEED, TCP_SACK_SEED)),
    "udp": (_udp, (UDP_SEED,)),
    "ipv4": (_ipv4, (IPV4_SEED,)),
    "icmp": (_icmp, (ICMP_ECHO_SEED, ICMP_ERROR_SEED)),
    "igmp": (_igmp, (IGMP_QUERY_SEED, IGMP_REPORT_SEED)),
    "arp": (_arp, (ARP_SEED,)),
    "ethernet": (_ethernet, (ETH_SEED,)),
}


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A valid seed with a few byte flips, truncations, insertions or length-field edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "extend")))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from((0, 1, 2, 0x7F, 0x80, 0xFF)))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            data += draw(st.binary(min_size=1, max_size=64))
    return bytes(data)


def inputs(seeds: tuple[bytes, ...]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=128), mutated(seeds))


def _check(codec: Callable[[bytes], None], data: bytes) -> None:
    with contextlib.suppress(WireError):
        codec(data)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_seeds_are_valid(name: str) -> None:
    codec, seeds = CODECS[name]
    for seed in seeds:
        codec(seed)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_random_and_mutated_bytes_raise_only_wire_error(name: str) -> None:
    codec, seeds = CODECS[name]

    @settings(max_examples=500, deadline=None)
    @given(inputs(seeds))
    def run(data: bytes) -> None:
        _check(codec, data)

    run()


@pytest.mark.long
@pytest.mark.parametrize("name", sorted(CODECS))
def test_long_fuzz_100k_examples(name: str) -> None:
    codec, seeds = CODECS[name]

    @settings(max_examples=100_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(inputs(seeds))
    def run(data: bytes) -> None:
        _check(codec, data)

    run()
