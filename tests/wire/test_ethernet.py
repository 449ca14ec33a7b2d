"""Ethernet II codec (RFC 894, IEEE 802.1Q): golden frames, round trips, scapy, traps."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from refstack.wire.addresses import BROADCAST_MAC, mac_str
from refstack.wire.errors import WireError
from refstack.wire.ethernet import (
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    ETHERTYPE_VLAN,
    MIN_FRAME_LEN,
    EthernetFrame,
    VlanTag,
    build_ethernet,
)

# --- golden frames, written out by hand ------------------------------------------------

# ARP who-has 192.168.0.1 tell 192.168.0.2, broadcast, padded to the 60-byte minimum.
ARP_REQUEST_FRAME = bytes.fromhex(
    "ffffffffffff"  # dst: broadcast
    "001a2b3c4d5e"  # src
    "0806"  # EtherType: ARP
    "0001"  # ARP htype: Ethernet
    "0800"  # ptype: IPv4
    "0604"  # hlen 6, plen 4
    "0001"  # op: request
    "001a2b3c4d5e"  # sender hw
    "c0a80002"  # sender proto: 192.168.0.2
    "000000000000"  # target hw: unknown
    "c0a80001"  # target proto: 192.168.0.1
) + bytes(18)  # padding, 42 -> 60
ARP_BODY = ARP_REQUEST_FRAME[14:42]

# 802.1Q-tagged IPv4 frame: PCP 5, DEI 0, VID 100 (TCI 0xa064), 4 payload bytes.
TAGGED_FRAME = bytes.fromhex(
    "020000000001"  # dst
    "020000000002"  # src
    "8100"  # TPID
    "a064"  # TCI: 101 0 000001100100
    "0800"  # inner EtherType: IPv4
    "45000014"  # payload (start of an IPv4 header)
)

# Tagged with PCP 3, DEI 1, VID 42 (TCI 0x702a), carrying IPv6, no payload.
TAGGED_DEI_FRAME = bytes.fromhex("0180c2000000" "00005e005301" "8100" "702a" "86dd")  # fmt: skip


def test_golden_arp_request_frame() -> None:
    f = EthernetFrame(ARP_REQUEST_FRAME)
    assert f.dst == BROADCAST_MAC
    assert f.src == bytes.fromhex("001a2b3c4d5e")
    assert f.ethertype == ETHERTYPE_ARP == 0x0806
    assert f.vlan is None
    assert f.header_length == 14
    assert f.payload == ARP_REQUEST_FRAME[14:]  # padding is not trimmed at this layer
    assert f.payload[:28] == ARP_BODY
    assert bytes(f) == ARP_REQUEST_FRAME
    assert build_ethernet(BROADCAST_MAC, f.src, ETHERTYPE_ARP, ARP_BODY, pad=True) == ARP_REQUEST_FRAME
    assert build_ethernet(BROADCAST_MAC, f.src, ETHERTYPE_ARP, ARP_BODY) == ARP_REQUEST_FRAME[:42]
    assert "ff:ff:ff:ff:ff:ff" in repr(f) and "0x0806" in repr(f)


def test_golden_tagged_frame() -> None:
    f = EthernetFrame(TAGGED_FRAME)
    assert f.dst == bytes.fromhex("020000000001")
    assert f.src == bytes.fromhex("020000000002")
    assert f.ethertype == ETHERTYPE_IPV4
    assert f.vlan == VlanTag(pcp=5, dei=0, vid=100)
    assert f.vlan.tci == 0xA064
    assert f.header_length == 18
    assert f.payload == bytes.fromhex("45000014")
    assert bytes(f) == TAGGED_FRAME
    rebuilt = build_ethernet(f.dst, f.src, ETHERTYPE_IPV4, f.payload, vlan=VlanTag(5, 0, 100))
    assert rebuilt == TAGGED_FRAME
    assert "vlan=100" in repr(f)


def test_golden_tagged_dei_frame() -> None:
    f = EthernetFrame(TAGGED_DEI_FRAME)
    assert f.ethertype == ETHERTYPE_IPV6
    assert f.vlan == VlanTag(pcp=3, dei=1, vid=42)
    assert f.header_length == 18
    assert f.payload == b""
    assert build_ethernet(f.dst, f.src, ETHERTYPE_IPV6, vlan=VlanTag(3, 1, 42)) == TAGGED_DEI_FRAME


def test_pad_counts_the_tag_and_leaves_long_frames_alone() -> None:
    tagged = build_ethernet(BROADCAST_MAC, BROADCAST_MAC, ETHERTYPE_IPV4, b"x", vlan=VlanTag(vid=1), pad=True)
    assert len(tagged) == MIN_FRAME_LEN
    assert tagged[18:] == b"x" + bytes(41)
    long = build_ethernet(BROADCAST_MAC, BROADCAST_MAC, ETHERTYPE_IPV4, b"y" * 100, pad=True)
    assert len(long) == 114


def test_qinq_parses_outer_tag_only() -> None:
    inner = VlanTag(pcp=1, dei=0, vid=200)
    inner_tag = inner.tci.to_bytes(2, "big") + ETHERTYPE_IPV4.to_bytes(2, "big")
    outer = VlanTag(vid=10)
    raw = build_ethernet(BROADCAST_MAC, BROADCAST_MAC, ETHERTYPE_VLAN, inner_tag + b"data", vlan=outer)
    f = EthernetFrame(raw)
    assert f.vlan == outer
    assert f.ethertype == ETHERTYPE_VLAN
    assert f.payload == inner_tag + b"data"
    # The caller peels the inner tag by re-reading the payload behind a synthetic outer header.
    inner_view = EthernetFrame(bytes(12) + ETHERTYPE_VLAN.to_bytes(2, "big") + f.payload)
    assert (inner_view.vlan, inner_view.ethertype, inner_view.payload) == (inner, ETHERTYPE_IPV4, b"data")


# --- hypothesis round trips ----------------------------------------------------------

macs = st.binary(min_size=6, max_size=6)
ethertypes = st.sampled_from([ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_IPV6]) | st.integers(
    0x0600, 0xFFFF
).filter(lambda t: t != ETHERTYPE_VLAN)
vlans = st.none() | st.builds(
    VlanTag, pcp=st.integers(0, 7), dei=st.integers(0, 1), vid=st.integers(0, 0xFFF)
)
payloads = st.binary(max_size=80)


@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads, vlan=vlans, pad=st.booleans())
def test_roundtrip(
    *, dst: bytes, src: bytes, ethertype: int, payload: bytes, vlan: VlanTag | None, pad: bool
) -> None:
    raw = build_ethernet(dst, src, ethertype, payload, vlan=vlan, pad=pad)
    f = EthernetFrame(raw)
    assert (f.dst, f.src, f.ethertype, f.vlan) == (dst, src, ethertype, vlan)
    assert f.header_length == (14 if vlan is None else 18)
    assert f.payload[: len(payload)] == payload
    assert f.payload[len(payload) :] == bytes(len(f.payload) - len(payload))
    assert len(raw) >= MIN_FRAME_LEN or not pad
    assert build_ethernet(f.dst, f.src, f.ethertype, f.payload, vlan=f.vlan) == raw == bytes(f)


# --- scapy cross-checks ------------------------------------------------------------


@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads, vlan=vlans)
def test_scapy_parses_ours(
    *, dst: bytes, src: bytes, ethertype: int, payload: bytes, vlan: VlanTag | None
) -> None:
    pkt = Ether(build_ethernet(dst, src, ethertype, payload, vlan=vlan))
    assert pkt.dst == mac_str(dst)
    assert pkt.src == mac_str(src)
    if vlan is None:
        assert pkt.type == ethertype
        assert Dot1Q not in pkt
        assert bytes(pkt.payload) == payload
    else:
        assert pkt.type == ETHERTYPE_VLAN
        tag = pkt[Dot1Q]
        assert (tag.prio, tag.dei, tag.vlan, tag.type) == (vlan.pcp, vlan.dei, vlan.vid, ethertype)
        assert bytes(tag.payload) == payload


@given(dst=macs, src=macs, ethertype=ethertypes, payload=payloads, vlan=vlans)
def test_we_parse_scapy(
    *, dst: bytes, src: bytes, ethertype: int, payload: bytes, vlan: VlanTag | None
) -> None:
    if vlan is None:
        pkt = Ether(dst=mac_str(dst), src=mac_str(src), type=ethertype) / Raw(payload)
    else:
        pkt = (
            Ether(dst=mac_str(dst), src=mac_str(src))
            / Dot1Q(prio=vlan.pcp, dei=vlan.dei, vlan=vlan.vid, type=ethertype)
            / Raw(payload)
        )
    f = EthernetFrame(bytes(pkt))
    assert (f.dst, f.src, f.ethertype, f.vlan, f.payload) == (dst, src, ethertype, vlan, payload)


# --- traps ---------------------------------------------------------------------------


def _err(data: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        EthernetFrame(data)
    return info.value


def test_trap_frame_shorter_than_14() -> None:
    e = _err(ARP_REQUEST_FRAME[:13])
    assert (e.field, e.offset) == ("ethernet", 0)
    assert EthernetFrame(ARP_REQUEST_FRAME[:14]).payload == b""


def test_trap_tagged_frame_shorter_than_18() -> None:
    e = _err(TAGGED_FRAME[:17])
    assert (e.field, e.offset) == ("ethernet.vlan", 14)
    e = _err(TAGGED_FRAME[:14])
    assert (e.field, e.offset) == ("ethernet.vlan", 14)
    assert EthernetFrame(TAGGED_FRAME[:18]).payload == b""


def test_trap_8023_length_is_not_an_ethertype() -> None:
    llc = bytes(12) + (1500).to_bytes(2, "big") + bytes.fromhex("424203") + bytes(43)  # STP BPDU over LLC
    e = _err(llc)
    assert (e.field, e.offset) == ("ethernet.ethertype", 12)
    e = _err(bytes(12) + b"\x05\xff")
    assert (e.field, e.offset) == ("ethernet.ethertype", 12)
    assert EthernetFrame(bytes(12) + b"\x06\x00").ethertype == 0x0600  # the first EtherType


def test_trap_8023_length_after_the_tag() -> None:
    e = _err(TAGGED_FRAME[:16] + b"\x00\x2e" + bytes(46))
    assert (e.field, e.offset) == ("ethernet.ethertype", 16)


def test_builder_guards() -> None:
    with pytest.raises(WireError) as info:
        build_ethernet(b"\x01" * 5, BROADCAST_MAC, ETHERTYPE_IPV4)
    assert (info.value.field, info.value.offset) == ("ethernet.address", None)
    with pytest.raises(WireError) as info:
        build_ethernet(BROADCAST_MAC, BROADCAST_MAC, 0x05DC)
    assert (info.value.field, info.value.offset) == ("ethernet.ethertype", None)
    with pytest.raises(WireError) as info:
        build_ethernet(BROADCAST_MAC, BROADCAST_MAC, 0x10000)
    assert (info.value.field, info.value.offset) == ("ethernet.ethertype", None)
    for kwargs, field in (({"pcp": 8}, "pcp"), ({"dei": 2}, "dei"), ({"vid": 4096}, "vid")):
        with pytest.raises(WireError) as info:
            VlanTag(**kwargs)
        assert (info.value.field, info.value.offset) == (f"ethernet.vlan.{field}", None)


def test_accepts_bytearray_and_memoryview() -> None:
    assert bytes(EthernetFrame(bytearray(TAGGED_FRAME))) == TAGGED_FRAME
    assert EthernetFrame(memoryview(TAGGED_FRAME)).vlan == VlanTag(5, 0, 100)


# --- robustness: anything in, a view or WireError out ---------------------------------


def _check_any(data: bytes) -> None:
    try:
        f = EthernetFrame(data)
    except WireError as e:
        event(f"WireError {e.field}")
        assert e.offset is not None and 0 <= e.offset < max(len(data), 18)
        return
    event("parsed")
    # Everything a parsed frame says is readable and rebuilds the same bytes.
    repr(f)
    assert build_ethernet(f.dst, f.src, f.ethertype, f.payload, vlan=f.vlan) == data


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    raw = bytearray(
        build_ethernet(draw(macs), draw(macs), draw(ethertypes), draw(payloads), vlan=draw(vlans))
    )
    for _ in range(draw(st.integers(0, 4))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    # Bias mutations toward the type/tag bytes, where the interesting checks are.
    for at in (12, 16):
        if draw(st.booleans()) and len(raw) >= at + 2:
            raw[at : at + 2] = draw(st.sampled_from([b"\x81\x00", b"\x05\xdc", b"\x05\xff", b"\x06\x00"]))
    if draw(st.booleans()):  # truncate, half the time
        del raw[draw(st.integers(0, len(raw))) :]
    return bytes(raw)


@given(st.binary(max_size=40))
def test_robust_random_bytes(data: bytes) -> None:
    _check_any(data)


@given(mutated_frames())
def test_robust_mutated_frames(data: bytes) -> None:
    _check_any(data)
