"""ARP codec (RFC 826): golden packets, round trips, scapy, traps."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether

from refstack.wire.addresses import BROADCAST_MAC, ipv4_addr, ipv4_str, mac, mac_str
from refstack.wire.arp import (
    HTYPE_ETHERNET,
    OP_REPLY,
    OP_REQUEST,
    PTYPE_IPV4,
    ArpPacket,
    build_arp,
    build_arp_raw,
)
from refstack.wire.errors import WireError
from refstack.wire.ethernet import ETHERTYPE_ARP, EthernetFrame, build_ethernet

# --- golden packets, written out by hand ------------------------------------------------

# Who-has 192.168.0.1 tell 192.168.0.2 (00:1a:2b:3c:4d:5e), in a broadcast frame padded to 60.
REQUEST_FRAME = bytes.fromhex(
    "ffffffffffff"  # Ethernet dst: broadcast
    "001a2b3c4d5e"  # Ethernet src: the sender
    "0806"  # EtherType: ARP
    "0001"  # htype: Ethernet
    "0800"  # ptype: IPv4
    "06"  # hlen
    "04"  # plen
    "0001"  # op: request
    "001a2b3c4d5e"  # sender hw
    "c0a80002"  # sender proto: 192.168.0.2
    "000000000000"  # target hw: unknown
    "c0a80001"  # target proto: 192.168.0.1
) + bytes(18)  # padding, 42 -> 60
REQUEST = REQUEST_FRAME[14:42]

# The answer: 192.168.0.1 is-at 00:11:22:33:44:55, unicast back.
REPLY = bytes.fromhex(
    "0001" "0800" "06" "04" "0002"
    "001122334455" "c0a80001"
    "001a2b3c4d5e" "c0a80002"
)  # fmt: skip

# A generic packet: hardware type 6 (IEEE 802) with 8-byte hardware addresses, 16-byte
# protocol addresses, and a trailing byte that is not part of it.
GENERIC = bytes.fromhex(
    "0006" "86dd" "08" "10" "0003"
    "0102030405060708" "20010db8000000000000000000000001"
    "1112131415161718" "20010db8000000000000000000000002"
    "ee"
)  # fmt: skip


def test_golden_request_in_frame() -> None:
    frame = EthernetFrame(REQUEST_FRAME)
    assert frame.ethertype == ETHERTYPE_ARP
    p = ArpPacket(frame.payload)  # 46 bytes: the 18 bytes of padding are ignored
    assert (p.htype, p.ptype, p.hlen, p.plen, p.op) == (HTYPE_ETHERNET, PTYPE_IPV4, 6, 4, OP_REQUEST)
    assert p.sender_hw == mac("00:1a:2b:3c:4d:5e")
    assert p.sender_proto == ipv4_addr("192.168.0.2")
    assert p.target_hw == bytes(6)
    assert p.target_proto == ipv4_addr("192.168.0.1")
    assert p.is_ethernet_ipv4
    assert bytes(p) == REQUEST
    assert repr(p) == "<ArpPacket who-has 192.168.0.1 tell 192.168.0.2 (00:1a:2b:3c:4d:5e)>"
    built = build_arp(OP_REQUEST, p.sender_hw, ipv4_addr("192.168.0.2"), bytes(6), ipv4_addr("192.168.0.1"))
    assert built == REQUEST
    assert build_ethernet(BROADCAST_MAC, p.sender_hw, ETHERTYPE_ARP, built, pad=True) == REQUEST_FRAME


def test_golden_reply() -> None:
    p = ArpPacket(REPLY)
    assert (p.htype, p.ptype, p.hlen, p.plen, p.op) == (1, 0x0800, 6, 4, OP_REPLY)
    assert p.sender_hw == mac("00:11:22:33:44:55")
    assert p.sender_proto == ipv4_addr("192.168.0.1")
    assert p.target_hw == mac("00:1a:2b:3c:4d:5e")
    assert p.target_proto == ipv4_addr("192.168.0.2")
    assert p.is_ethernet_ipv4
    assert "192.168.0.1 is-at 00:11:22:33:44:55" in repr(p)
    assert build_arp(OP_REPLY, p.sender_hw, p.sender_proto, p.target_hw, p.target_proto) == REPLY


def test_golden_generic_sizes() -> None:
    p = ArpPacket(GENERIC)
    assert (p.htype, p.ptype, p.hlen, p.plen, p.op) == (6, 0x86DD, 8, 16, 3)
    assert p.sender_hw == bytes.fromhex("0102030405060708")
    assert p.sender_proto == bytes.fromhex("20010db8000000000000000000000001")
    assert p.target_hw == bytes.fromhex("1112131415161718")
    assert p.target_proto == bytes.fromhex("20010db8000000000000000000000002")
    assert not p.is_ethernet_ipv4
    assert bytes(p) == GENERIC[:-1]
    assert "op=3" in repr(p)
    rebuilt = build_arp_raw(
        htype=6,
        ptype=0x86DD,
        op=3,
        sender_hw=p.sender_hw,
        sender_proto=p.sender_proto,
        target_hw=p.target_hw,
        target_proto=p.target_proto,
    )
    assert rebuilt == GENERIC[:-1]


def test_is_ethernet_ipv4_needs_all_four() -> None:
    for offset, value in ((1, 6), (2, 0x86), (4, 8), (5, 16)):
        raw = bytearray(REPLY + bytes(40))
        raw[offset] = value
        assert not ArpPacket(raw).is_ethernet_ipv4


def test_zero_length_addresses() -> None:
    p = ArpPacket(bytes.fromhex("0001080000000001"))
    assert (p.sender_hw, p.sender_proto, p.target_hw, p.target_proto) == (b"", b"", b"", b"")
    assert bytes(p) == bytes.fromhex("0001080000000001")


# --- hypothesis round trips ----------------------------------------------------------

macs = st.binary(min_size=6, max_size=6)
ips = st.binary(min_size=4, max_size=4)
ops = st.integers(0, 0xFFFF)


@given(op=ops, sha=macs, spa=ips, tha=macs, tpa=ips, pad=st.binary(max_size=20))
def test_roundtrip_ethernet_ipv4(
    *, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes, pad: bytes
) -> None:
    raw = build_arp(op, sha, spa, tha, tpa)
    assert len(raw) == 28
    p = ArpPacket(raw + pad)
    assert (p.op, p.sender_hw, p.sender_proto, p.target_hw, p.target_proto) == (op, sha, spa, tha, tpa)
    assert p.is_ethernet_ipv4
    assert build_arp(p.op, p.sender_hw, p.sender_proto, p.target_hw, p.target_proto) == raw == bytes(p)


@st.composite
def generic_fields(draw: st.DrawFn) -> dict[str, int | bytes]:
    hlen = draw(st.integers(0, 20))
    plen = draw(st.integers(0, 20))
    return {
        "htype": draw(st.integers(0, 0xFFFF)),
        "ptype": draw(st.integers(0, 0xFFFF)),
        "op": draw(ops),
        "sender_hw": draw(st.binary(min_size=hlen, max_size=hlen)),
        "sender_proto": draw(st.binary(min_size=plen, max_size=plen)),
        "target_hw": draw(st.binary(min_size=hlen, max_size=hlen)),
        "target_proto": draw(st.binary(min_size=plen, max_size=plen)),
    }


def _fields(p: ArpPacket) -> dict[str, int | bytes]:
    return {
        "htype": p.htype,
        "ptype": p.ptype,
        "op": p.op,
        "sender_hw": p.sender_hw,
        "sender_proto": p.sender_proto,
        "target_hw": p.target_hw,
        "target_proto": p.target_proto,
    }


@given(fields=generic_fields())
def test_roundtrip_generic(fields: dict[str, int | bytes]) -> None:
    raw = build_arp_raw(**fields)
    p = ArpPacket(raw)
    assert _fields(p) == fields
    assert (p.hlen, p.plen) == (len(p.sender_hw), len(p.sender_proto))
    assert build_arp_raw(**_fields(p)) == raw == bytes(p)


# --- scapy cross-checks ------------------------------------------------------------


@given(op=ops, sha=macs, spa=ips, tha=macs, tpa=ips)
def test_scapy_parses_ours(*, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    frame = build_ethernet(BROADCAST_MAC, sha, ETHERTYPE_ARP, build_arp(op, sha, spa, tha, tpa), pad=True)
    a = Ether(frame)[ARP]
    assert (a.hwtype, a.ptype, a.hwlen, a.plen, a.op) == (1, 0x0800, 6, 4, op)
    assert (a.hwsrc, a.psrc) == (mac_str(sha), ipv4_str(spa))
    assert (a.hwdst, a.pdst) == (mac_str(tha), ipv4_str(tpa))


@given(op=ops, sha=macs, spa=ips, tha=macs, tpa=ips)
def test_we_parse_scapy(*, op: int, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> None:
    pkt = Ether(dst=mac_str(BROADCAST_MAC), src=mac_str(sha)) / ARP(
        op=op, hwsrc=mac_str(sha), psrc=ipv4_str(spa), hwdst=mac_str(tha), pdst=ipv4_str(tpa)
    )
    frame = EthernetFrame(bytes(pkt))
    assert frame.ethertype == ETHERTYPE_ARP
    p = ArpPacket(frame.payload)
    assert p.is_ethernet_ipv4
    assert (p.op, p.sender_hw, p.sender_proto, p.target_hw, p.target_proto) == (op, sha, spa, tha, tpa)


# --- traps ---------------------------------------------------------------------------


def _err(data: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        ArpPacket(data)
    return info.value


def test_trap_shorter_than_fixed_part() -> None:
    e = _err(REQUEST[:7])
    assert (e.field, e.offset) == ("arp", 0)


@pytest.mark.parametrize(
    ("cut", "field", "offset"),
    [
        (8, "arp.hlen", 4),  # no sender hardware address at all
        (13, "arp.hlen", 4),  # sender hardware address one byte short
        (17, "arp.plen", 5),  # sender protocol address one byte short
        (20, "arp.hlen", 4),  # target hardware address cut
        (27, "arp.plen", 5),  # target protocol address one byte short
    ],
)
def test_trap_truncated_addresses(cut: int, field: str, offset: int) -> None:
    e = _err(REQUEST[:cut])
    assert (e.field, e.offset) == (field, offset)
    assert "runs past" in e.reason


def test_trap_lengths_larger_than_the_buffer() -> None:
    # Sizes that claim more than the packet plus its Ethernet padding can supply.
    raw = bytearray(REQUEST_FRAME[14:])  # 46 bytes with padding
    raw[4] = 20  # hlen 20: 8 + 2 * (20 + 4) = 56 > 46, target hw runs past
    e = _err(bytes(raw))
    assert (e.field, e.offset) == ("arp.hlen", 4)
    raw[4], raw[5] = 6, 30  # sender proto fits (14..44), target hw (44..50) runs past
    e = _err(bytes(raw))
    assert (e.field, e.offset) == ("arp.hlen", 4)
    raw[5] = 40  # sender proto ends at 54 > 46
    e = _err(bytes(raw))
    assert (e.field, e.offset) == ("arp.plen", 5)


def test_builder_guards() -> None:
    with pytest.raises(WireError) as info:
        build_arp(OP_REQUEST, bytes(5), bytes(4), bytes(6), bytes(4))
    assert (info.value.field, info.value.offset) == ("arp.hlen", None)
    with pytest.raises(WireError) as info:
        build_arp(OP_REQUEST, bytes(6), bytes(4), bytes(6), bytes(16))
    assert (info.value.field, info.value.offset) == ("arp.plen", None)
    with pytest.raises(WireError) as info:
        build_arp(0x10000, bytes(6), bytes(4), bytes(6), bytes(4))
    assert (info.value.field, info.value.offset) == ("arp.op", None)
    with pytest.raises(WireError) as info:
        build_arp_raw(
            htype=1, ptype=0, op=1, sender_hw=bytes(6), sender_proto=b"", target_hw=bytes(5), target_proto=b""
        )
    assert (info.value.field, info.value.offset) == ("arp.hlen", None)
    with pytest.raises(WireError) as info:
        build_arp_raw(
            htype=1,
            ptype=0,
            op=1,
            sender_hw=bytes(256),
            sender_proto=b"",
            target_hw=bytes(256),
            target_proto=b"",
        )
    assert (info.value.field, info.value.offset) == ("arp.hlen", None)
    with pytest.raises(WireError) as info:
        build_arp_raw(
            htype=-1, ptype=0, op=1, sender_hw=b"", sender_proto=b"", target_hw=b"", target_proto=b""
        )
    assert (info.value.field, info.value.offset) == ("arp.htype", None)


def test_accepts_bytearray_and_memoryview() -> None:
    assert bytes(ArpPacket(bytearray(REPLY))) == REPLY
    assert ArpPacket(memoryview(REQUEST_FRAME)[14:]).target_proto == ipv4_addr("192.168.0.1")


# --- robustness: anything in, a view or WireError out ---------------------------------


def _check_any(data: bytes) -> None:
    try:
        p = ArpPacket(data)
    except WireError as e:
        event(f"WireError {e.field}")
        assert e.field in ("arp", "arp.hlen", "arp.plen")
        assert e.offset in (0, 4, 5)
        return
    event("parsed")
    repr(p)
    assert len(p.sender_hw) == len(p.target_hw) == p.hlen
    assert len(p.sender_proto) == len(p.target_proto) == p.plen
    assert build_arp_raw(**_fields(p)) == bytes(p) == data[: 8 + 2 * (p.hlen + p.plen)]


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.builds(build_arp, ops, macs, ips, macs, ips)) + draw(st.binary(max_size=18)))
    for _ in range(draw(st.integers(0, 4))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):  # bias toward the length octets, where the checks are
        raw[draw(st.sampled_from([4, 5]))] = draw(st.integers(0, 30))
    if draw(st.booleans()):  # truncate, half the time
        del raw[draw(st.integers(0, len(raw))) :]
    return bytes(raw)


@given(st.binary(max_size=64))
def test_robust_random_bytes(data: bytes) -> None:
    _check_any(data)


@given(mutated_packets())
def test_robust_mutated_packets(data: bytes) -> None:
    _check_any(data)
