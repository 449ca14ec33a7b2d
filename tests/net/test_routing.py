"""Routing for a host (RFC 1122 §3.3.1, RFC 1812 §5.2.4.3 longest match): which
interface and next hop a destination takes, and that a gateway's MAC, not the
destination's, is resolved for off-link traffic."""

from __future__ import annotations

import pytest

from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr
from refstack.wire.arp import OP_REPLY, OP_REQUEST, build_arp
from refstack.wire.ethernet import ETHERTYPE_ARP, EthernetFrame, build_ethernet
from refstack.wire.ipv4 import Ipv4Packet
from tests.net.peer import LOCAL, LOCAL_MAC, REMOTE, REMOTE2, ROUTER, ROUTER_MAC, Wire, udp_ip, with_ident

NARROW = ipv4_addr("198.51.100.7")  # in 198.51.100.0/24 (tun1) and 198.51.0.0/16 (tun0)
WIDE = ipv4_addr("198.51.7.7")  # only in 198.51.0.0/16


def two_tuns(order: str) -> Wire:
    wire = Wire()
    wire.stack.add_interface("tun1", "10.9.0.1", 16)
    routes = [("198.51.0.0", 16, "tun0"), ("198.51.100.0", 24, "tun1")]
    for network, plen, dev in routes if order == "wide_first" else reversed(routes):
        wire.stack.add_route(network, plen, dev)
    return wire


@pytest.mark.parametrize("order", ["wide_first", "narrow_first"])
def test_longest_prefix_wins_whatever_the_order_added(order: str) -> None:
    """RFC 1812 §5.2.4.3 (as hosts use it): the most specific matching route is
    chosen, independent of the order routes were added."""
    wire = two_tuns(order)
    ep = wire.udp(port=7)
    ep.sendto(b"narrow", (NARROW, 9), 0.0)
    ep.sendto(b"wide", (WIDE, 9), 0.0)
    [on_tun1] = wire.stack.poll(0.0, "tun1")
    assert Ipv4Packet(on_tun1).dst == NARROW
    assert Ipv4Packet(on_tun1).src == ipv4_addr("10.9.0.1")  # RFC 1122 §3.3.4.3
    wire.at(0.0)
    assert wire.expect_ip().dst == WIDE
    wire.expect_nothing()


def test_default_route_catches_what_nothing_else_matches() -> None:
    """RFC 1122 §3.3.1.1: off-link destinations with no specific route go to the
    default gateway; an on-link destination still uses the connected route."""
    wire = Wire()
    wire.stack.add_interface("tun1", "10.9.0.1", 16)
    wire.stack.add_route("0.0.0.0", 0, "tun1")
    hop = wire.stack.routes.lookup(ipv4_addr("203.0.113.5"))
    assert hop is not None and hop.interface.name == "tun1"
    hop = wire.stack.routes.lookup(ipv4_addr("192.168.0.77"))
    assert hop is not None and (hop.interface.name, hop.address, hop.source) == (
        "tun0",
        ipv4_addr("192.168.0.77"),
        LOCAL,
    )


def test_gateway_route_resolves_the_gateway_not_the_destination() -> None:
    """RFC 1122 §3.3.1.2 / RFC 826: an off-link datagram is framed to its first-hop
    gateway: ARP asks for the gateway's address, and the frame goes to the gateway's
    MAC with the IP destination unchanged."""
    wire = Wire(ethernet=True)
    ep = wire.udp(port=7)
    ep.sendto(b"far", (REMOTE, 9), 0.0)
    wire.at(0.0)
    who_has = build_arp(OP_REQUEST, LOCAL_MAC, LOCAL, bytes(6), ROUTER)
    assert wire.expect() == build_ethernet(BROADCAST_MAC, LOCAL_MAC, ETHERTYPE_ARP, who_has)
    wire.expect_nothing()
    is_at = build_arp(OP_REPLY, ROUTER_MAC, ROUTER, LOCAL_MAC, LOCAL)
    wire.inject(build_ethernet(LOCAL_MAC, ROUTER_MAC, ETHERTYPE_ARP, is_at))
    frame = EthernetFrame(wire.expect())
    expected = udp_ip(LOCAL, REMOTE, 7, 9, b"far", dont_fragment=True)
    assert frame.dst == ROUTER_MAC
    assert frame.payload == with_ident(expected, Ipv4Packet(frame.payload).ident)


def test_second_destination_behind_the_gateway_needs_no_arp() -> None:
    """RFC 1122 §2.3.2.1: the cache is per next hop, so once the gateway is resolved
    every destination behind it goes straight out."""
    wire = Wire(ethernet=True)
    wire.stack.arp["eth0"].add_static(ROUTER, ROUTER_MAC)
    ep = wire.udp(port=7)
    for dst in (REMOTE, REMOTE2):
        ep.sendto(b"far", (dst, 9), 0.0)
    wire.at(0.0)
    frames = [EthernetFrame(wire.expect()) for _ in range(2)]
    assert [(f.dst, Ipv4Packet(f.payload).dst) for f in frames] == [
        (ROUTER_MAC, REMOTE),
        (ROUTER_MAC, REMOTE2),
    ]
    wire.expect_nothing()
