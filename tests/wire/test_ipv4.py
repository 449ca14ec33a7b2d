"""IPv4 (RFC 791 §3.1): golden bytes, round trips, scapy cross-checks both ways, traps."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import IP, IPOption

from refstack.wire.addresses import ipv4_addr
from refstack.wire.errors import WireError
from refstack.wire.ipv4 import (
    OPT_NOP,
    OPT_ROUTER_ALERT,
    ROUTER_ALERT,
    Ipv4Option,
    Ipv4Packet,
    build_ipv4,
)
from tests.wire.reference import word_loop_checksum

# A UDP datagram header from 192.168.0.1 to 192.168.0.199, DF, TTL 64, checksum b861.
GOLDEN = bytes.fromhex("45000073000040004011b861c0a80001c0a800c7") + bytes(0x73 - 20)

# An IGMPv3 report header as Linux emits it: TOS 0xc0, TTL 1, DF, Router Alert option.
GOLDEN_RA = bytes.fromhex("46c000280000400001020000c0a80001e000001694040000") + bytes(16)


def test_golden_header_fields() -> None:
    p = Ipv4Packet(GOLDEN)
    assert (p.version, p.header_length, p.tos, p.total_length, p.ident) == (4, 20, 0, 0x73, 0)
    assert p.dont_fragment and not p.more_fragments and not p.evil
    assert (p.flags, p.fragment_offset, p.is_fragment) == (2, 0, False)
    assert (p.ttl, p.protocol, p.checksum) == (64, 17, 0xB861)
    assert p.src == ipv4_addr("192.168.0.1") and p.dst == ipv4_addr("192.168.0.199")
    assert p.options == () and p.payload == bytes(0x73 - 20)
    assert p.checksum_ok()


def test_golden_header_rebuilt_exactly() -> None:
    p = Ipv4Packet(GOLDEN)
    out = build_ipv4(p.src, p.dst, p.protocol, p.payload, ttl=p.ttl, ident=p.ident, dont_fragment=True)
    assert out == GOLDEN


def test_golden_router_alert_header() -> None:
    raw = bytearray(GOLDEN_RA)
    raw[10:12] = word_loop_checksum(bytes(raw[:24])).to_bytes(2, "big")
    p = Ipv4Packet(raw)
    assert p.header_length == 24 and p.dscp == 0x30 and p.ecn == 0
    assert p.options == (ROUTER_ALERT,) and p.options[0].name == "router_alert" and p.options[0].copied
    assert p.checksum_ok()
    rebuilt = build_ipv4(
        p.src, p.dst, 2, p.payload, ttl=1, tos=0xC0, dont_fragment=True, options=[ROUTER_ALERT]
    )
    assert rebuilt == bytes(raw)


def test_trailing_link_padding_is_not_payload() -> None:
    pkt = build_ipv4(ipv4_addr("192.0.2.1"), ipv4_addr("192.168.0.1"), 17, b"abc")
    p = Ipv4Packet(pkt + b"\x00" * 20)
    assert p.payload == b"abc" and bytes(p) == pkt


def test_fragment_fields() -> None:
    pkt = build_ipv4(
        ipv4_addr("192.0.2.1"),
        ipv4_addr("192.168.0.1"),
        17,
        b"x" * 8,
        ident=0xBEEF,
        more_fragments=True,
        fragment_offset=1480,
    )
    p = Ipv4Packet(pkt)
    assert p.is_fragment and p.more_fragments and p.fragment_offset == 1480 and p.ident == 0xBEEF
    assert pkt[6:8] == (0x2000 | 185).to_bytes(2, "big")


def test_last_fragment_is_a_fragment() -> None:
    p = Ipv4Packet(build_ipv4(ipv4_addr("192.0.2.1"), ipv4_addr("192.168.0.1"), 17, b"x", fragment_offset=8))
    assert p.is_fragment and not p.more_fragments


def test_bad_checksum_detected_and_override_kept() -> None:
    pkt = build_ipv4(ipv4_addr("192.0.2.1"), ipv4_addr("192.168.0.1"), 6, b"", checksum_value=0x1234)
    p = Ipv4Packet(pkt)
    assert p.checksum == 0x1234 and not p.checksum_ok()


def test_truncated_view_for_icmp_quotes() -> None:
    pkt = build_ipv4(ipv4_addr("192.0.2.1"), ipv4_addr("192.168.0.1"), 6, b"y" * 100)
    p = Ipv4Packet(pkt[:28], truncated=True)
    assert p.truncated and p.total_length == 120 and p.payload == b"y" * 8


# --- traps --------------------------------------------------------------------------------


def _expect(data: bytes, field: str, offset: int) -> WireError:
    with pytest.raises(WireError) as info:
        Ipv4Packet(data)
    assert (info.value.field, info.value.offset) == (field, offset), info.value
    return info.value


def test_trap_shorter_than_header() -> None:
    _expect(GOLDEN[:19], "ipv4", 0)


def test_trap_version_not_4() -> None:
    _expect(b"\x65" + GOLDEN[1:], "ipv4.version", 0)


@pytest.mark.parametrize("ihl", [0, 1, 4])
def test_trap_ihl_below_5(ihl: int) -> None:
    _expect(bytes((0x40 | ihl,)) + GOLDEN[1:], "ipv4.ihl", 0)


def test_trap_ihl_past_buffer() -> None:
    _expect(b"\x4f" + GOLDEN[1:20] + bytes(20), "ipv4.ihl", 0)


def test_trap_total_length_smaller_than_header() -> None:
    _expect(GOLDEN[:2] + (19).to_bytes(2, "big") + GOLDEN[4:], "ipv4.total_length", 2)


def test_trap_total_length_smaller_than_header_with_options() -> None:
    _expect(GOLDEN_RA[:2] + (22).to_bytes(2, "big") + GOLDEN_RA[4:], "ipv4.total_length", 2)


def test_trap_total_length_larger_than_buffer() -> None:
    err = _expect(GOLDEN[:-1], "ipv4.total_length", 2)
    assert "larger" in err.reason


def test_trap_option_length_below_two() -> None:
    raw = bytes.fromhex("46000018000000004002") + b"\0\0" + bytes(8) + bytes((OPT_ROUTER_ALERT, 1, 0, 0))
    _expect(raw, "ipv4.option.length", 21)


def test_trap_option_runs_past_header() -> None:
    raw = bytes.fromhex("46000018000000004002") + b"\0\0" + bytes(8) + bytes((OPT_ROUTER_ALERT, 6, 0, 0))
    _expect(raw, "ipv4.option.length", 21)


def test_trap_option_without_length_octet() -> None:
    raw = bytes.fromhex("46000018000000004002") + b"\0\0" + bytes(8) + bytes((1, 1, 1, 7))
    _expect(raw, "ipv4.option.length", 23)


def test_builder_rejects_impossible_values() -> None:
    a = ipv4_addr("192.0.2.1")
    for kwargs in ({"ttl": 256}, {"fragment_offset": 3}, {"ident": -1}, {"tos": 300}):
        with pytest.raises(WireError):
            build_ipv4(a, a, 6, b"", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(WireError, match="exceeds"):
        build_ipv4(a, a, 6, bytes(65516))
    with pytest.raises(WireError, match="40"):
        build_ipv4(a, a, 6, b"", options=[Ipv4Option(7, bytes(20)), Ipv4Option(7, bytes(20))])


# --- hypothesis round trips -------------------------------------------------------------

addresses = st.binary(min_size=4, max_size=4)
# Kinds scapy dissects generically: NOP, Router Alert and the RFC 4727 experimental
# kinds (scapy gives option numbers such as 2, 3, 4, 7, 9 their own classes, whose
# dissection depends on inner lengths and would make the cross-check test scapy).
EXPERIMENTAL_KINDS = (30, 94, 158, 222)
ip_options = st.lists(
    st.one_of(
        st.just(Ipv4Option(OPT_NOP)),
        st.just(ROUTER_ALERT),
        st.builds(Ipv4Option, st.sampled_from(EXPERIMENTAL_KINDS), st.binary(max_size=6)),
    ),
    max_size=4,
)
fields = st.fixed_dictionaries(
    {
        "src": addresses,
        "dst": addresses,
        "protocol": st.integers(0, 255),
        "payload": st.binary(max_size=64),
        "ttl": st.integers(0, 255),
        "tos": st.integers(0, 255),
        "ident": st.integers(0, 0xFFFF),
        "dont_fragment": st.booleans(),
        "more_fragments": st.booleans(),
        "fragment_offset": st.integers(0, 0x1FFF).map(lambda u: u * 8),
        "evil": st.booleans(),
        "options": ip_options,
    }
)


@given(fields)
def test_build_then_parse_round_trip(f: dict[str, Any]) -> None:
    pkt = build_ipv4(**f)
    p = Ipv4Packet(pkt)
    assert (p.src, p.dst, p.protocol, p.payload) == (f["src"], f["dst"], f["protocol"], f["payload"])
    assert (p.ttl, p.tos, p.ident, p.evil) == (f["ttl"], f["tos"], f["ident"], f["evil"])
    assert (p.dont_fragment, p.more_fragments) == (f["dont_fragment"], f["more_fragments"])
    assert p.fragment_offset == f["fragment_offset"]
    # Options come back in order; padding may add trailing EOLs.
    assert p.options[: len(f["options"])] == tuple(f["options"])
    assert all(o.kind == 0 for o in p.options[len(f["options"]) :])
    assert p.checksum_ok()
    again = build_ipv4(
        p.src,
        p.dst,
        p.protocol,
        p.payload,
        ttl=p.ttl,
        tos=p.tos,
        ident=p.ident,
        dont_fragment=p.dont_fragment,
        more_fragments=p.more_fragments,
        fragment_offset=p.fragment_offset,
        evil=p.evil,
        options=p.options,
    )
    assert again[: len(pkt)] == pkt


# --- scapy cross-checks -----------------------------------------------------------------


@given(fields)
def test_ours_parsed_by_scapy(f: dict[str, Any]) -> None:
    pkt = build_ipv4(**f)
    s = IP(pkt)
    assert s.version == 4 and s.ihl * 4 == Ipv4Packet(pkt).header_length
    assert (s.src, s.dst) == (".".join(map(str, f["src"])), ".".join(map(str, f["dst"])))
    assert (s.proto, s.ttl, s.tos, s.id, s.len) == (f["protocol"], f["ttl"], f["tos"], f["ident"], len(pkt))
    assert s.frag * 8 == f["fragment_offset"]
    assert bool(s.flags.DF) == f["dont_fragment"] and bool(s.flags.MF) == f["more_fragments"]
    assert bool(s.flags.evil) == f["evil"]
    ours = Ipv4Packet(pkt).options
    scapy_opts = [bytes(o) for o in s.options]
    assert [b[0] for b in scapy_opts][: len(f["options"])] == [o.kind for o in f["options"]]
    assert b"".join(scapy_opts).rstrip(b"\0") == b"".join(o.encode() for o in ours).rstrip(b"\0")
    # scapy's own checksum of our header agrees with ours.
    del s.chksum
    assert IP(bytes(s)).chksum == Ipv4Packet(pkt).checksum


@given(
    src=st.ip_addresses(v=4).map(str),
    dst=st.ip_addresses(v=4).map(str),
    proto=st.integers(0, 255),
    ttl=st.integers(0, 255),
    tos=st.integers(0, 255),
    ident=st.integers(0, 0xFFFF),
    flags=st.integers(0, 7),
    frag=st.integers(0, 0x1FFF),
    payload=st.binary(max_size=64),
    router_alert=st.booleans(),
)
def test_scapy_built_parsed_by_ours(
    src: str,
    dst: str,
    proto: int,
    ttl: int,
    tos: int,
    ident: int,
    flags: int,
    frag: int,
    payload: bytes,
    router_alert: bool,
) -> None:
    opts = [IPOption(b"\x94\x04\x00\x00")] if router_alert else []
    raw = bytes(
        IP(src=src, dst=dst, proto=proto, ttl=ttl, tos=tos, id=ident, flags=flags, frag=frag, options=opts)
        / payload
    )
    p = Ipv4Packet(raw)
    assert (p.src, p.dst) == (ipv4_addr(src), ipv4_addr(dst))
    assert (p.protocol, p.ttl, p.tos, p.ident) == (proto, ttl, tos, ident)
    assert (p.flags, p.fragment_offset) == (flags, frag * 8)
    assert p.payload == payload and p.checksum_ok()
    assert p.options == ((ROUTER_ALERT,) if router_alert else ())


def test_truncated_view_ignores_inconsistent_total_length() -> None:
    # Linux accepts a quoted header whose Total Length is below its IHL (only IHL is checked).
    raw = GOLDEN[:2] + (4).to_bytes(2, "big") + GOLDEN[4:28]
    p = Ipv4Packet(raw, truncated=True)
    assert p.total_length == 4 and p.payload == GOLDEN[20:28]
