"""ARP and Ethernet framing (RFC 826, RFC 894, RFC 1122 §2.3.2, RFC 1112 §6.4):
resolution with a queue and retransmissions, answering and learning, and the
link-layer destination chosen for each kind of IP destination."""

from __future__ import annotations

import errno

import pytest

from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr, mac
from refstack.wire.arp import OP_REPLY, OP_REQUEST, ArpPacket, build_arp
from refstack.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, EthernetFrame, build_ethernet
from tests.net.peer import (
    LOCAL,
    LOCAL_MAC,
    NEIGHBOUR,
    NEIGHBOUR_MAC,
    OTHER_MAC,
    SUBNET_BROADCAST,
    Wire,
    udp_ip,
    with_ident,
)

WHO_HAS_NEIGHBOUR = build_ethernet(
    BROADCAST_MAC, LOCAL_MAC, ETHERTYPE_ARP, build_arp(OP_REQUEST, LOCAL_MAC, LOCAL, bytes(6), NEIGHBOUR)
)
NEIGHBOUR_IS_AT = build_ethernet(
    LOCAL_MAC, NEIGHBOUR_MAC, ETHERTYPE_ARP, build_arp(OP_REPLY, NEIGHBOUR_MAC, NEIGHBOUR, LOCAL_MAC, LOCAL)
)


def ipv4_frame(dst_mac: bytes, datagram: bytes) -> bytes:
    return build_ethernet(dst_mac, LOCAL_MAC, ETHERTYPE_IPV4, datagram)


def request_for(target: bytes, *, sender: bytes = NEIGHBOUR, sender_mac: bytes = NEIGHBOUR_MAC) -> bytes:
    arp = build_arp(OP_REQUEST, sender_mac, sender, bytes(6), target)
    return build_ethernet(BROADCAST_MAC, sender_mac, ETHERTYPE_ARP, arp)


def send_to_neighbour(wire: Wire, data: bytes = b"queued") -> bytes:
    """Send one UDP datagram LOCAL:7 -> NEIGHBOUR:9 now; return the IP datagram."""
    ep = wire.udp(LOCAL, 7, reuseaddr=True)
    ep.sendto(data, (NEIGHBOUR, 9), wire.now)
    return udp_ip(LOCAL, NEIGHBOUR, 7, 9, data, dont_fragment=True)


def _same_but_ident(frame: bytes, datagram: bytes, dst_mac: bytes) -> None:
    """``frame`` carries ``datagram`` to ``dst_mac`` (the Identification aside)."""
    eth = EthernetFrame(frame)
    ident = int.from_bytes(eth.payload[4:6], "big")
    assert frame == ipv4_frame(dst_mac, with_ident(datagram, ident))


# --- resolution ------------------------------------------------------------------------
def test_first_datagram_to_an_on_link_host_broadcasts_who_has_and_waits() -> None:
    """RFC 826 / RFC 1122 §2.3.2.2: with no mapping, broadcast a request carrying our
    MAC and IP for the target, and SHOULD keep (at least) the datagram meanwhile."""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    send_to_neighbour(wire)
    wire.at(0.0)
    assert wire.expect() == WHO_HAS_NEIGHBOUR
    wire.expect_nothing()
    assert wire.stack.counters.since(mark) == {"arp_tx_request": 1, "ip_tx": 1, "udp_tx": 1, "tx_frames": 1}


def test_reply_releases_the_queued_datagram_to_the_learned_mac() -> None:
    """RFC 826 Packet Reception: the reply's sender mapping is merged and the queued
    datagram goes out framed to that MAC; no more requests follow."""
    wire = Wire(ethernet=True)
    datagram = send_to_neighbour(wire)
    wire.at(0.0)
    assert wire.expect() == WHO_HAS_NEIGHBOUR
    wire.at(0.5)
    wire.inject(NEIGHBOUR_IS_AT)
    _same_but_ident(wire.expect_at(0.5), datagram, NEIGHBOUR_MAC)
    assert wire.stack.arp["eth0"].lookup(NEIGHBOUR) == NEIGHBOUR_MAC
    wire.expect_nothing(until=10.0)


def test_request_is_retransmitted_each_second_then_resolution_fails() -> None:
    """RFC 1122 §2.3.2.1: at most one request per second per destination; Linux sends
    mcast_solicit 3 then gives up: the queued datagram is dropped and counted, and
    the sender is told host unreachable (ICMP to ourselves, as Linux's
    arp_error_report), nothing of which appears on the link."""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    send_to_neighbour(wire)
    wire.at(10.0)
    assert [wire.expect_at(t) for t in (0.0, 1.0, 2.0)] == [WHO_HAS_NEIGHBOUR] * 3
    wire.expect_nothing()
    assert wire.stack.counters.since(mark) == {
        "arp_tx_request": 3,
        "arp_resolution_failed": 1,
        "ip_tx": 2,
        "udp_tx": 1,
        "icmp_tx_type3_code1": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "tx_frames": 3,
    }
    assert wire.stack.arp["eth0"].lookup(NEIGHBOUR) is None


def test_failed_resolution_reaches_a_connected_sender_as_ehostunreach() -> None:
    """RFC 1122 §4.1.3.3: UDP MUST pass ICMP errors up; the host unreachable the stack
    sends itself after ARP fails becomes EHOSTUNREACH on the connected socket.
    (Linux, without IP_RECVERR, only reports "hard" errors and so stays silent.)"""
    wire = Wire(ethernet=True)
    ep = wire.stack.udp.endpoint()
    ep.connect(NEIGHBOUR, 9, 0.0)
    ep.sendto(b"anyone?", None, 0.0)
    wire.at(3.0)
    with pytest.raises(OSError) as e:
        ep.recvfrom()
    assert e.value.errno == errno.EHOSTUNREACH


def test_failed_resolution_for_an_icmp_error_draws_no_error_about_it() -> None:
    """RFC 1122 §3.2.2: never an ICMP error about an ICMP error.  A port unreachable
    waiting on ARP that fails is dropped without a host unreachable about it."""
    wire = Wire(ethernet=True)
    wire.inject_ip(udp_ip(NEIGHBOUR, LOCAL, 5000, 9, b"closed"), src_mac=NEIGHBOUR_MAC)
    assert wire.expect_at(0.0) == WHO_HAS_NEIGHBOUR  # for the port unreachable
    mark = wire.stack.counters.mark()
    wire.at(5.0)
    assert [wire.expect_at(t) for t in (1.0, 2.0)] == [WHO_HAS_NEIGHBOUR] * 2
    assert wire.stack.counters.since(mark) == {
        "arp_tx_request": 2,
        "arp_resolution_failed": 1,
        "icmp_error_suppressed": 1,
        "tx_frames": 2,
    }


def test_queue_keeps_the_newest_three_datagrams() -> None:
    """RFC 1122 §2.3.2.2: SHOULD save at least one datagram; refstack keeps 3 per
    neighbour and, like Linux, drops the oldest on overflow (counted)."""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    datagrams = [send_to_neighbour(wire, bytes((65 + i,)) * 4) for i in range(5)]
    wire.at(0.0)
    assert wire.expect() == WHO_HAS_NEIGHBOUR
    wire.expect_nothing()
    assert wire.stack.counters.since(mark)["arp_queue_overflow"] == 2
    wire.inject(NEIGHBOUR_IS_AT)
    for datagram in datagrams[2:]:
        _same_but_ident(wire.expect(), datagram, NEIGHBOUR_MAC)
    wire.expect_nothing()


def test_stale_entry_is_used_while_it_is_revalidated() -> None:
    """RFC 1122 §2.3.2.1: a cache entry MUST be revalidated after a while; past
    reachable_time (Linux base_reachable_time 30 s) the datagram still goes out to
    the cached MAC at once and a request checks the mapping."""
    wire = Wire(ethernet=True)
    wire.inject(request_for(LOCAL))
    wire.expect()  # our reply
    wire.at(31.0)
    datagram = send_to_neighbour(wire)
    wire.at(31.0)
    _same_but_ident(wire.expect(), datagram, NEIGHBOUR_MAC)
    arp = ArpPacket(EthernetFrame(wire.expect()).payload)
    assert (arp.op, arp.sender_proto, arp.target_proto) == (OP_REQUEST, LOCAL, NEIGHBOUR)
    wire.expect_nothing()


# --- answering and learning ------------------------------------------------------------
def test_who_has_for_our_address_is_answered() -> None:
    """RFC 826 Packet Reception: a request for our protocol address is answered with
    our hardware address, sent to the requester's."""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    wire.inject(request_for(LOCAL))
    reply = build_arp(OP_REPLY, LOCAL_MAC, LOCAL, NEIGHBOUR_MAC, NEIGHBOUR)
    assert wire.expect() == build_ethernet(NEIGHBOUR_MAC, LOCAL_MAC, ETHERTYPE_ARP, reply)
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "arp_rx": 1, "arp_tx_reply": 1, "tx_frames": 1}
    wire.expect_nothing()


def test_request_addressed_to_us_teaches_the_senders_mapping() -> None:
    """RFC 826 Packet Reception ("if I am the target ... add the triplet"): after a
    request from the neighbour, a datagram to it needs no ARP of its own."""
    wire = Wire(ethernet=True)
    wire.inject(request_for(LOCAL))
    wire.expect()  # the reply
    datagram = send_to_neighbour(wire)
    wire.at(0.0)
    _same_but_ident(wire.expect(), datagram, NEIGHBOUR_MAC)
    wire.expect_nothing()


def test_request_for_another_address_is_ignored_and_not_learned() -> None:
    """RFC 826: when we are not the target, nothing is answered and no new mapping is
    added (only an existing one would be refreshed)."""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    wire.inject(request_for(ipv4_addr("192.168.0.3")))
    wire.expect_nothing()
    assert wire.stack.arp["eth0"].lookup(NEIGHBOUR) is None
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "arp_rx": 1}


def test_any_arp_from_a_known_host_refreshes_its_mapping() -> None:
    """RFC 826 merge flag: a packet from a sender already in the table updates its
    hardware address even when we are not the target (a NIC swap, failover)."""
    wire = Wire(ethernet=True)
    wire.inject(request_for(LOCAL))
    wire.expect()
    new_mac = mac("02:00:00:00:00:22")
    wire.inject(request_for(ipv4_addr("192.168.0.3"), sender_mac=new_mac))
    assert wire.stack.arp["eth0"].lookup(NEIGHBOUR) == new_mac
    wire.expect_nothing()


def test_arp_probe_for_our_address_is_answered_but_teaches_nothing() -> None:
    """RFC 5227 §2.1.1: a probe (sender IP 0.0.0.0) for our address is answered so
    the prober sees the conflict (Linux replies, to the prober's MAC); 0.0.0.0 is
    never entered in the table."""
    wire = Wire(ethernet=True)
    wire.inject(request_for(LOCAL, sender=bytes(4)))
    reply = build_arp(OP_REPLY, LOCAL_MAC, LOCAL, NEIGHBOUR_MAC, bytes(4))
    assert wire.expect() == build_ethernet(NEIGHBOUR_MAC, LOCAL_MAC, ETHERTYPE_ARP, reply)
    assert wire.stack.arp["eth0"].entries() == {}


# --- Ethernet framing ------------------------------------------------------------------
def test_frame_for_another_mac_is_dropped() -> None:
    """RFC 894 / IEEE 802.3: a unicast frame for another station's MAC is not ours,
    whatever it carries."""
    wire = Wire(ethernet=True)
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject_ip(udp_ip(NEIGHBOUR, LOCAL, 5000, 7, b"x"), dst_mac=OTHER_MAC)
    assert not ep.rx
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "eth_rx_not_for_us": 1}
    wire.expect_nothing()


def test_multicast_destination_maps_to_01_00_5e() -> None:
    """RFC 1112 §6.4: a class D destination is sent to 01-00-5E plus the low 23 bits
    of the group (239.129.2.3 -> 01:00:5e:01:02:03), without ARP."""
    wire = Wire(ethernet=True)
    wire.stack.add_route("224.0.0.0", 4, "eth0")
    ep = wire.udp(port=7)
    group = ipv4_addr("239.129.2.3")
    ep.sendto(b"m", (group, 9), 0.0)
    wire.at(0.0)
    _same_but_ident(
        wire.expect(), udp_ip(LOCAL, group, 7, 9, b"m", dont_fragment=True, ttl=1), mac("01:00:5e:01:02:03")
    )
    wire.expect_nothing()


def test_broadcast_destination_is_sent_to_the_broadcast_mac() -> None:
    """RFC 894 / RFC 1122 §2.3.2: an IP broadcast goes to ff:ff:ff:ff:ff:ff, without ARP."""
    wire = Wire(ethernet=True)
    ep = wire.udp(port=7, broadcast=True)
    ep.sendto(b"all", (SUBNET_BROADCAST, 9), 0.0)
    wire.at(0.0)
    _same_but_ident(
        wire.expect(), udp_ip(LOCAL, SUBNET_BROADCAST, 7, 9, b"all", dont_fragment=True), BROADCAST_MAC
    )
    wire.expect_nothing()


def test_link_broadcast_of_a_unicast_datagram_draws_no_icmp_error() -> None:
    """RFC 1122 §3.2.2: no ICMP error about a datagram sent as a link-layer broadcast,
    even when its IP destination is our unicast address.  (§3.3.6 says such a
    datagram SHOULD be discarded outright; Linux, with drop_unicast_in_l2_multicast
    0 by default, delivers it, and so does refstack.)"""
    wire = Wire(ethernet=True)
    mark = wire.stack.counters.mark()
    wire.inject_ip(udp_ip(NEIGHBOUR, LOCAL, 5000, 9, b"x"), dst_mac=BROADCAST_MAC, src_mac=NEIGHBOUR_MAC)
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "udp_rx_no_port": 1,
        "icmp_error_suppressed": 1,
    }
    wire.expect_nothing()
