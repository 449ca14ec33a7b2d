"""ICMPv4 (RFC 792, RFC 1191 §4, RFC 1812 §4.3.2.3): golden bytes, round trips,
scapy cross-checks both ways, traps and a robustness check."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror
from scapy.packet import Raw
from scapy.utils import checksum as scapy_checksum

from refstack.wire.addresses import ipv4_addr
from refstack.wire.errors import WireError
from refstack.wire.icmp import (
    DEST_UNREACHABLE,
    ECHO_REPLY,
    ECHO_REQUEST,
    PARAMETER_PROBLEM,
    REDIRECT,
    REDIRECT_HOST,
    SOURCE_QUENCH,
    TIME_EXCEEDED,
    TIME_EXCEEDED_TTL,
    TIMESTAMP,
    UNREACH_FRAG_NEEDED,
    UNREACH_PORT,
    IcmpMessage,
    build_icmp,
    build_icmp_echo,
    build_icmp_parameter_problem,
    build_icmp_redirect,
    build_icmp_time_exceeded,
    build_icmp_unreachable,
    quote_datagram,
)
from refstack.wire.ipv4 import ROUTER_ALERT, Ipv4Packet, build_ipv4
from tests.wire.reference import word_loop_checksum

# --- golden bytes (checksums verified below by the independent word loop) -------------

# `ping 198.51.100.7` from iputils on x86-64: id 0x0b5d, seq 1, 56 data bytes = a
# 16-byte struct timeval followed by the pattern 0x10..0x37.
PING_DATA = bytes.fromhex("8fd4456700000000e0a10d0000000000") + bytes(range(0x10, 0x38))
GOLDEN_ECHO = bytes.fromhex("08006af10b5d0001") + PING_DATA

# A router's "fragmentation needed", next-hop MTU 1280 (RFC 1191 §4), quoting a
# 1500-byte DF TCP segment 192.168.1.10:50000 > 198.51.100.7:443 seq 0x12345678
# (header + 64 bits, as RFC 792 asks).
QUOTED_TCP_HDR = bytes.fromhex("450005dc1a2b400040062f04c0a8010ac6336407")
GOLDEN_FRAG_NEEDED = bytes.fromhex("0304ca4300000500") + QUOTED_TCP_HDR + bytes.fromhex("c35001bb12345678")

# A router's TTL-exceeded answer to a traceroute UDP probe (TTL 1, port 33434).
QUOTED_UDP_PROBE_HDR = bytes.fromhex("4500003c5a4f000001118da0c0a8010a08080808")
GOLDEN_TIME_EXCEEDED = (
    bytes.fromhex("0b00d08a00000000") + QUOTED_UDP_PROBE_HDR + bytes.fromhex("a1b2829a00280000")
)

# Port unreachable for a DNS query 192.0.2.10:40000 > 192.0.2.53:53.
QUOTED_DNS_HDR = bytes.fromhex("45000038000100004011f674c000020ac0000235")
GOLDEN_PORT_UNREACH = bytes.fromhex("03034e2f00000000") + QUOTED_DNS_HDR + bytes.fromhex("9c40003500241234")


@pytest.mark.parametrize(
    "golden", [GOLDEN_ECHO, GOLDEN_FRAG_NEEDED, GOLDEN_TIME_EXCEEDED, GOLDEN_PORT_UNREACH]
)
def test_golden_checksums_are_right(golden: bytes) -> None:
    # Independent check (RFC 1071 word loop): a valid message sums to zero.
    assert word_loop_checksum(golden) == 0
    assert IcmpMessage(golden).checksum_ok()


def test_golden_echo_request() -> None:
    m = IcmpMessage(GOLDEN_ECHO)
    assert (m.type, m.code, m.checksum) == (ECHO_REQUEST, 0, 0x6AF1)
    assert m.rest == bytes.fromhex("0b5d0001")
    assert (m.ident, m.sequence) == (0x0B5D, 1)
    assert m.body == PING_DATA and len(m.body) == 56
    assert not m.is_error and m.quoted is None
    assert bytes(m) == GOLDEN_ECHO
    assert "echo-request" in repr(m)
    assert build_icmp_echo(0x0B5D, 1, PING_DATA) == GOLDEN_ECHO


def test_golden_echo_reply_is_the_request_with_type_0() -> None:
    reply = build_icmp_echo(0x0B5D, 1, PING_DATA, reply=True)
    m = IcmpMessage(reply)
    assert (m.type, m.ident, m.sequence, m.body) == (ECHO_REPLY, 0x0B5D, 1, PING_DATA)
    # Type 8 -> 0 lowers the first word by 0x0800, so the checksum rises by 0x0800.
    assert m.checksum == 0x6AF1 + 0x0800 and m.checksum_ok()


def test_golden_frag_needed() -> None:
    m = IcmpMessage(GOLDEN_FRAG_NEEDED)
    assert (m.type, m.code, m.checksum) == (DEST_UNREACHABLE, UNREACH_FRAG_NEEDED, 0xCA43)
    assert m.rest == b"\x00\x00\x05\x00" and m.next_hop_mtu == 1280
    assert m.is_error
    q = m.quoted
    assert q is not None and q.truncated
    assert (q.src, q.dst, q.protocol, q.total_length) == (
        ipv4_addr("192.168.1.10"),
        ipv4_addr("198.51.100.7"),
        6,
        1500,
    )
    assert q.dont_fragment and q.checksum_ok()
    assert q.payload == bytes.fromhex("c35001bb12345678")
    assert m.body == QUOTED_TCP_HDR + q.payload
    assert "mtu=1280" in repr(m)
    assert build_icmp_unreachable(UNREACH_FRAG_NEEDED, m.body, next_hop_mtu=1280) == GOLDEN_FRAG_NEEDED


def test_golden_time_exceeded() -> None:
    m = IcmpMessage(GOLDEN_TIME_EXCEEDED)
    assert (m.type, m.code, m.checksum, m.rest) == (TIME_EXCEEDED, TIME_EXCEEDED_TTL, 0xD08A, bytes(4))
    q = m.quoted
    assert q is not None and (q.ttl, q.protocol, q.dst) == (1, 17, ipv4_addr("8.8.8.8"))
    assert q.payload[2:4] == (33434).to_bytes(2, "big")
    assert build_icmp_time_exceeded(TIME_EXCEEDED_TTL, m.body) == GOLDEN_TIME_EXCEEDED


def test_golden_port_unreachable() -> None:
    m = IcmpMessage(GOLDEN_PORT_UNREACH)
    assert (m.type, m.code, m.checksum, m.next_hop_mtu) == (DEST_UNREACHABLE, UNREACH_PORT, 0x4E2F, 0)
    q = m.quoted
    assert q is not None and q.truncated and q.total_length == 56  # header + 8 of 36 UDP bytes
    assert (q.src, q.dst) == (ipv4_addr("192.0.2.10"), ipv4_addr("192.0.2.53"))
    assert build_icmp_unreachable(UNREACH_PORT, m.body) == GOLDEN_PORT_UNREACH


def test_parameter_problem_and_redirect_getters() -> None:
    quote = QUOTED_TCP_HDR + bytes(8)
    m = IcmpMessage(build_icmp_parameter_problem(9, quote))
    assert (m.type, m.code, m.pointer, m.rest) == (PARAMETER_PROBLEM, 0, 9, b"\x09\x00\x00\x00")
    assert m.is_error and m.checksum_ok() and "ptr=9" in repr(m)
    gw = ipv4_addr("192.168.1.254")
    r = IcmpMessage(build_icmp_redirect(REDIRECT_HOST, gw, quote))
    assert (r.type, r.code, r.gateway) == (REDIRECT, REDIRECT_HOST, gw)
    assert r.is_error and r.checksum_ok() and "gw=192.168.1.254" in repr(r)
    sq = IcmpMessage(build_icmp(SOURCE_QUENCH, 0, body=quote))
    assert sq.is_error and sq.quoted is not None


def test_timestamp_is_not_an_error_and_body_is_free() -> None:
    m = IcmpMessage(build_icmp(TIMESTAMP, 0, b"\x12\x34\x00\x07", bytes(12)))
    assert (m.ident, m.sequence, m.is_error, m.quoted) == (0x1234, 7, False, None)


def test_bad_checksum_detected_and_override_kept() -> None:
    bad = build_icmp(ECHO_REQUEST, 0, checksum_value=0xBEEF)
    m = IcmpMessage(bad)
    assert m.checksum == 0xBEEF and not m.checksum_ok()
    flipped = bytearray(GOLDEN_ECHO)
    flipped[-1] ^= 1
    assert not IcmpMessage(flipped).checksum_ok()


def test_memoryview_and_bytearray_accepted() -> None:
    assert bytes(IcmpMessage(memoryview(GOLDEN_FRAG_NEEDED))) == GOLDEN_FRAG_NEEDED
    assert bytes(IcmpMessage(bytearray(GOLDEN_ECHO))) == GOLDEN_ECHO


# --- quote_datagram (RFC 1812 §4.3.2.3) ----------------------------------------------

SRC = ipv4_addr("192.0.2.1")
DST = ipv4_addr("198.51.100.7")


def test_quote_full_size_segment_to_576() -> None:
    pkt = build_ipv4(SRC, DST, 6, bytes(range(256)) * 6, dont_fragment=True)
    assert len(pkt) == 1556
    quote = quote_datagram(pkt)
    assert quote == pkt[: 576 - 20 - 8] and len(quote) == 548
    assert len(build_icmp_unreachable(UNREACH_FRAG_NEEDED, quote, next_hop_mtu=1280)) + 20 == 576


def test_quote_never_below_header_plus_8() -> None:
    pkt = build_ipv4(SRC, DST, 17, bytes(100), options=[ROUTER_ALERT])
    assert quote_datagram(pkt, 0) == pkt[: 24 + 8]
    assert quote_datagram(pkt, 28 + 20) == pkt[: 24 + 8]
    assert quote_datagram(pkt, 28 + 40) == pkt[:40]


def test_quote_short_datagram_whole_and_padding_dropped() -> None:
    pkt = build_ipv4(SRC, DST, 17, b"abcd")
    assert quote_datagram(pkt + bytes(30)) == pkt
    assert quote_datagram(pkt, 1500) == pkt


def test_quote_rejects_what_is_not_ipv4() -> None:
    with pytest.raises(WireError) as e:
        quote_datagram(b"\x60" + bytes(39))
    assert (e.value.field, e.value.offset) == ("ipv4.version", 0)
    with pytest.raises(WireError) as e:
        quote_datagram(build_ipv4(SRC, DST, 17, bytes(8)), -1)
    assert (e.value.field, e.value.offset) == ("icmp.max_icmp_len", None)


# --- traps -----------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(8))
def test_trap_shorter_than_8(n: int) -> None:
    with pytest.raises(WireError) as e:
        IcmpMessage(GOLDEN_ECHO[:n])
    assert (e.value.field, e.value.offset) == ("icmp", 0)


def _error_with_body(body: bytes) -> bytes:
    return build_icmp(DEST_UNREACHABLE, UNREACH_PORT, body=body)


@pytest.mark.parametrize("n", [0, 1, 19])
def test_trap_quoted_header_shorter_than_20(n: int) -> None:
    with pytest.raises(WireError) as e:
        IcmpMessage(_error_with_body(QUOTED_DNS_HDR[:n]))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8)
    assert "ipv4" in e.value.reason


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_trap_quoted_ihl_below_5(ihl: int) -> None:
    hdr = bytes((0x40 | ihl,)) + QUOTED_DNS_HDR[1:]
    with pytest.raises(WireError) as e:
        IcmpMessage(_error_with_body(hdr + bytes(8)))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8)
    assert "ipv4.ihl" in e.value.reason


def test_trap_quoted_version_not_4() -> None:
    with pytest.raises(WireError) as e:
        IcmpMessage(build_icmp(TIME_EXCEEDED, 0, body=b"\x65" + QUOTED_DNS_HDR[1:] + bytes(8)))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8)


def test_trap_quoted_ihl_past_body() -> None:
    with pytest.raises(WireError) as e:
        IcmpMessage(_error_with_body(b"\x4f" + QUOTED_DNS_HDR[1:] + bytes(8)))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8)


@pytest.mark.parametrize("data_len", [0, 1, 7])
def test_trap_quoted_fewer_than_8_data_bytes(data_len: int) -> None:
    with pytest.raises(WireError) as e:
        IcmpMessage(_error_with_body(QUOTED_DNS_HDR + bytes(data_len)))
    # The offset is where the original data starts: ICMP header + quoted IPv4 header.
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8 + 20)


def test_trap_quoted_fewer_than_8_data_bytes_after_options() -> None:
    pkt = build_ipv4(SRC, DST, 17, bytes(8), options=[ROUTER_ALERT])
    with pytest.raises(WireError) as e:
        IcmpMessage(build_icmp(PARAMETER_PROBLEM, 0, b"\x14\0\0\0", pkt[:31]))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8 + 24)


def test_quoted_total_length_below_header_is_accepted_like_linux() -> None:
    # Linux checks only IHL and the 8 data bytes of a quote (icmp_socket_deliver), so a
    # quoted Total Length smaller than the header does not make the error malformed.
    hdr = QUOTED_DNS_HDR[:2] + b"\x00\x13" + QUOTED_DNS_HDR[4:]
    m = IcmpMessage(_error_with_body(hdr + bytes(8)))
    assert m.quoted is not None and m.quoted.total_length == 0x13 and m.quoted.payload == bytes(8)


def test_trap_quoted_option_runs_past_header() -> None:
    hdr = b"\x46" + QUOTED_DNS_HDR[1:] + b"\x94\x08\x00\x00"
    with pytest.raises(WireError) as e:
        IcmpMessage(_error_with_body(hdr + bytes(8)))
    assert (e.value.field, e.value.offset) == ("icmp.quoted", 8 + 21)


def test_non_error_types_do_not_check_the_body() -> None:
    for t in (ECHO_REQUEST, ECHO_REPLY, TIMESTAMP, 42):
        m = IcmpMessage(build_icmp(t, 0, body=b"\x00"))
        assert m.quoted is None and m.body == b"\x00"


def test_builders_reject_impossible_values() -> None:
    cases: list[tuple[str, Any]] = [
        ("icmp.ident", lambda: build_icmp_echo(0x10000, 0)),
        ("icmp.sequence", lambda: build_icmp_echo(0, -1)),
        ("icmp.type", lambda: build_icmp(256, 0)),
        ("icmp.code", lambda: build_icmp(0, 256)),
        ("icmp.rest", lambda: build_icmp(0, 0, b"\0\0\0")),
        ("icmp.checksum", lambda: build_icmp(0, 0, checksum_value=0x10000)),
        ("icmp.next_hop_mtu", lambda: build_icmp_unreachable(4, b"", next_hop_mtu=0x10000)),
        ("icmp.next_hop_mtu", lambda: build_icmp_unreachable(UNREACH_PORT, b"", next_hop_mtu=1280)),
        ("icmp.pointer", lambda: build_icmp_parameter_problem(256, b"")),
        ("icmp.gateway", lambda: build_icmp_redirect(0, b"\0\0\0", b"")),
    ]
    for field, call in cases:
        with pytest.raises(WireError) as e:
            call()
        assert (e.value.field, e.value.offset) == (field, None)


# --- hypothesis round trips -----------------------------------------------------------

u16 = st.integers(0, 0xFFFF)
addrs = st.binary(min_size=4, max_size=4)


@st.composite
def offending_datagrams(draw: st.DrawFn) -> bytes:
    """An IPv4 datagram that an error could be about (at least 8 bytes of payload)."""
    return build_ipv4(
        draw(addrs),
        draw(addrs),
        draw(st.sampled_from([1, 6, 17, 2, 47])),
        draw(st.binary(min_size=8, max_size=120)),
        ttl=draw(st.integers(0, 255)),
        ident=draw(u16),
        dont_fragment=draw(st.booleans()),
        options=draw(st.sampled_from([(), (ROUTER_ALERT,)])),
    )


quotes = st.builds(quote_datagram, offending_datagrams(), st.sampled_from([0, 68, 100, 576]))


@given(ident=u16, seq=u16, data=st.binary(max_size=100), reply=st.booleans())
def test_echo_round_trip(ident: int, seq: int, data: bytes, reply: bool) -> None:
    raw = build_icmp_echo(ident, seq, data, reply=reply)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.ident, m.sequence, m.body) == (0 if reply else 8, 0, ident, seq, data)
    assert m.checksum_ok() and word_loop_checksum(raw) == 0
    assert build_icmp_echo(m.ident, m.sequence, m.body, reply=m.type == ECHO_REPLY) == raw


@given(code=st.integers(0, 15), mtu=st.integers(68, 0xFFFF), quote=quotes)
def test_unreachable_round_trip(code: int, mtu: int, quote: bytes) -> None:
    mtu = mtu if code == UNREACH_FRAG_NEEDED else 0
    raw = build_icmp_unreachable(code, quote, next_hop_mtu=mtu)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.next_hop_mtu, m.body, m.is_error) == (3, code, mtu, quote, True)
    assert m.quoted is not None and m.quoted.header + m.quoted.payload == quote
    assert m.checksum_ok()
    assert build_icmp_unreachable(m.code, m.body, next_hop_mtu=m.next_hop_mtu) == raw


@given(code=st.integers(0, 1), quote=quotes)
def test_time_exceeded_round_trip(code: int, quote: bytes) -> None:
    raw = build_icmp_time_exceeded(code, quote)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.rest, m.body) == (11, code, bytes(4), quote)
    assert m.checksum_ok() and build_icmp_time_exceeded(m.code, m.body) == raw


@given(pointer=st.integers(0, 255), quote=quotes)
def test_parameter_problem_round_trip(pointer: int, quote: bytes) -> None:
    raw = build_icmp_parameter_problem(pointer, quote)
    m = IcmpMessage(raw)
    assert (m.type, m.pointer, m.body) == (12, pointer, quote)
    assert build_icmp_parameter_problem(m.pointer, m.body, code=m.code) == raw


@given(
    t=st.integers(0, 255).filter(lambda t: t not in (3, 4, 5, 11, 12)),
    code=st.integers(0, 255),
    rest=st.binary(min_size=4, max_size=4),
    body=st.binary(max_size=64),
)
def test_generic_round_trip(t: int, code: int, rest: bytes, body: bytes) -> None:
    raw = build_icmp(t, code, rest, body)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.rest, m.body) == (t, code, rest, body)
    assert m.checksum_ok() and build_icmp(m.type, m.code, m.rest, m.body) == raw


@given(quote=offending_datagrams(), limit=st.integers(0, 2000))
def test_quote_datagram_bounds(quote: bytes, limit: int) -> None:
    q = quote_datagram(quote, limit)
    hlen = Ipv4Packet(quote).header_length
    assert quote.startswith(q)
    assert len(q) >= min(len(quote), hlen + 8)
    assert 20 + 8 + len(q) <= limit or len(q) == hlen + 8
    assert len(q) == len(quote) or 20 + 8 + len(q) == limit or len(q) == hlen + 8


# --- scapy cross-checks ---------------------------------------------------------------


def _dotted(addr: bytes) -> str:
    return ".".join(str(b) for b in addr)


def _scapy_checksum(raw: bytes) -> int:
    """scapy's checksum routine over the message with the checksum field zeroed.

    (Not a scapy rebuild: once scapy.layers.igmp is loaded, scapy 2.8 adds a Router
    Alert option to any IP layer it dissects IGMP under, so a quoted IGMP datagram
    would no longer rebuild to the bytes it was dissected from.)
    """
    return int(scapy_checksum(raw[:2] + b"\0\0" + raw[4:]))


@given(ident=u16, seq=u16, data=st.binary(max_size=64), reply=st.booleans())
def test_echo_ours_parsed_by_scapy(ident: int, seq: int, data: bytes, reply: bool) -> None:
    raw = build_icmp_echo(ident, seq, data, reply=reply)
    s = ICMP(raw)
    assert (s.type, s.code, s.id, s.seq) == (0 if reply else 8, 0, ident, seq)
    assert bytes(s.payload) == data
    assert s.chksum == IcmpMessage(raw).checksum == _scapy_checksum(raw)


@given(code=st.integers(0, 15), mtu=st.integers(68, 0xFFFF), quote=quotes)
def test_unreachable_ours_parsed_by_scapy(code: int, mtu: int, quote: bytes) -> None:
    mtu = mtu if code == UNREACH_FRAG_NEEDED else 0
    raw = build_icmp_unreachable(code, quote, next_hop_mtu=mtu)
    s = ICMP(raw)
    assert (s.type, s.code, s.nexthopmtu, s.length, s.reserved) == (3, code, mtu, 0, 0)
    inner = s[IPerror]
    q = Ipv4Packet(quote, truncated=True)
    assert (inner.src, inner.dst) == (_dotted(q.src), _dotted(q.dst))
    assert (inner.proto, inner.ttl, inner.len, inner.id, inner.ihl) == (
        q.protocol,
        q.ttl,
        q.total_length,
        q.ident,
        q.header_length // 4,
    )
    assert s.chksum == _scapy_checksum(raw)


@given(code=st.integers(0, 1), quote=quotes)
def test_time_exceeded_ours_parsed_by_scapy(code: int, quote: bytes) -> None:
    raw = build_icmp_time_exceeded(code, quote)
    s = ICMP(raw)
    assert (s.type, s.code, s.unused) == (11, code, 0)
    inner = s[IPerror]
    q = Ipv4Packet(quote, truncated=True)
    assert (inner.src, inner.dst, inner.proto, inner.len) == (
        _dotted(q.src),
        _dotted(q.dst),
        q.protocol,
        q.total_length,
    )
    assert s.chksum == _scapy_checksum(raw)


@given(ident=u16, seq=u16, data=st.binary(max_size=64), t=st.sampled_from([0, 8]))
def test_echo_scapy_built_parsed_by_ours(ident: int, seq: int, data: bytes, t: int) -> None:
    s = ICMP(type=t, id=ident, seq=seq)
    raw = bytes(s / Raw(data)) if data else bytes(s)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.ident, m.sequence, m.body) == (t, 0, ident, seq, data)
    assert m.checksum_ok()
    assert build_icmp_echo(ident, seq, data, reply=t == 0) == raw


@given(
    code=st.integers(0, 15),
    mtu=u16,
    src=addrs,
    dst=addrs,
    ttl=st.integers(0, 255),
    ident=u16,
    sport=u16,
    dport=u16,
    tcp=st.booleans(),
    payload=st.binary(max_size=32),
)
def test_unreachable_scapy_built_parsed_by_ours(
    code: int,
    mtu: int,
    src: bytes,
    dst: bytes,
    ttl: int,
    ident: int,
    sport: int,
    dport: int,
    tcp: bool,
    payload: bytes,
) -> None:
    l4 = TCP(sport=sport, dport=dport) if tcp else UDP(sport=sport, dport=dport)
    offending = IP(src=_dotted(src), dst=_dotted(dst), ttl=ttl, id=ident, flags="DF") / l4 / Raw(payload)
    raw = bytes(ICMP(type=3, code=code, nexthopmtu=mtu) / offending)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.next_hop_mtu, m.is_error) == (3, code, mtu, True)
    assert m.checksum_ok()
    q = m.quoted
    assert q is not None
    assert (q.src, q.dst, q.ttl, q.ident, q.protocol) == (src, dst, ttl, ident, 6 if tcp else 17)
    assert q.dont_fragment and not q.truncated and q.checksum_ok()
    assert q.payload[:4] == sport.to_bytes(2, "big") + dport.to_bytes(2, "big")


@given(code=st.integers(0, 1), src=addrs, dst=addrs, sport=u16, dport=u16)
def test_time_exceeded_scapy_built_parsed_by_ours(
    code: int, src: bytes, dst: bytes, sport: int, dport: int
) -> None:
    offending = IP(src=_dotted(src), dst=_dotted(dst), ttl=1) / UDP(sport=sport, dport=dport)
    raw = bytes(ICMP(type=11, code=code) / offending)
    m = IcmpMessage(raw)
    assert (m.type, m.code, m.rest) == (11, code, bytes(4))
    assert m.checksum_ok()
    q = m.quoted
    assert q is not None and (q.src, q.dst, q.ttl) == (src, dst, 1)
    assert build_icmp_time_exceeded(code, m.body) == raw


# --- robustness -----------------------------------------------------------------------


def _exercise(m: IcmpMessage) -> None:
    """Every getter must work on anything the constructor accepted."""
    values = (m.type, m.code, m.checksum, m.rest, m.body, m.ident, m.sequence, m.next_hop_mtu)
    assert all(v is not None for v in values)
    assert isinstance(m.pointer, int) and len(m.gateway) == 4
    assert m.is_error == (m.quoted is not None) == (m.type in (3, 4, 5, 11, 12))
    if m.quoted is not None:
        repr(m.quoted)
        assert len(m.quoted.header) >= 20
    m.checksum_ok()
    repr(m)
    assert IcmpMessage(bytes(m)).rest == m.rest


@given(st.binary(max_size=80))
def test_random_bytes_give_view_or_wire_error(data: bytes) -> None:
    try:
        m = IcmpMessage(data)
    except WireError:
        return
    _exercise(m)


@given(
    base=st.sampled_from([GOLDEN_ECHO, GOLDEN_FRAG_NEEDED, GOLDEN_TIME_EXCEEDED, GOLDEN_PORT_UNREACH]),
    flips=st.lists(st.tuples(st.integers(0, 79), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 80),
)
def test_mutated_messages_give_view_or_wire_error(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    raw = bytearray(base)
    for i, v in flips:
        if i < len(raw):
            raw[i] = v
    try:
        m = IcmpMessage(raw[:cut])
    except WireError:
        return
    _exercise(m)
