"""RFC 1071 checksum: golden values, equivalence with the textbook loop, edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refstack.wire.checksum import checksum, checksum_ok, partial_sum, pseudo_header_sum
from refstack.wire.errors import WireError
from tests.wire.reference import pseudo_header, word_loop_checksum

# RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum (with carries) to ddf2.
RFC1071_EXAMPLE = bytes.fromhex("0001f203f4f5f6f7")


def test_rfc1071_worked_example() -> None:
    assert checksum(RFC1071_EXAMPLE) == (~0xDDF2) & 0xFFFF


def test_known_ipv4_header_checksum() -> None:
    header = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert checksum(header) == 0xB861
    assert checksum_ok(header[:10] + b"\xb8\x61" + header[12:])


def test_all_zero_data_sums_to_plus_zero() -> None:
    # One's complement: the sum of zero words is +0, so the checksum is 0xFFFF.
    assert checksum(b"\x00" * 10) == 0xFFFF
    assert not checksum_ok(b"\x00" * 10)


def test_sum_of_minus_zero_gives_zero_checksum() -> None:
    # 0xFFFF alone sums to -0; its complement is 0x0000.
    assert checksum(b"\xff\xff") == 0
    assert checksum(b"\x80\x00\x7f\xff") == 0


def test_odd_length_pads_with_zero() -> None:
    assert checksum(b"\x01\x02\x03") == checksum(b"\x01\x02\x03\x00")


def test_both_zero_encodings_verify() -> None:
    # +0 and -0 in the checksum field are the same one's complement number.
    data = bytes.fromhex("0001f203f4f5f6f7")
    c = checksum(data)
    assert checksum_ok(data + c.to_bytes(2, "big"))


def test_pseudo_header_sum_matches_bytes() -> None:
    src, dst = bytes((192, 168, 0, 1)), bytes((192, 0, 2, 1))
    seg = b"\x12\x34" * 13
    expected = word_loop_checksum(pseudo_header(src, dst, 6, len(seg)) + seg)
    assert checksum(pseudo_header_sum(src, dst, 6, len(seg)), seg) == expected


@given(st.binary(max_size=3000))
def test_matches_textbook_loop(data: bytes) -> None:
    assert checksum(data) == word_loop_checksum(data)


@given(st.binary(max_size=200).map(lambda b: b + b"\x00" * (len(b) % 2)), st.binary(max_size=200))
def test_parts_combine_like_concatenation(a: bytes, b: bytes) -> None:
    assert checksum(a, b) == checksum(a + b)
    assert checksum(partial_sum(a), b) == checksum(a + b)


@given(st.binary(min_size=2, max_size=500).map(lambda b: b + b"\x00" * (len(b) % 2)))
def test_inserted_checksum_verifies(data: bytes) -> None:
    c = checksum(data + b"\x00\x00")
    assert checksum_ok(data + c.to_bytes(2, "big"))


@given(st.binary(max_size=2000))
def test_matches_scapy_checksum(data: bytes) -> None:
    from scapy.utils import checksum as scapy_checksum

    assert checksum(data) == scapy_checksum(data)


def test_pseudo_header_rejects_bad_addresses_and_lengths() -> None:
    with pytest.raises(WireError, match="4 bytes"):
        pseudo_header_sum(b"\x01\x02\x03", bytes(4), 6, 20)
    with pytest.raises(WireError, match="65535"):
        pseudo_header_sum(bytes(4), bytes(4), 6, 0x10000)
