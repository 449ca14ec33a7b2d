"""ICMP for a host (RFC 792, RFC 1122 §3.2.2, RFC 1191, RFC 1812 §4.3.2.8): echo,
the errors a host sends and the rules that silence them, rate limiting, and
errors received (path MTU)."""

from __future__ import annotations

import pytest

from refstack.profile import Profile
from refstack.wire.addresses import ipv4_addr
from refstack.wire.icmp import (
    DEST_UNREACHABLE,
    UNREACH_FRAG_NEEDED,
    UNREACH_PORT,
    build_icmp,
    build_icmp_echo,
    build_icmp_unreachable,
    quote_datagram,
)
from refstack.wire.ipv4 import PROTO_ICMP, Ipv4Packet, build_ipv4
from tests.net.peer import (
    LIMITED_BROADCAST,
    LOCAL,
    REMOTE,
    REMOTE2,
    SUBNET_BROADCAST,
    Wire,
    icmp_of,
    udp_ip,
)

ROUTER_FAR = ipv4_addr("198.51.100.1")  # a router on the path that reports errors
ALL_HOSTS = ipv4_addr("224.0.0.1")


def echo(src: bytes = REMOTE, dst: bytes = LOCAL, *, data: bytes = b"abcdefgh", **ip: object) -> bytes:
    return build_ipv4(src, dst, PROTO_ICMP, build_icmp_echo(0x1234, 7, data), **ip)  # type: ignore[arg-type]


def port_unreachable(offending: bytes) -> bytes:
    """The error the stack owes for ``offending`` (TOS 0xC0 as Linux, no DF)."""
    ip = Ipv4Packet(offending)
    msg = build_icmp_unreachable(UNREACH_PORT, quote_datagram(offending))
    return build_ipv4(ip.dst, ip.src, PROTO_ICMP, msg, tos=0xC0)


# --- echo ------------------------------------------------------------------------------
def test_echo_request_draws_echo_reply() -> None:
    """RFC 1122 §3.2.2.6 / RFC 792: an echo request draws an echo reply with the same
    identifier, sequence number and data, source and destination swapped."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(echo(data=b"ping payload"))
    reply = build_icmp_echo(0x1234, 7, b"ping payload", reply=True)
    wire.expect_ip(build_ipv4(LOCAL, REMOTE, PROTO_ICMP, reply))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "icmp_tx_echo_reply": 1,
        "ip_tx": 1,
        "tx_frames": 1,
    }
    wire.expect_nothing()


def test_echo_reply_keeps_the_request_tos() -> None:
    """RFC 1349 §5.1 (updating RFC 1122 §3.2.2.6): an echo reply SHOULD carry the TOS
    of the request (Linux copies it); the ECN bits are not copied (RFC 3168 §5:
    ICMP is not an ECN-capable transport)."""
    wire = Wire()
    wire.inject(echo(tos=0x28 | 0x02))
    reply = build_icmp_echo(0x1234, 7, b"abcdefgh", reply=True)
    wire.expect_ip(build_ipv4(LOCAL, REMOTE, PROTO_ICMP, reply, tos=0x28))


@pytest.mark.parametrize(
    "dst", [SUBNET_BROADCAST, LIMITED_BROADCAST, ALL_HOSTS], ids=["directed", "limited", "all_hosts"]
)
def test_echo_to_broadcast_or_multicast_is_ignored(dst: bytes) -> None:
    """RFC 1122 §3.2.2.6: an echo to a broadcast or multicast address MAY be
    silently discarded; Linux does (icmp_echo_ignore_broadcasts=1)."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(echo(dst=dst))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "icmp_echo_ignored": 1,
    }
    wire.expect_nothing()


def test_icmp_echo_ignore_all_silences_echo() -> None:
    """Linux icmp_echo_ignore_all=1 (a departure from RFC 1122 §3.2.2.6 MUST, offered
    as a profile knob): no reply at all."""
    wire = Wire(Profile(icmp_echo_ignore_all=True))
    mark = wire.stack.counters.mark()
    wire.inject(echo())
    assert wire.stack.counters.since(mark)["icmp_echo_ignored"] == 1
    wire.expect_nothing()


def test_echo_from_an_unroutable_source_is_dropped_not_raised() -> None:
    """RFC 1122 §3.2.2.6 / §3.3.1: an echo reply with no route back cannot be sent;
    it is dropped and counted, and input never raises to the driver (Linux drops
    it the same way, OutNoRoutes)."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(echo(src=ipv4_addr("203.0.113.9")))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "ip_tx_no_route": 1,
        "icmp_tx_no_route": 1,
    }
    wire.expect_nothing()


# --- errors sent -----------------------------------------------------------------------
def test_udp_to_closed_port_draws_port_unreachable_quoting_the_datagram() -> None:
    """RFC 1122 §4.1.3.1: a UDP datagram for a port with no socket SHOULD draw port
    unreachable; the quote is the IP header and at least 8 data bytes (RFC 792),
    here the whole short datagram (RFC 1812 §4.3.2.3)."""
    wire = Wire()
    offending = udp_ip(REMOTE, LOCAL, 5000, 9, b"knock knock")
    mark = wire.stack.counters.mark()
    wire.inject(offending)
    ip = wire.expect_ip(port_unreachable(offending))
    assert icmp_of(ip).body == offending
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "udp_rx_no_port": 1,
        "icmp_tx_type3_code3": 1,
        "ip_tx": 1,
        "tx_frames": 1,
    }
    wire.expect_nothing()


def test_port_unreachable_quote_is_cut_to_576_bytes() -> None:
    """RFC 1812 §4.3.2.3 (and Linux icmp_send): quote as much of the offending
    datagram as keeps the error within 576 bytes: 548 of a 1028-byte datagram."""
    wire = Wire()
    offending = udp_ip(REMOTE, LOCAL, 5000, 9, bytes(range(250)) * 4)
    wire.inject(offending)
    ip = wire.expect_ip(port_unreachable(offending))
    assert ip.total_length == 576
    assert icmp_of(ip).body == offending[:548]


@pytest.mark.parametrize(
    "dst", [SUBNET_BROADCAST, LIMITED_BROADCAST, ALL_HOSTS], ids=["directed", "limited", "all_hosts"]
)
def test_no_port_unreachable_for_broadcast_or_multicast(dst: bytes) -> None:
    """RFC 1122 §3.2.2 / §4.1.3.1 and RFC 1112 §7.2: no ICMP error about a datagram
    sent to a broadcast or multicast address."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(udp_ip(REMOTE, dst, 5000, 9, b"anyone?"))
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "udp_rx_no_port": 1,
        "icmp_error_suppressed": 1,
    }
    wire.expect_nothing()


def _icmp_error_datagram() -> bytes:
    quoted = udp_ip(REMOTE2, REMOTE, 1, 2, b"12345678")
    return build_ipv4(REMOTE, LOCAL, PROTO_ICMP, build_icmp_unreachable(UNREACH_PORT, quoted))


FORBIDDEN = {
    "about_an_icmp_error": _icmp_error_datagram(),
    "about_an_unknown_icmp_type": build_ipv4(REMOTE, LOCAL, PROTO_ICMP, build_icmp(99, 0)),
    "about_a_non_initial_fragment": udp_ip(REMOTE, LOCAL, 5000, 9, b"x" * 16, fragment_offset=8),
    "to_a_broadcast": udp_ip(REMOTE, SUBNET_BROADCAST, 5000, 9, b"x"),
    "to_a_multicast": udp_ip(REMOTE, ipv4_addr("239.1.1.1"), 5000, 9, b"x"),
    "from_zero": udp_ip(bytes(4), LOCAL, 5000, 9, b"x"),
    "from_a_multicast": udp_ip(ipv4_addr("224.0.0.9"), LOCAL, 5000, 9, b"x"),
    "from_a_broadcast": udp_ip(LIMITED_BROADCAST, LOCAL, 5000, 9, b"x"),
}


@pytest.mark.parametrize("offending", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_icmp_errors_are_never_sent_about(offending: bytes) -> None:
    """RFC 1122 §3.2.2: an ICMP error MUST NOT be sent about an ICMP error, a
    datagram to a broadcast or multicast address, a non-initial fragment, or one
    whose source does not name a single host (asked of the ICMP layer directly:
    most of these never get past IP input)."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    assert not wire.stack.icmp.send_error(DEST_UNREACHABLE, UNREACH_PORT, Ipv4Packet(offending), 0.0)
    assert wire.stack.counters.since(mark) == {"icmp_error_suppressed": 1}
    wire.expect_nothing()


def test_errors_about_an_icmp_query_are_allowed() -> None:
    """RFC 1122 §3.2.2: the ban covers ICMP *error* messages; an echo is a query and
    may be reported on."""
    wire = Wire()
    assert wire.stack.icmp.send_error(DEST_UNREACHABLE, 1, Ipv4Packet(echo()), 0.0)
    wire.at(0.0)
    assert icmp_of(wire.expect_ip()).code == 1


def test_loopback_port_unreachable_reaches_a_connected_socket() -> None:
    """RFC 1122 §4.1.3.3 over the loopback: 127/8 names this host on ``lo`` (§3.2.1.3
    (g) bans it only *outside* a host), so UDP to a closed 127.0.0.1 port draws port
    unreachable and a connected sender sees ECONNREFUSED, as on Linux."""
    wire = Wire()
    ep = wire.stack.udp.endpoint()
    ep.connect(ipv4_addr("127.0.0.1"), 9999, 0.0)
    ep.sendto(b"anyone?", None, 0.0)
    wire.at(0.0)
    with pytest.raises(ConnectionRefusedError):
        ep.recvfrom()
    wire.expect_nothing()


# --- rate limiting ---------------------------------------------------------------------
def test_errors_are_rate_limited_burst_of_six_then_one_per_second() -> None:
    """RFC 1812 §4.3.2.8 / RFC 1122 §3.2.2 (MAY limit), as Linux's per-destination
    token bucket (inet_peer_xrlim_allow): icmp_ratelimit 1 s per token, a burst of
    XRLIM_BURST_FACTOR 6; tokens accrue continuously."""
    wire = Wire()
    sent: list[float] = []
    for t in (0.0,) * 8 + (0.5, 1.0, 1.5, 2.0, 2.25, 5.0, 5.0, 5.0, 5.0):
        wire.at(t)
        wire.inject(udp_ip(REMOTE, LOCAL, 5000, 9, b"x"))
        while wire.out:
            sent.append(wire.out.popleft()[0])
    assert sent == [0.0] * 6 + [1.0, 2.0, 5.0, 5.0, 5.0]
    assert wire.stack.counters["icmp_error_ratelimited"] == 6


def test_rate_limit_is_per_destination() -> None:
    """Linux keys the bucket on the error's destination (inet_peer): exhausting it for
    one sender leaves another sender's errors alone."""
    wire = Wire()
    for _ in range(7):
        wire.inject(udp_ip(REMOTE, LOCAL, 5000, 9, b"x"))
    assert len(wire.out) == 6
    wire.out.clear()
    wire.inject(udp_ip(REMOTE2, LOCAL, 5000, 9, b"x"))
    assert wire.expect_ip().dst == REMOTE2


def test_echo_replies_are_not_rate_limited() -> None:
    """Linux icmp_ratemask 6168 covers types 3, 4, 11 and 12 only: echo replies
    (type 0) are never limited."""
    wire = Wire()
    for _ in range(10):
        wire.inject(echo())
    assert len(wire.out) == 10


def test_icmp_ratelimit_zero_disables_limiting() -> None:
    """Linux icmp_ratelimit=0: "0 to disable any limiting"."""
    wire = Wire(Profile(icmp_ratelimit=0.0))
    for _ in range(10):
        wire.inject(udp_ip(REMOTE, LOCAL, 5000, 9, b"x"))
    assert len(wire.out) == 10


# --- errors received: path MTU (RFC 1191) ----------------------------------------------
def frag_needed(mtu: int, *, length: int = 1472, checksum_value: int | None = None) -> bytes:
    """A router's frag-needed about a DF datagram we sent (LOCAL:7 -> REMOTE:9)."""
    quoted = quote_datagram(udp_ip(LOCAL, REMOTE, 7, 9, bytes(length), dont_fragment=True))
    if checksum_value is None:
        msg = build_icmp_unreachable(UNREACH_FRAG_NEEDED, quoted, next_hop_mtu=mtu)
    else:
        msg = build_icmp(
            DEST_UNREACHABLE,
            UNREACH_FRAG_NEEDED,
            mtu.to_bytes(4, "big"),
            quoted,
            checksum_value=checksum_value,
        )
    return build_ipv4(ROUTER_FAR, LOCAL, PROTO_ICMP, msg)


def test_frag_needed_lowers_the_path_mtu() -> None:
    """RFC 1191 §6.1: a host MUST reduce its PMTU estimate to the Next-Hop MTU of a
    frag-needed message; later datagrams are fragmented to fit it."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(frag_needed(1280))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1280
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "ip_pmtu_lowered": 1,
    }
    ep = wire.udp(port=7)
    ep.sendto(bytes(1400), (REMOTE, 9), 0.0)
    wire.at(0.0)
    sizes = [
        (f.total_length, f.more_fragments, f.dont_fragment) for f in (wire.expect_ip(), wire.expect_ip())
    ]
    assert sizes == [(1276, True, False), (20 + 1408 - 1256, False, False)]


def test_frag_needed_never_lowers_below_min_pmtu() -> None:
    """RFC 1191 §3 allows 68, but Linux clamps at route/min_pmtu 552 (a reported
    300 becomes 552) so that a forged message cannot shrink datagrams to nothing."""
    wire = Wire()
    wire.inject(frag_needed(300))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 552


def test_frag_needed_never_raises_the_path_mtu() -> None:
    """RFC 1191 §6.1: a host MUST NOT increase its estimate in response to a
    frag-needed message (neither above a lower learned value nor above the MTU of
    the interface)."""
    wire = Wire()
    wire.inject(frag_needed(1280))
    wire.inject(frag_needed(1400))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1280
    other = Wire()
    other.inject(frag_needed(9000))
    assert other.stack.ip.path_mtu(REMOTE, 0.0) == 1500
    assert other.stack.counters["ip_pmtu_lowered"] == 0


def test_learned_path_mtu_expires_after_mtu_expires() -> None:
    """RFC 1191 §6.3: a reduced PMTU estimate is aged out (Linux route/mtu_expires,
    600 s) so that a larger path MTU is rediscovered."""
    wire = Wire()
    wire.inject(frag_needed(1280))
    assert wire.stack.ip.path_mtu(REMOTE, 599.5) == 1280
    assert wire.stack.ip.path_mtu(REMOTE, 600.0) == 1500


def test_frag_needed_from_an_old_router_falls_to_min_pmtu_as_linux() -> None:
    """A Next-Hop MTU of 0 (a pre-1191 router): Linux takes its floor,
    net.ipv4.route.min_pmtu (552), which RFC 1191 §5 allows."""
    wire = Wire()
    wire.inject(frag_needed(0))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 552


def test_frag_needed_from_an_old_router_uses_the_plateau_below_when_asked() -> None:
    """RFC 1191 §5/§7 with the profile's plateau guess: take the plateau below the
    quoted Total Length (1500 -> 1492)."""
    wire = Wire(Profile().replace(pmtu_plateau_guess=True))
    wire.inject(frag_needed(0))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1492


def test_icmp_error_with_bad_checksum_is_ignored() -> None:
    """RFC 1122 §3.2.2 / RFC 792: an ICMP message whose checksum fails is discarded
    (Linux: InCsumErrors); it must not move the path MTU."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(frag_needed(1280, checksum_value=0x1234))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1500
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx_bad_checksum": 1,
    }


def test_frag_needed_about_a_datagram_we_did_not_send_is_ignored() -> None:
    """RFC 5927 §4.1 (and Linux's socket lookup): an error quoting a datagram whose
    source is not ours says nothing about our paths."""
    wire = Wire()
    quoted = quote_datagram(udp_ip(REMOTE2, REMOTE, 7, 9, bytes(1472), dont_fragment=True))
    msg = build_icmp_unreachable(UNREACH_FRAG_NEEDED, quoted, next_hop_mtu=1280)
    mark = wire.stack.counters.mark()
    wire.inject(build_ipv4(ROUTER_FAR, LOCAL, PROTO_ICMP, msg))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1500
    assert wire.stack.counters.since(mark) == {
        "rx_frames": 1,
        "ip_rx_delivered": 1,
        "icmp_rx": 1,
        "icmp_rx_error_not_ours": 1,
    }


def test_ip_no_pmtu_disc_ignores_frag_needed() -> None:
    """Linux ip_no_pmtu_disc=1: path MTU discovery is off; frag-needed is ignored."""
    wire = Wire(Profile(ip_no_pmtu_disc=True))
    wire.inject(frag_needed(1280))
    assert wire.stack.ip.path_mtu(REMOTE, 0.0) == 1500


def test_unsolicited_echo_reply_is_consumed_quietly() -> None:
    """RFC 792 / RFC 1122 §3.2.2: an echo reply nobody asked for (no ping socket
    yet) is counted and dropped: no error, no reply."""
    wire = Wire()
    mark = wire.stack.counters.mark()
    wire.inject(build_ipv4(REMOTE, LOCAL, PROTO_ICMP, build_icmp_echo(1, 1, b"", reply=True)))
    assert wire.stack.counters.since(mark) == {"rx_frames": 1, "ip_rx_delivered": 1, "icmp_rx": 1}
    wire.expect_nothing()
