"""Independent reference helpers for the wire tests (deliberately naive, no shared code)."""

from __future__ import annotations


def word_loop_checksum(data: bytes) -> int:
    """RFC 1071 §4.1's word-at-a-time loop, the textbook way."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        while total > 0xFFFF:
            total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + bytes((0, proto)) + length.to_bytes(2, "big")
