"""UDP codec (RFC 768, RFC 1122 §4.1.3.4): golden datagrams, round trips, scapy, traps."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.packet import Raw

from refstack.wire.addresses import ipv4_addr, ipv4_str
from refstack.wire.errors import WireError
from refstack.wire.ipv4 import PROTO_UDP, Ipv4Packet, build_ipv4
from refstack.wire.udp import UdpDatagram, build_udp

# --- an independent reference checksum (RFC 1071 §4.1 word loop), not refstack's ---------


def ref_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ref_udp_checksum(src: bytes, dst: bytes, datagram: bytes) -> int:
    """The RFC 768 checksum of ``datagram`` (its checksum field taken as zero), as sent."""
    pseudo = src + dst + bytes((0, 17)) + len(datagram).to_bytes(2, "big")
    value = ref_checksum(pseudo + datagram[:6] + b"\x00\x00" + datagram[8:])
    return value or 0xFFFF


# --- golden datagrams, written out by hand ------------------------------------------------

CLIENT = ipv4_addr("192.168.0.2")
RESOLVER = ipv4_addr("8.8.8.8")

# A DNS query for example.com/A from 192.168.0.2:53123 to 8.8.8.8:53.
DNS_PAYLOAD = bytes.fromhex(
    "1234" "0100" "0001" "0000" "0000" "0000"  # id, RD, 1 question
    "07" "6578616d706c65" "03" "636f6d" "00"  # example.com
    "0001" "0001"  # type A, class IN
)  # fmt: skip
DNS_QUERY = (
    bytes.fromhex(
        "cf83"  # source port 53123
        "0035"  # destination port 53
        "0025"  # length 8 + 29 = 37
        "7d8f"  # checksum
    )
    + DNS_PAYLOAD
)


def test_golden_dns_query() -> None:
    assert ref_udp_checksum(CLIENT, RESOLVER, DNS_QUERY) == 0x7D8F  # the literal above is right
    d = UdpDatagram(DNS_QUERY)
    assert (d.src_port, d.dst_port, d.length, d.checksum) == (53123, 53, 37, 0x7D8F)
    assert d.has_checksum
    assert d.payload == DNS_PAYLOAD
    assert bytes(d) == DNS_QUERY
    assert d.checksum_ok(CLIENT, RESOLVER)
    assert not d.checksum_ok(RESOLVER, ipv4_addr("8.8.4.4"))
    assert repr(d) == "<UdpDatagram 53123 > 53 len=37 cksum=0x7d8f>"
    assert build_udp(CLIENT, RESOLVER, 53123, 53, DNS_PAYLOAD) == DNS_QUERY


def test_golden_trailing_bytes_are_not_the_datagram() -> None:
    d = UdpDatagram(DNS_QUERY + b"\x00" * 9)  # e.g. a short datagram's link padding
    assert d.length == 37
    assert d.payload == DNS_PAYLOAD
    assert bytes(d) == DNS_QUERY
    assert d.checksum_ok(CLIENT, RESOLVER)


def test_golden_empty_datagram_without_checksum() -> None:
    # Echo (7) -> discard (9), no data, no checksum.
    raw = bytes.fromhex("0007" "0009" "0008" "0000")  # fmt: skip
    d = UdpDatagram(raw)
    assert (d.src_port, d.dst_port, d.length, d.checksum, d.payload) == (7, 9, 8, 0, b"")
    assert not d.has_checksum
    assert "cksum=none" in repr(d)
    assert build_udp(CLIENT, RESOLVER, 7, 9, no_checksum=True) == raw


def test_checksum_value_override_builds_broken_datagrams() -> None:
    raw = build_udp(CLIENT, RESOLVER, 53123, 53, DNS_PAYLOAD, checksum_value=0x1234)
    assert raw[6:8] == b"\x12\x34" and raw[8:] == DNS_PAYLOAD
    assert not UdpDatagram(raw).checksum_ok(CLIENT, RESOLVER)


def test_odd_length_payload() -> None:
    raw = build_udp(CLIENT, RESOLVER, 1, 2, b"abc")
    assert int.from_bytes(raw[6:8], "big") == ref_udp_checksum(CLIENT, RESOLVER, raw)
    assert UdpDatagram(raw).checksum_ok(CLIENT, RESOLVER)


# --- hypothesis round trips ----------------------------------------------------------

addrs = st.binary(min_size=4, max_size=4)
ports = st.integers(0, 0xFFFF)
payloads = st.binary(max_size=120)


@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads, no_checksum=st.booleans())
def test_roundtrip(
    *, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, no_checksum: bool
) -> None:
    raw = build_udp(src, dst, sport, dport, payload, no_checksum=no_checksum)
    d = UdpDatagram(raw)
    assert (d.src_port, d.dst_port, d.length, d.payload) == (sport, dport, 8 + len(payload), payload)
    assert d.has_checksum is not no_checksum
    assert d.checksum == (0 if no_checksum else ref_udp_checksum(src, dst, raw))
    assert d.checksum_ok(src, dst)
    assert build_udp(src, dst, d.src_port, d.dst_port, d.payload, no_checksum=not d.has_checksum) == raw
    same = build_udp(src, dst, d.src_port, d.dst_port, d.payload, checksum_value=d.checksum)
    assert same == bytes(d) == raw


@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads, flip=st.integers(0, 127))
def test_any_flipped_bit_fails_the_checksum(
    *, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, flip: int
) -> None:
    raw = bytearray(build_udp(src, dst, sport, dport, payload))
    bit = flip % (len(raw) * 8)
    if bit // 8 in (4, 5):  # the length field: flipping it changes the datagram's extent instead
        return
    raw[bit // 8] ^= 1 << (bit % 8)
    d = UdpDatagram(raw)
    # A flip that zeroes the checksum field means "no checksum" and is accepted (RFC 768).
    assert d.checksum_ok(src, dst) is (not d.has_checksum)


# --- scapy cross-checks ------------------------------------------------------------


@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads)
def test_scapy_parses_ours(*, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> None:
    ours = build_udp(src, dst, sport, dport, payload)
    pkt = IP(build_ipv4(src, dst, PROTO_UDP, ours))
    u = pkt[UDP]
    assert (u.sport, u.dport, u.len) == (sport, dport, 8 + len(payload))
    assert bytes(u)[8:] == payload
    assert u.chksum == UdpDatagram(ours).checksum
    del u.chksum  # let scapy compute it afresh over its own pseudo-header
    assert IP(bytes(pkt))[UDP].chksum == UdpDatagram(ours).checksum


@given(src=addrs, dst=addrs, sport=ports, dport=ports, payload=payloads, no_checksum=st.booleans())
def test_we_parse_scapy(
    *, src: bytes, dst: bytes, sport: int, dport: int, payload: bytes, no_checksum: bool
) -> None:
    udp = UDP(sport=sport, dport=dport, chksum=0 if no_checksum else None)
    pkt = IP(src=ipv4_str(src), dst=ipv4_str(dst)) / udp / Raw(payload)
    ip = Ipv4Packet(bytes(pkt))
    d = UdpDatagram(ip.payload)
    assert (d.src_port, d.dst_port, d.length, d.payload) == (sport, dport, 8 + len(payload), payload)
    assert d.checksum_ok(ip.src, ip.dst)
    assert d.has_checksum is not no_checksum
    if not no_checksum:
        assert d.checksum == UdpDatagram(build_udp(src, dst, sport, dport, payload)).checksum


# --- traps ---------------------------------------------------------------------------


def _err(data: bytes) -> WireError:
    with pytest.raises(WireError) as info:
        UdpDatagram(data)
    return info.value


def test_trap_shorter_than_8() -> None:
    e = _err(DNS_QUERY[:7])
    assert (e.field, e.offset) == ("udp", 0)


@pytest.mark.parametrize("length", [0, 1, 7])
def test_trap_length_field_below_8(length: int) -> None:
    e = _err(DNS_QUERY[:4] + length.to_bytes(2, "big") + DNS_QUERY[6:])
    assert (e.field, e.offset) == ("udp.length", 4)


def test_trap_length_larger_than_buffer() -> None:
    e = _err(DNS_QUERY[:-1])
    assert (e.field, e.offset) == ("udp.length", 4)
    e = _err(DNS_QUERY[:4] + b"\xff\xff" + DNS_QUERY[6:])
    assert (e.field, e.offset) == ("udp.length", 4)


def test_trap_zero_checksum_is_accepted() -> None:
    raw = DNS_QUERY[:6] + b"\x00\x00" + DNS_PAYLOAD
    d = UdpDatagram(raw)
    assert not d.has_checksum
    assert d.checksum_ok(CLIENT, RESOLVER)  # RFC 1122 §4.1.3.4: no checksum, nothing to verify
    assert d.checksum_ok(RESOLVER, RESOLVER)  # ...whatever the addresses


def test_trap_computed_zero_checksum_is_sent_as_all_ones() -> None:
    # Choose the 2-byte payload that makes the one's complement sum 0xFFFF, so the computed
    # checksum is 0: RFC 768 says to send it as all ones, 0 meaning "none".
    src, dst, sport, dport = ipv4_addr("10.0.0.1"), ipv4_addr("10.0.0.2"), 1000, 2000
    pseudo = src + dst + bytes((0, 17, 0, 10))  # UDP length 10: header and a 2-byte payload
    ports_and_length = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (10).to_bytes(2, "big")
    rest = ref_checksum(pseudo + ports_and_length)  # the complement of everything but the payload
    word = rest.to_bytes(2, "big")  # sum + ~sum = 0xFFFF: the one's complement sum is -0
    assert ref_checksum(pseudo + ports_and_length + word) == 0
    raw = build_udp(src, dst, sport, dport, word)
    assert raw[6:8] == b"\xff\xff"
    d = UdpDatagram(raw)
    assert d.checksum == 0xFFFF and d.has_checksum
    assert d.checksum_ok(src, dst)
    # scapy agrees, reading ours and computing its own.
    assert IP(build_ipv4(src, dst, PROTO_UDP, raw))[UDP].chksum == 0xFFFF
    pkt = IP(src=ipv4_str(src), dst=ipv4_str(dst)) / UDP(sport=sport, dport=dport) / Raw(word)
    assert IP(bytes(pkt))[UDP].chksum == 0xFFFF


def test_trap_wrong_checksum_fails() -> None:
    raw = bytearray(DNS_QUERY)
    raw[7] ^= 1
    assert not UdpDatagram(raw).checksum_ok(CLIENT, RESOLVER)


def test_builder_guards() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"src_port": 0x10000}, "udp.src_port"),
        ({"dst_port": -1}, "udp.dst_port"),
        ({"payload": bytes(0xFFFF - 7)}, "udp.length"),
        ({"checksum_value": 0x10000}, "udp.checksum"),
        ({"checksum_value": 1, "no_checksum": True}, "udp.checksum"),
        ({"src_ip": bytes(16)}, "ipv4.address"),
    ]
    for override, field in cases:
        kwargs: dict[str, object] = {"src_ip": CLIENT, "dst_ip": RESOLVER, "src_port": 1, "dst_port": 2}
        kwargs.update(override)
        with pytest.raises(WireError) as info:
            build_udp(**kwargs)  # type: ignore[arg-type]
        assert (info.value.field, info.value.offset) == (field, None)
    assert len(build_udp(CLIENT, RESOLVER, 1, 2, bytes(0xFFFF - 8))) == 0xFFFF  # the largest fits


def test_accepts_bytearray_and_memoryview() -> None:
    assert bytes(UdpDatagram(bytearray(DNS_QUERY))) == DNS_QUERY
    assert UdpDatagram(memoryview(DNS_QUERY + b"pad")).payload == DNS_PAYLOAD


# --- robustness: anything in, a view or WireError out ---------------------------------


def _check_any(data: bytes) -> None:
    try:
        d = UdpDatagram(data)
    except WireError as e:
        event(f"WireError {e.field}")
        assert (e.field, e.offset) in (("udp", 0), ("udp.length", 4))
        return
    event("parsed")
    repr(d)
    assert 8 <= d.length <= len(data)
    assert bytes(d) == data[: d.length]
    d.checksum_ok(bytes(4), bytes(4))  # answers, never raises
    rebuilt = build_udp(bytes(4), bytes(4), d.src_port, d.dst_port, d.payload, checksum_value=d.checksum)
    assert rebuilt == bytes(d)


@st.composite
def mutated_datagrams(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.builds(build_udp, addrs, addrs, ports, ports, payloads)))
    raw += draw(st.binary(max_size=8))  # padding past Length
    for _ in range(draw(st.integers(0, 4))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):  # bias toward the length field, where the checks are
        raw[4:6] = draw(st.integers(0, len(raw) + 2)).to_bytes(2, "big")
    if draw(st.booleans()):  # truncate, half the time
        del raw[draw(st.integers(0, len(raw))) :]
    return bytes(raw)


@given(st.binary(max_size=40))
def test_robust_random_bytes(data: bytes) -> None:
    _check_any(data)


@given(mutated_datagrams())
def test_robust_mutated_datagrams(data: bytes) -> None:
    _check_any(data)
