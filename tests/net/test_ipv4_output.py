"""IPv4 output for a host (RFC 791 §3.2, RFC 1122 §3.3.1 and §3.3.3, RFC 6864):
routing and source choice, TTL, DF and local fragmentation, and the errors a
sender sees."""

from __future__ import annotations

import errno

import pytest

from refstack.profile import Profile
from refstack.wire.addresses import ipv4_addr
from refstack.wire.ipv4 import PROTO_UDP, Ipv4Packet, build_ipv4
from refstack.wire.udp import build_udp
from tests.net.peer import ANY, LOCAL, REMOTE, REMOTE2, Wire, udp_ip


def test_source_address_comes_from_the_route() -> None:
    """RFC 1122 §3.3.4.3 / §3.4: an unbound sender's source is the address of the
    interface the route picks (here the second interface, not the primary)."""
    wire = Wire()
    wire.stack.add_interface("tun1", "10.0.0.1", 8)
    wire.stack.add_route("198.51.100.0", 24, "tun1")
    ep = wire.udp(port=7)
    far = ipv4_addr("198.51.100.7")
    ep.sendto(b"via tun1", (far, 53), 0.0)
    [sent] = wire.stack.poll(0.0, "tun1")
    ip = Ipv4Packet(sent)
    src = ipv4_addr("10.0.0.1")
    assert bytes(ip) == build_ipv4(
        src, far, PROTO_UDP, build_udp(src, far, 7, 53, b"via tun1"), ident=ip.ident, dont_fragment=True
    )
    wire.expect_nothing()  # nothing on the primary interface


def test_default_ttl_is_64() -> None:
    """RFC 1122 §3.2.1.7: a fixed default TTL, configurable; Linux ip_default_ttl 64
    (RFC 1700's recommended value)."""
    wire = Wire()
    ep = wire.udp(port=7)
    ep.sendto(b"t", (REMOTE, 9), 0.0)
    wire.at(0.0)
    assert wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, b"t", dont_fragment=True)).ttl == 64


def test_ip_default_ttl_knob_sets_the_ttl() -> None:
    """RFC 1122 §3.2.1.7: the TTL MUST be configurable (profile ip_default_ttl)."""
    wire = Wire(Profile(ip_default_ttl=17))
    ep = wire.udp(port=7)
    ep.sendto(b"t", (REMOTE, 9), 0.0)
    wire.at(0.0)
    wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, b"t", dont_fragment=True, ttl=17))


def test_udp_sets_df_when_the_datagram_fits() -> None:
    """RFC 1191 §3 path MTU discovery, as Linux's UDP default IP_PMTUDISC_WANT: a
    datagram that fits the path MTU (here exactly 1500) carries DF."""
    wire = Wire()
    ep = wire.udp(port=7)
    data = bytes(range(256)) * 5 + bytes(1472 - 1280)
    ep.sendto(data, (REMOTE, 9), 0.0)
    wire.at(0.0)
    ip = wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, data, dont_fragment=True))
    assert ip.total_length == 1500
    wire.expect_nothing()


def test_udp_without_path_mtu_discovery_clears_df() -> None:
    """IP_PMTUDISC_DONT (``pmtudisc=False``): DF is never set (RFC 1122 §3.3.3 lets
    the host fragment instead)."""
    wire = Wire()
    ep = wire.udp(port=7, pmtudisc=False)
    ep.sendto(b"d", (REMOTE, 9), 0.0)
    wire.at(0.0)
    wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, b"d"))


def test_oversize_udp_is_fragmented_locally_without_df() -> None:
    """RFC 791 §3.2 fragmentation procedure, RFC 1122 §3.3.3 (local fragmentation
    MAY): 3000 bytes of UDP on a 1500 MTU leave as three fragments of one
    Identification, data in multiples of 8 but the last, offsets 0/1480/2960, MF on
    all but the last, no DF; together they are the original UDP datagram."""
    wire = Wire()
    ep = wire.udp(port=7)
    data = bytes(i * 7 % 251 for i in range(3000))
    mark = wire.stack.counters.mark()
    ep.sendto(data, (REMOTE, 9), 0.0)
    wire.at(0.0)
    frags = [wire.expect_ip() for _ in range(3)]
    wire.expect_nothing()
    assert [(f.fragment_offset, len(f.payload), f.more_fragments) for f in frags] == [
        (0, 1480, True),
        (1480, 1480, True),
        (2960, 48, False),
    ]
    assert len({f.ident for f in frags}) == 1
    for f in frags:
        assert (f.src, f.dst, f.protocol, f.ttl, f.dont_fragment) == (LOCAL, REMOTE, PROTO_UDP, 64, False)
        assert f.total_length <= 1500
    assert b"".join(f.payload for f in frags) == build_udp(LOCAL, REMOTE, 7, 9, data)
    assert wire.stack.counters.since(mark) == {
        "ip_tx_fragments": 3,
        "ip_tx_fragmented": 1,
        "udp_tx": 1,
        "tx_frames": 3,
    }


def test_pmtudisc_do_refuses_an_oversize_datagram_with_emsgsize() -> None:
    """RFC 1122 §3.3.3: without local fragmentation a host MUST NOT send more than
    the path allows; with IP_PMTUDISC_DO Linux fails the send with EMSGSIZE.  One
    byte less fits and goes out with DF."""
    wire = Wire()
    ep = wire.udp(port=7, pmtudisc=True)
    mark = wire.stack.counters.mark()
    with pytest.raises(OSError) as e:
        ep.sendto(bytes(1473), (REMOTE, 9), 0.0)
    assert e.value.errno == errno.EMSGSIZE
    assert wire.stack.counters.since(mark) == {"ip_tx_too_big_df": 1}
    wire.expect_nothing()
    ep.sendto(bytes(1472), (REMOTE, 9), 0.0)
    wire.at(0.0)
    wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, bytes(1472), dont_fragment=True))


@pytest.mark.parametrize("bound", [ANY, LOCAL], ids=["wildcard", "bound_address"])
def test_no_route_fails_with_enetunreach(bound: bytes) -> None:
    """RFC 1122 §3.3.1 (routing outbound datagrams): with no route and no default
    gateway the datagram cannot be sent; Linux fails the send with ENETUNREACH and
    counts it (OutNoRoutes), whether or not the socket is bound to an address."""
    wire = Wire()
    ep = wire.udp(bound, 7)
    mark = wire.stack.counters.mark()
    with pytest.raises(OSError) as e:
        ep.sendto(b"x", (ipv4_addr("203.0.113.1"), 9), 0.0)
    assert e.value.errno == errno.ENETUNREACH
    assert wire.stack.counters.since(mark) == {"ip_tx_no_route": 1}
    wire.expect_nothing()


def test_successive_datagrams_get_different_identifications() -> None:
    """RFC 791 §3.2 / RFC 6864: datagrams that may be fragmented (here with pmtudisc
    off, so no DF) MUST NOT reuse an Identification for the same source,
    destination and protocol; another destination has its own sequence."""
    wire = Wire()
    ep = wire.udp(port=7, pmtudisc=False)
    for _ in range(3):
        ep.sendto(b"x", (REMOTE, 9), 0.0)
    ep.sendto(b"x", (REMOTE2, 9), 0.0)
    wire.at(0.0)
    ids = [wire.expect_ip(udp_ip(LOCAL, REMOTE, 7, 9, b"x")).ident for _ in range(3)]
    assert len(set(ids)) == 3
    wire.expect_ip(udp_ip(LOCAL, REMOTE2, 7, 9, b"x"))


def test_multicast_is_sent_with_ttl_one() -> None:
    """RFC 1112 §6.1: multicast datagrams default to TTL 1 (IP_MULTICAST_TTL)."""
    wire = Wire()
    wire.stack.add_route("224.0.0.0", 4, "tun0")
    ep = wire.udp(port=7)
    group = ipv4_addr("239.1.2.3")
    ep.sendto(b"m", (group, 9), 0.0)
    wire.at(0.0)
    wire.expect_ip(udp_ip(LOCAL, group, 7, 9, b"m", dont_fragment=True, ttl=1))
