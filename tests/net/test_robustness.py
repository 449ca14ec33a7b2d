"""Robustness (RFC 1122 §1.2.2, "be liberal in what you accept"): thousands of
random and mutated frames never make the stack raise, every frame received is
accounted for by exactly one disposition counter, and everything the stack sends
in reply is itself well formed.  Seeded ``random`` keeps it fast and replayable."""

from __future__ import annotations

import contextlib
import random

import pytest

from refstack.stack import Stack
from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr
from refstack.wire.arp import OP_REPLY, OP_REQUEST, build_arp
from refstack.wire.checksum import checksum, checksum_ok
from refstack.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, build_ethernet
from refstack.wire.icmp import build_icmp_echo, build_icmp_unreachable, quote_datagram
from refstack.wire.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, Ipv4Packet, build_ipv4
from refstack.wire.tcp import SYN, build_tcp
from refstack.wire.udp import UdpDatagram
from tests.net.peer import (
    LIMITED_BROADCAST,
    LOCAL,
    LOCAL_MAC,
    NEIGHBOUR,
    NEIGHBOUR_MAC,
    REMOTE,
    ROUTER,
    ROUTER_MAC,
    SUBNET_BROADCAST,
    udp_ip,
)
from tests.reliability.invariants import DISPOSITIONS

FRAMES = 2000


ADDRESSES = [
    LOCAL,
    NEIGHBOUR,
    REMOTE,
    ROUTER,
    SUBNET_BROADCAST,
    LIMITED_BROADCAST,
    bytes(4),
    ipv4_addr("127.0.0.1"),
    ipv4_addr("224.0.0.1"),
    ipv4_addr("239.1.2.3"),
    ipv4_addr("240.0.0.1"),
    ipv4_addr("203.0.113.9"),  # no route back
    ipv4_addr("192.168.0.77"),  # on-link, never answers ARP
]


def corpus() -> list[bytes]:
    """Valid datagrams reaching every input path: UDP (bound, closed, broadcast),
    ICMP (echo, errors about our datagrams), TCP, unknown protocol, fragments."""
    out = []
    ours = udp_ip(LOCAL, REMOTE, 7, 5000, bytes(1472), dont_fragment=True)
    for src in (REMOTE, NEIGHBOUR):
        out += [
            udp_ip(src, LOCAL, 5000, 7, b"to the bound socket"),
            udp_ip(src, LOCAL, 5000, 9, b"to a closed port"),
            udp_ip(src, SUBNET_BROADCAST, 5000, 7, b"broadcast"),
            udp_ip(src, LOCAL, 5000, 7, b"fragment", more_fragments=True),
            build_ipv4(src, LOCAL, PROTO_ICMP, build_icmp_echo(1, 2, b"ping" * 10)),
            build_ipv4(src, LOCAL, PROTO_ICMP, build_icmp_unreachable(3, quote_datagram(ours))),
            build_ipv4(
                src, LOCAL, PROTO_ICMP, build_icmp_unreachable(4, quote_datagram(ours), next_hop_mtu=900)
            ),
            build_ipv4(
                src, LOCAL, PROTO_TCP, build_tcp(src, LOCAL, 5000, 80, seq=1, ack=0, flags=SYN, window=9)
            ),
            build_ipv4(src, LOCAL, 99, b"unknown protocol"),
        ]
    return out


def _fix_ip_checksum(b: bytearray) -> None:
    if len(b) >= 20 and b[0] >> 4 == 4:
        hlen = (b[0] & 15) * 4
        if 20 <= hlen <= len(b):
            b[10:12] = b"\0\0"
            b[10:12] = checksum(bytes(b[:hlen])).to_bytes(2, "big")


def mutate_ip(rng: random.Random, datagram: bytes) -> bytes:
    """One random mutation: raw noise, a cut, flipped bytes, or header fields set to
    edge values with the header checksum recomputed (to reach past it)."""
    b = bytearray(datagram)
    k = rng.random()
    if k < 0.08:
        return rng.randbytes(rng.randrange(0, 80))
    if k < 0.2:
        return bytes(b[: rng.randrange(len(b) + 1)])
    if k < 0.4:
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        if rng.random() < 0.5:
            _fix_ip_checksum(b)
        return bytes(b)
    field = rng.randrange(7)
    if field == 0:
        b[12:16] = rng.choice(ADDRESSES)
    elif field == 1:
        b[16:20] = rng.choice(ADDRESSES)
    elif field == 2:
        b[6:8] = rng.choice([0, 0x2000, 0x4000, 0x0001, 0x2001, 0x1FFF, 0x8000]).to_bytes(2, "big")
    elif field == 3:
        b[9] = rng.choice([0, 1, 2, 6, 17, 255])
    elif field == 4:
        b[0] = 0x40 | rng.randrange(16)
    elif field == 5:
        b[2:4] = rng.choice([0, 19, 20, len(b) - 1, len(b) + 1, 0xFFFF]).to_bytes(2, "big")
    else:
        b += rng.randbytes(rng.randrange(1, 30))  # link padding
    _fix_ip_checksum(b)
    return bytes(b)


def mutate_frame(rng: random.Random, frame: bytes) -> bytes:
    """Mutate an Ethernet frame: its header, or the datagram inside."""
    k = rng.random()
    if k < 0.15:
        macs = [LOCAL_MAC, BROADCAST_MAC, NEIGHBOUR_MAC, bytes.fromhex("01005e000001"), bytes(6)]
        return rng.choice(macs) + frame[6:]
    if k < 0.25:
        return frame[:12] + rng.choice([b"\x81\x00", b"\x86\xdd", b"\x05\xff", b"\x08\x06"]) + frame[14:]
    if k < 0.3:
        return frame[: rng.randrange(20)]
    if frame[12:14] == b"\x08\x00":
        return frame[:14] + mutate_ip(rng, frame[14:])
    b = bytearray(frame)
    for _ in range(rng.randrange(1, 4)):
        b[rng.randrange(14, len(b))] = rng.randrange(256)
    return bytes(b)


def check_sent(frame: bytes, *, ethernet: bool) -> None:
    """Everything the stack sends is well formed: a valid IPv4 header and, for UDP
    and ICMP, a valid checksum (or an ARP frame)."""
    if ethernet:
        eth = EthernetFrame(frame)
        if eth.ethertype == ETHERTYPE_ARP:
            return
        assert eth.ethertype == ETHERTYPE_IPV4
        frame = eth.payload
    ip = Ipv4Packet(frame)
    assert ip.checksum_ok()
    assert ip.src in (LOCAL,), ip
    if ip.protocol == PROTO_ICMP:
        # Not IcmpMessage: an error about a datagram with under 8 data bytes quotes
        # all there is, which is fewer than a receiver insists on (as Linux sends).
        assert checksum_ok(ip.payload)
    elif ip.protocol == PROTO_UDP and not ip.is_fragment:
        assert UdpDatagram(ip.payload).checksum_ok(ip.src, ip.dst)


def make_stack(ethernet: bool, seed: int) -> Stack:
    stack = Stack(seed=seed)
    stack.add_interface("if0", LOCAL, 24, mac=LOCAL_MAC if ethernet else None)
    stack.add_route("192.0.2.0", 24, "if0", gateway=ROUTER if ethernet else None)
    return stack


@pytest.mark.parametrize("ethernet", [False, True], ids=["ip_only", "ethernet"])
def test_random_and_mutated_frames_never_raise_and_are_all_accounted(ethernet: bool) -> None:
    """RFC 1122 §1.2.2 / §3.2.1: any frame at all is either processed or silently
    discarded; the stack never raises, counts every frame in exactly one
    disposition, and only ever emits well-formed datagrams from its own address."""
    rng = random.Random(20240601 + ethernet)
    stack = make_stack(ethernet, seed=1)
    bound = stack.udp.endpoint()
    bound.bind(bytes(4), 7)
    connected = stack.udp.endpoint()
    connected.connect(REMOTE, 5000, 0.0)
    base = corpus()
    if ethernet:
        base = [build_ethernet(LOCAL_MAC, ROUTER_MAC, ETHERTYPE_IPV4, d) for d in base]
        base += [
            build_ethernet(
                BROADCAST_MAC,
                NEIGHBOUR_MAC,
                ETHERTYPE_ARP,
                build_arp(OP_REQUEST, NEIGHBOUR_MAC, NEIGHBOUR, bytes(6), LOCAL),
            ),
            build_ethernet(
                LOCAL_MAC,
                ROUTER_MAC,
                ETHERTYPE_ARP,
                build_arp(OP_REPLY, ROUTER_MAC, ROUTER, LOCAL_MAC, LOCAL),
            ),
        ]
    mutate = mutate_frame if ethernet else mutate_ip
    now = 0.0
    for i in range(FRAMES):
        frame = mutate(rng, rng.choice(base))
        mark = stack.counters.mark()
        stack.receive(frame, now)
        moved = stack.counters.since(mark)
        ends = {k: v for k, v in moved.items() if k in DISPOSITIONS}
        if "kernel_path_rx_fragments" in ends:  # the fragment that completes a datagram
            ends.pop("ip_rx_delivered", None)  # also delivers it (reassembly, kernel path)
        assert moved.get("rx_frames") == 1 and len(ends) == 1 and set(ends.values()) == {1}, (
            i,
            frame.hex(),
            moved,
        )
        now += rng.choice([0.0, 0.001, 0.1, 0.7])
        for sent in stack.poll(now):
            check_sent(sent, ethernet=ethernet)
        for ep in (bound, connected):
            while ep.readable:
                with contextlib.suppress(OSError):  # a pending ICMP error, reported once
                    ep.recvfrom()
    assert stack.counters["rx_frames"] == FRAMES
    assert sum(stack.counters[k] for k in DISPOSITIONS) >= FRAMES  # plus loopback deliveries
