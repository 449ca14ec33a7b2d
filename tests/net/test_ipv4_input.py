"""IPv4 input for a host (RFC 791 §3.1, RFC 1122 §3.2.1, §3.3.1.1, §3.3.6): what is
checked, what is silently discarded and counted, and what is delivered."""

from __future__ import annotations

import pytest

from refstack.wire.addresses import ipv4_addr
from refstack.wire.icmp import UNREACH_PROTOCOL, build_icmp_unreachable, quote_datagram
from refstack.wire.ipv4 import PROTO_ICMP, build_ipv4
from tests.net.peer import (
    LIMITED_BROADCAST,
    LOCAL,
    REMOTE,
    SUBNET_BROADCAST,
    Wire,
    udp_ip,
    with_checksum,
)

GOOD = udp_ip(REMOTE, LOCAL, 5000, 7, b"hello")


def test_good_datagram_is_delivered() -> None:
    """RFC 1122 §3.2.1: a well-formed datagram for our address reaches the transport
    (the baseline every drop test below departs from)."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(GOOD)
    assert ep.recvfrom() == (b"hello", (REMOTE, 5000))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 1}
    wire.expect_nothing()


def test_bad_header_checksum_is_dropped_and_counted() -> None:
    """RFC 1122 §3.2.1.2: a datagram whose header checksum fails MUST be silently
    discarded."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(with_checksum(GOOD, int.from_bytes(GOOD[10:12], "big") ^ 0x0101))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_bad_checksum": 1}
    assert not ep.rx
    wire.expect_nothing(until=5.0)


def _ihl4(datagram: bytes) -> bytes:
    return bytes((0x44,)) + datagram[1:]


def _total_length(datagram: bytes, value: int) -> bytes:
    return datagram[:2] + value.to_bytes(2, "big") + datagram[4:]


MALFORMED = {
    "empty": b"",
    "shorter_than_a_header": GOOD[:19],
    "version_6": bytes((0x65,)) + GOOD[1:],
    "ihl_below_5": _ihl4(GOOD),
    "ihl_past_the_buffer": bytes((0x4F,)) + GOOD[1:30],
    "total_length_longer_than_buffer": _total_length(GOOD, len(GOOD) + 1),
    "total_length_shorter_than_header": _total_length(GOOD, 19),
    "option_runs_past_header": bytes((0x46,)) + GOOD[1:20] + bytes((7, 9, 4, 0)) + GOOD[20:],
}


@pytest.mark.parametrize("frame", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_datagram_is_dropped_and_counted_never_raised(frame: bytes) -> None:
    """RFC 1122 §3.2.1.1-2 (and RFC 791 §3.1 lengths): a datagram with a bad version,
    IHL or Total Length is silently discarded, counted, and never raises."""
    wire = Wire()
    wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(frame)
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_malformed": 1}
    wire.expect_nothing()


MARTIANS = {
    "loopback": "127.0.0.1",
    "multicast": "224.0.0.5",
    "class_e": "240.0.0.1",
    "limited_broadcast": "255.255.255.255",
    "our_directed_broadcast": "192.168.0.255",
}


@pytest.mark.parametrize("source", MARTIANS.values(), ids=MARTIANS.keys())
def test_martian_source_is_dropped(source: str) -> None:
    """RFC 1122 §3.2.1.3: a host MUST silently discard a datagram whose source is
    not a valid host address: {127, *} (g) never appears outside a host, class D
    (RFC 1112 §7.2) and E, and the limited (c) and directed (e) broadcasts."""
    wire = Wire()
    ep = wire.udp()
    src = ipv4_addr(source)
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(src, LOCAL, 5000, 7, b"x"))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_martian_source": 1}
    assert not ep.rx
    wire.expect_nothing()


def test_zero_source_to_unicast_is_dropped() -> None:
    """RFC 1122 §3.2.1.3 (a): 0.0.0.0 may only be a source while a host learns its
    address, which it does by broadcast (BOOTP/DHCP); Linux accepts a zero source
    only towards 255.255.255.255 ("martian source" otherwise).  Answering it would
    send a reply to 0.0.0.0."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(bytes(4), LOCAL, 68, 7, b"x"))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_martian_source": 1}
    assert not ep.rx
    wire.expect_nothing()


def test_zero_source_to_limited_broadcast_is_accepted() -> None:
    """RFC 1122 §3.2.1.3 (a) and RFC 2131 §4.1: a client without an address sends
    from 0.0.0.0 to 255.255.255.255; the datagram is delivered."""
    wire = Wire()
    server = wire.udp(port=67)
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(bytes(4), LIMITED_BROADCAST, 68, 67, b"DISCOVER"))
    assert server.recvfrom() == (b"DISCOVER", (bytes(4), 68))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 1}
    wire.expect_nothing()


def test_loopback_destination_from_the_wire_is_dropped() -> None:
    """RFC 1122 §3.2.1.3 (g): 127/8 "MUST NOT appear outside a host"; a datagram
    from the wire addressed to 127.0.0.1 is discarded, not delivered to a wildcard
    socket (Linux: martian destination)."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, ipv4_addr("127.0.0.1"), 5000, 7, b"x"))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_martian_destination": 1}
    assert not ep.rx
    wire.expect_nothing()


def test_datagram_for_another_host_is_dropped() -> None:
    """RFC 1122 §3.3.1.1 / §3.2.1.3: a host does not forward; a datagram for an
    address that is not ours is silently discarded."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, ipv4_addr("192.168.0.7"), 5000, 7, b"x"))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_not_for_us": 1}
    assert not ep.rx
    wire.expect_nothing()


@pytest.mark.parametrize("dst", [LIMITED_BROADCAST, SUBNET_BROADCAST], ids=["limited", "directed"])
def test_broadcast_datagram_is_accepted(dst: bytes) -> None:
    """RFC 1122 §3.2.1.3: a host MUST recognise the broadcast forms in the
    destination of an incoming datagram: the limited broadcast (c) and the
    directed broadcast of its connected network (e)."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, dst, 5000, 7, b"all"))
    assert ep.recvfrom() == (b"all", (REMOTE, 5000))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 1}
    wire.expect_nothing()


def test_all_hosts_group_is_accepted_other_groups_are_not() -> None:
    """RFC 1112 §7.2: a host is always a member of 224.0.0.1 and discards datagrams
    for groups it has not joined."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, ipv4_addr("224.0.0.1"), 5000, 7, b"hosts", ttl=1))
    wire.inject(udp_ip(REMOTE, ipv4_addr("224.0.0.251"), 5000, 7, b"mdns", ttl=1))
    assert ep.recvfrom() == (b"hosts", (REMOTE, 5000))
    assert not ep.rx
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 2,
        "ip_rx_delivered": 1,
        "udp_rx_delivered": 1,
        "ip_rx_not_for_us": 1,
    }
    wire.expect_nothing()


def test_trailing_link_padding_is_ignored() -> None:
    """RFC 791 §3.1 Total Length: bytes after it (link padding, as Ethernet adds to
    reach 60 bytes) are not part of the datagram and do not reach the transport."""
    wire = Wire()
    ep = wire.udp()
    mark = wire.stack.counters.mark()
    wire.inject(GOOD + bytes(17))
    assert ep.recvfrom() == (b"hello", (REMOTE, 5000))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "udp_rx_delivered": 1}


def test_ttl_one_is_accepted() -> None:
    """RFC 1122 §3.2.1.7: a host does not discard a datagram that arrives with TTL 1
    (TTL is decremented only by forwarding)."""
    wire = Wire()
    ep = wire.udp()
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, b"one", ttl=1))
    assert ep.recvfrom() == (b"one", (REMOTE, 5000))


FRAGMENTS = {
    "first": {"more_fragments": True},
    "middle": {"more_fragments": True, "fragment_offset": 8},
    "last": {"fragment_offset": 1480},
}


@pytest.mark.parametrize("fields", FRAGMENTS.values(), ids=FRAGMENTS.keys())
def test_fragment_goes_to_the_kernel_path_for_reassembly(fields: dict[str, object]) -> None:
    """RFC 791 §3.2 / RFC 1122 §3.3.2: a lone fragment is counted as kernel-path traffic
    and queued for reassembly (refstack/net/reassembly.py, tests/net/test_reassembly.py),
    not delivered, and never draws an ICMP error at once (RFC 1122 §3.2.2: none about a
    non-initial fragment)."""
    wire = Wire()
    ep = wire.udp(port=7)
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 9, b"12345678", **fields))
    wire.inject(udp_ip(REMOTE, LOCAL, 5000, 7, b"12345678", ident=1, **fields))
    assert wire.stack.counters.since(mark) == {"rx_frames": 2, "kernel_path_rx_fragments": 2, "ReasmReqds": 2}
    assert not ep.rx
    wire.expect_nothing(until=29.0)


def test_unknown_protocol_draws_protocol_unreachable_quoting_the_datagram() -> None:
    """RFC 1122 §3.2.2.1 (and §3.2.1.6 via RFC 791): a datagram for a protocol the
    host lacks SHOULD draw Destination Unreachable code 2, quoting the IP header and
    the data (RFC 792, RFC 1812 §4.3.2.3), from the address it was sent to."""
    wire = Wire()
    offending = build_ipv4(REMOTE, LOCAL, 253, b"experimental payload")
    mark = wire.stack.counters.mark()
    wire.inject(offending)
    error = build_icmp_unreachable(UNREACH_PROTOCOL, quote_datagram(offending))
    wire.expect_ip(build_ipv4(LOCAL, REMOTE, PROTO_ICMP, error, tos=0xC0))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "ip_rx_unknown_protocol": 1,
        "ip_tx": 1,
        "icmp_tx_type3_code2": 1,
        "tx_frames": 1,
    }
    wire.expect_nothing()


def test_unknown_protocol_to_broadcast_draws_nothing() -> None:
    """RFC 1122 §3.2.2: no ICMP error about a datagram sent to a broadcast address."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(build_ipv4(REMOTE, SUBNET_BROADCAST, 253, b"x"))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "ip_rx_unknown_protocol": 1,
        "icmp_error_suppressed": 1,
    }
    wire.expect_nothing()
