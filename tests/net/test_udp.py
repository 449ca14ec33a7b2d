"""UDP (RFC 768, RFC 1122 §4.1): demultiplexing, checksums, the receive buffer,
ICMP errors as socket errors, ports, and the errors the socket calls give (as
Linux gives them)."""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.udp import UdpEndpoint
from refstack.wire.icmp import UNREACH_PORT, build_icmp_unreachable, quote_datagram
from refstack.wire.ipv4 import PROTO_ICMP, PROTO_UDP, build_ipv4
from refstack.wire.udp import build_udp
from tests.net.peer import (
    ANY,
    LOCAL,
    REMOTE,
    REMOTE2,
    SUBNET_BROADCAST,
    Wire,
    udp_ip,
)

DELIVERED = {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 1}


def test_datagram_is_delivered_to_the_bound_socket() -> None:
    """RFC 768 / RFC 1122 §4.1.3.5: the data and the source address and port reach
    the socket bound to the destination port."""
    wire = Wire()
    ep = wire.udp(LOCAL, 7)
    other = wire.udp(LOCAL, 8)
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, b"for seven"))
    assert ep.recvfrom() == (b"for seven", (REMOTE, 5000))
    assert not other.rx
    assert wire.stack.counters.since(mark) == DELIVERED
    wire.expect_nothing()


def _three_sockets(wire: Wire) -> tuple[UdpEndpoint, UdpEndpoint, UdpEndpoint]:
    wildcard = wire.udp(ANY, 7, reuseaddr=True)
    bound = wire.udp(LOCAL, 7, reuseaddr=True)
    connected = wire.udp(LOCAL, 7, reuseaddr=True)
    connected.connect(REMOTE, 5000, 0.0)
    return wildcard, bound, connected


def test_connected_socket_wins_over_bound_and_wildcard() -> None:
    """RFC 1122 §4.1.3.5 (and Linux's scoring): the socket whose whole 4-tuple
    matches is the most specific and takes the datagram."""
    wire = Wire()
    wildcard, bound, connected = _three_sockets(wire)
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, b"peer"))
    assert connected.recvfrom() == (b"peer", (REMOTE, 5000))
    assert not wildcard.rx and not bound.rx


def test_bound_address_wins_over_wildcard() -> None:
    """RFC 1122 §4.1.3.5: without a connected match, the socket bound to the
    destination address beats the wildcard one (a connected socket never takes
    another peer's datagram)."""
    wire = Wire()
    wildcard, bound, connected = _three_sockets(wire)
    wire.inject(udp_ip(REMOTE2, LOCAL, 5000, 7, b"stranger"))
    assert bound.recvfrom() == (b"stranger", (REMOTE2, 5000))
    assert not wildcard.rx and not connected.rx


def test_broadcast_is_delivered_to_every_matching_socket() -> None:
    """RFC 1122 §4.1.3.5 / §3.3.6: a broadcast datagram goes to every socket that
    matches it (both wildcard sockets), not to one bound to a unicast address."""
    wire = Wire()
    first = wire.udp(ANY, 7, reuseaddr=True)
    second = wire.udp(ANY, 7, reuseaddr=True)
    unicast = wire.udp(LOCAL, 7, reuseaddr=True)
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, SUBNET_BROADCAST, 5000, 7, b"all"))
    assert first.recvfrom() == second.recvfrom() == (b"all", (REMOTE, 5000))
    assert not unicast.rx
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 2}


def test_zero_checksum_is_accepted() -> None:
    """RFC 768 / RFC 1122 §4.1.3.4: a zero checksum means the sender computed none;
    the datagram MUST be accepted."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(
        build_ipv4(REMOTE, LOCAL, PROTO_UDP, build_udp(REMOTE, LOCAL, 5000, 7, b"raw", no_checksum=True))
    )
    assert ep.recvfrom() == (b"raw", (REMOTE, 5000))
    assert wire.stack.counters.since(mark) == DELIVERED


def test_bad_checksum_is_dropped_silently() -> None:
    """RFC 1122 §4.1.3.4: a datagram with a wrong non-zero checksum MUST be silently
    discarded: no delivery, and no port unreachable either."""
    wire = Wire()
    ep = wire.udp()
    datagram = build_udp(REMOTE, LOCAL, 5000, 7, b"bits", checksum_value=0xBEEF)
    mark = wire.stack.counters.mark()
    wire.inject(build_ipv4(REMOTE, LOCAL, PROTO_UDP, datagram))
    wire.inject(build_ipv4(REMOTE, LOCAL, PROTO_UDP, datagram[:2] + (9).to_bytes(2, "big") + datagram[4:]))
    assert not ep.rx
    assert wire.stack.counters.since(mark) == {"rx_frames": 2, "ip_rx_delivered": 2, "udp_rx_bad_checksum": 2}
    wire.expect_nothing()


def test_length_longer_than_the_ip_payload_is_dropped() -> None:
    """RFC 768 Length covers header and data; a Length past the end of the IP
    payload is malformed and discarded (Linux: UDP InErrors)."""
    wire = Wire()
    ep = wire.udp()
    datagram = build_udp(REMOTE, LOCAL, 5000, 7, b"short", no_checksum=True)
    lying = datagram[:4] + (len(datagram) + 4).to_bytes(2, "big") + datagram[6:]
    mark = wire.stack.counters.mark()
    wire.inject(build_ipv4(REMOTE, LOCAL, PROTO_UDP, lying))
    assert not ep.rx
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_malformed": 1}
    wire.expect_nothing()


def test_full_receive_buffer_drops_and_counts() -> None:
    """RFC 1122 §4.1.3.5 leaves queueing to the host; Linux drops a datagram that
    would overflow SO_RCVBUF and counts it (RcvbufErrors); once read, room returns."""
    wire = Wire()
    ep = wire.udp(rcvbuf=100)
    mark = wire.stack.counters.mark()
    for tag in (b"a", b"b"):
        wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, tag * 60))
    assert ep.recvfrom() == (b"a" * 60, (REMOTE, 5000))
    assert not ep.rx
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 2,
        "ip_rx_delivered": 2,
        "udp_rx_delivered": 1,
        "udp_rx_rcvbuf_full": 1,
    }
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, b"c" * 60))
    assert ep.recvfrom() == (b"c" * 60, (REMOTE, 5000))


def _refuse(wire: Wire, sent: bytes) -> None:
    """The peer answers ``sent`` with port unreachable."""
    msg = build_icmp_unreachable(UNREACH_PORT, quote_datagram(sent))
    wire.inject(build_ipv4(REMOTE, LOCAL, PROTO_ICMP, msg))


def test_port_unreachable_on_a_connected_socket_is_econnrefused_once() -> None:
    """RFC 1122 §4.1.3.3: UDP MUST pass ICMP errors to the application; Linux reports
    port unreachable on a connected socket as ECONNREFUSED from the next call, once
    (SO_ERROR is cleared when reported)."""
    wire = Wire()
    ep = wire.udp(LOCAL, 7)
    ep.connect(REMOTE, 9, 0.0)
    ep.sendto(b"hello?", None, 0.0)
    wire.at(0.0)
    sent = bytes(wire.expect_ip())
    mark = wire.stack.counters.mark()
    _refuse(wire, sent)
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "udp_rx_icmp_error": 1,
    }
    with pytest.raises(OSError) as e:
        ep.recvfrom()
    assert e.value.errno == errno.ECONNREFUSED
    with pytest.raises(BlockingIOError):
        ep.recvfrom()


def test_port_unreachable_on_an_unconnected_socket_is_not_reported() -> None:
    """Linux without IP_RECVERR reports ICMP errors only on connected sockets (an
    unconnected one cannot tell which peer it was about)."""
    wire = Wire()
    ep = wire.udp(LOCAL, 7)
    ep.sendto(b"hello?", (REMOTE, 9), 0.0)
    wire.at(0.0)
    _refuse(wire, bytes(wire.expect_ip()))
    with pytest.raises(BlockingIOError):
        ep.recvfrom()
    assert wire.stack.counters["udp_rx_icmp_error"] == 0


def test_implicit_bind_picks_an_ephemeral_port_in_range() -> None:
    """RFC 6056 §3.3.1 / RFC 768: an unbound sender gets a port from
    ip_local_port_range (Linux 32768-60999) and keeps it."""
    wire = Wire()
    ep = wire.stack.udp.endpoint()
    ep.sendto(b"1", (REMOTE, 9), 0.0)
    ep.sendto(b"2", (REMOTE, 9), 0.0)
    wire.at(0.0)
    ports = {wire.expect_ip().payload[:2] for _ in range(2)}
    assert len(ports) == 1
    port = int.from_bytes(ports.pop(), "big")
    assert 32768 <= port <= 60999 and ep.local == (ANY, port)


def test_ephemeral_ports_come_from_the_configured_range_until_exhausted() -> None:
    """ip_local_port_range bounds ephemeral ports; when they are all taken Linux fails
    bind(port 0) with EADDRINUSE (inet_bind) and an implicit bind with EAGAIN
    (inet_autobind)."""
    wire = Wire(Profile(ip_local_port_range=(40000, 40002)))
    eps = [wire.udp(ANY, 0) for _ in range(3)]
    assert sorted(ep.local[1] for ep in eps) == [40000, 40001, 40002]  # type: ignore[index]
    with pytest.raises(OSError) as e:
        wire.udp(ANY, 0)
    assert e.value.errno == errno.EADDRINUSE
    with pytest.raises(OSError) as e:
        wire.stack.udp.endpoint().sendto(b"x", (REMOTE, 9), 0.0)
    assert e.value.errno == errno.EAGAIN


def test_bind_to_a_port_in_use_is_eaddrinuse() -> None:
    """Linux bind(2): a second socket on the same port and an overlapping address
    (the same one, or either one the wildcard) fails with EADDRINUSE."""
    wire = Wire()
    wire.udp(ANY, 7)
    for addr in (ANY, LOCAL):
        with pytest.raises(OSError) as e:
            wire.udp(addr, 7)
        assert e.value.errno == errno.EADDRINUSE


def test_so_reuseaddr_on_both_sockets_allows_sharing_a_port() -> None:
    """SO_REUSEADDR lets UDP sockets share a port when *every* one sets it."""
    wire = Wire()
    wire.udp(ANY, 7, reuseaddr=True)
    wire.udp(LOCAL, 7, reuseaddr=True)
    with pytest.raises(OSError) as e:
        wire.udp(LOCAL, 7)
    assert e.value.errno == errno.EADDRINUSE


def test_broadcast_without_so_broadcast_is_eacces() -> None:
    """RFC 1122 §4.1.3.6 (an application must ask to broadcast): Linux fails sendto
    and connect to a broadcast address with EACCES unless SO_BROADCAST is set."""
    wire = Wire()
    ep = wire.udp(port=7)
    with pytest.raises(OSError) as e:
        ep.sendto(b"all", (SUBNET_BROADCAST, 9), 0.0)
    assert e.value.errno == errno.EACCES
    with pytest.raises(OSError) as e:
        ep.connect(SUBNET_BROADCAST, 9, 0.0)
    assert e.value.errno == errno.EACCES
    wire.expect_nothing()
    ep.broadcast = True
    ep.sendto(b"all", (SUBNET_BROADCAST, 9), 0.0)
    wire.at(0.0)
    wire.expect_ip(udp_ip(LOCAL, SUBNET_BROADCAST, 7, 9, b"all", dont_fragment=True))


def test_payload_above_65507_is_emsgsize() -> None:
    """RFC 791 Total Length caps an IPv4 datagram at 65535, so UDP data at
    65535 - 20 - 8 = 65507; Linux fails a larger send with EMSGSIZE and sends
    exactly 65507 (in fragments)."""
    wire = Wire()
    ep = wire.udp(port=7)
    with pytest.raises(OSError) as e:
        ep.sendto(bytes(65508), (REMOTE, 9), 0.0)
    assert e.value.errno == errno.EMSGSIZE
    wire.expect_nothing()
    ep.sendto(bytes(65507), (REMOTE, 9), 0.0)
    wire.at(0.0)
    frags = [wire.expect_ip() for _ in range(len(wire.out))]
    assert sum(len(f.payload) for f in frags) == 65515 and not frags[-1].more_fragments


def test_sendto_without_destination_is_edestaddrreq() -> None:
    """Linux: send on an unconnected datagram socket fails with EDESTADDRREQ."""
    wire = Wire()
    ep = wire.udp(port=7)
    with pytest.raises(OSError) as e:
        ep.sendto(b"where?", None, 0.0)
    assert e.value.errno == errno.EDESTADDRREQ


@pytest.mark.parametrize("size", [5, 3000], ids=["small", "above_the_link_mtu"])
def test_datagram_to_our_own_address_loops_back_through_poll(size: int) -> None:
    """RFC 1122 §3.3.1.1 / §3.2.1.3 (g): a datagram to one of our own addresses is
    delivered internally, never put on the link; it is delivered by the next poll
    (the driver's turn), whatever its size (the loopback MTU is 65535)."""
    wire = Wire()
    receiver = wire.udp(LOCAL, 9)
    sender = wire.udp(LOCAL, 7)
    data = bytes(i % 256 for i in range(size))
    sender.sendto(data, (LOCAL, 9), 0.0)
    assert not receiver.rx and wire.stack.next_deadline() == 0.0
    mark = wire.stack.counters.mark()
    wire.at(0.0)
    assert receiver.recvfrom() == (data, (LOCAL, 7))
    assert wire.stack.counters.since(mark) == {"ip_rx_delivered": 1, "udp_rx_delivered": 1}
    wire.expect_nothing()


def test_limited_broadcast_leaves_through_the_bound_address_interface() -> None:
    """Linux routes 255.255.255.255 out of the bound address's (or IP_MULTICAST_IF's)
    interface without a route; SO_BROADCAST is still required (RFC 1122 §4.1.3.6)."""
    wire = Wire()
    bound = wire.udp(LOCAL, 7, broadcast=True)
    assert bound.sendto(b"all", (b"\xff\xff\xff\xff", 9), 0.0) == 3
    wire.at(0.0)
    ip = wire.expect_ip()
    assert (ip.src, ip.dst) == (LOCAL, b"\xff\xff\xff\xff")
    unbound = wire.udp(ANY, 8, broadcast=True)
    with pytest.raises(OSError) as caught:
        unbound.sendto(b"all", (b"\xff\xff\xff\xff", 9), 0.0)
    assert caught.value.errno == errno.ENETUNREACH  # no route and no interface named
