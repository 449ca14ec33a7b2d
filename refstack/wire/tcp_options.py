"""TCP options (RFC 9293 §3.1 "Options", §3.2 "Specific Option Definitions").

Kinds in common use, each a small immutable value:

============  ====  ======  =====================================================
option        kind  length  defined in
============  ====  ======  =====================================================
EOL              0       1  RFC 9293 §3.2 (end of option list)
NOP              1       1  RFC 9293 §3.2 (no-operation, used for alignment)
MSS              2       4  RFC 9293 §3.2, §3.7.1; RFC 6691
Window scale     3       3  RFC 7323 §2.2
SACK-permit      4       2  RFC 2018 §2
SACK             5  2 + 8n  RFC 2018 §3 (n = 1..4 blocks)
Timestamps       8      10  RFC 7323 §3.2
============  ====  ======  =====================================================

Any other kind is kept as :class:`UnknownOption` with its raw data, so a segment
re-emitted from its parsed options is byte-identical.  Parsing follows the rules of
RFC 9293 §3.1: EOL ends the list, NOP is one octet, every other option carries a
length octet that counts the kind and length octets and must not run past the header.
A known kind with the wrong length is malformed (RFC 9293 §3.2 fixes those lengths).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import WireError, check_range

KIND_EOL = 0
KIND_NOP = 1
KIND_MSS = 2
KIND_WINDOW_SCALE = 3
KIND_SACK_PERMITTED = 4
KIND_SACK = 5
KIND_TIMESTAMPS = 8

MAX_OPTIONS_LEN = 40  # data offset 15 words minus the 20-byte fixed header


@dataclass(frozen=True, slots=True)
class Eol:
    """End of option list (kind 0)."""

    kind = KIND_EOL

    def encode(self) -> bytes:
        return b"\x00"


@dataclass(frozen=True, slots=True)
class Nop:
    """No-operation (kind 1)."""

    kind = KIND_NOP

    def encode(self) -> bytes:
        return b"\x01"


@dataclass(frozen=True, slots=True)
class Mss:
    """Maximum segment size (kind 2, RFC 9293 §3.7.1), only legal on SYNs."""

    value: int
    kind = KIND_MSS

    def encode(self) -> bytes:
        check_range("tcp.option.mss", self.value, 0xFFFF)
        return b"\x02\x04" + self.value.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class WindowScale:
    """Window scale shift count (kind 3, RFC 7323 §2.2). Shifts above 14 are carried
    as sent; RFC 7323 §2.3 says the receiver uses 14 in that case."""

    shift: int
    kind = KIND_WINDOW_SCALE

    def encode(self) -> bytes:
        check_range("tcp.option.window_scale", self.shift, 0xFF)
        return bytes((3, 3, self.shift))


@dataclass(frozen=True, slots=True)
class SackPermitted:
    """SACK-permitted (kind 4, RFC 2018 §2), only legal on SYNs."""

    kind = KIND_SACK_PERMITTED

    def encode(self) -> bytes:
        return b"\x04\x02"


@dataclass(frozen=True, slots=True)
class Sack:
    """Selective acknowledgment blocks (kind 5, RFC 2018 §3): (left, right) edges."""

    blocks: tuple[tuple[int, int], ...]
    kind = KIND_SACK

    def encode(self) -> bytes:
        if not 1 <= len(self.blocks) <= 4:
            raise WireError("tcp.option.sack", None, f"{len(self.blocks)} blocks, need 1..4")
        out = bytearray((5, 2 + 8 * len(self.blocks)))
        for left, right in self.blocks:
            check_range("tcp.option.sack.left", left, 0xFFFFFFFF)
            check_range("tcp.option.sack.right", right, 0xFFFFFFFF)
            out += _PAIR.pack(left, right)
        return bytes(out)

    def encode_aligned(self) -> bytes:
        """NOP NOP then the option: 4-byte aligned, as Linux lays SACK out."""
        return b"\x01\x01" + self.encode()


@dataclass(frozen=True, slots=True)
class Timestamps:
    """Timestamps (kind 8, RFC 7323 §3.2): TSval and TSecr."""

    tsval: int
    tsecr: int
    kind = KIND_TIMESTAMPS

    def encode(self) -> bytes:
        check_range("tcp.option.tsval", self.tsval, 0xFFFFFFFF)
        check_range("tcp.option.tsecr", self.tsecr, 0xFFFFFFFF)
        return b"\x08\x0a" + _PAIR.pack(self.tsval, self.tsecr)


@dataclass(frozen=True, slots=True)
class UnknownOption:
    """Any other kind, kept raw: ``data`` is what follows the length octet."""

    kind: int
    data: bytes

    def encode(self) -> bytes:
        if self.kind in (KIND_EOL, KIND_NOP):
            raise WireError("tcp.option.kind", None, f"kind {self.kind} has no length octet")
        check_range("tcp.option.kind", self.kind, 0xFF)
        if len(self.data) > MAX_OPTIONS_LEN - 2:
            raise WireError("tcp.option.length", None, f"{len(self.data)} data bytes do not fit")
        return bytes((self.kind, len(self.data) + 2)) + self.data


TcpOption = Eol | Nop | Mss | WindowScale | SackPermitted | Sack | Timestamps | UnknownOption

EOL = Eol()
NOP = Nop()
SACK_PERMITTED = SackPermitted()

_PAIR = struct.Struct("!II")
_FIXED_LENGTHS = {KIND_MSS: 4, KIND_WINDOW_SCALE: 3, KIND_SACK_PERMITTED: 2, KIND_TIMESTAMPS: 10}
_NAMES = {
    KIND_MSS: "mss",
    KIND_WINDOW_SCALE: "window_scale",
    KIND_SACK_PERMITTED: "sack_permitted",
    KIND_TIMESTAMPS: "timestamps",
}


def parse_options(raw: bytes, base: int = 20) -> tuple[TcpOption, ...]:
    """Parse a TCP option area (RFC 9293 §3.1).  ``base`` is its offset in the
    segment, so that a :class:`WireError` points at the offending byte.

    Bytes after EOL are padding and are not parsed.
    """
    opts: list[TcpOption] = []
    append = opts.append
    i = 0
    n = len(raw)
    while i < n:
        kind = raw[i]
        if kind == KIND_NOP:
            append(NOP)
            i += 1
            continue
        if kind == KIND_EOL:
            append(EOL)
            break
        if i + 1 >= n:
            raise WireError("tcp.option.length", base + i, f"kind {kind} has no length octet")
        length = raw[i + 1]
        if length < 2:
            raise WireError("tcp.option.length", base + i + 1, f"kind {kind} length {length} is below 2")
        end = i + length
        if end > n:
            raise WireError(
                "tcp.option.length",
                base + i + 1,
                f"kind {kind} length {length} runs past the header ({n - i} bytes left)",
            )
        if kind == KIND_TIMESTAMPS and length == 10:
            tsval, tsecr = _PAIR.unpack_from(raw, i + 2)
            append(Timestamps(tsval, tsecr))
        elif kind == KIND_SACK:
            if (length - 2) % 8 or length == 2:
                raise WireError("tcp.option.sack.length", base + i + 1, f"{length} is not 2 + 8n with n >= 1")
            append(Sack(tuple(_PAIR.iter_unpack(raw[i + 2 : end]))))
        elif kind == KIND_MSS and length == 4:
            append(Mss((raw[i + 2] << 8) | raw[i + 3]))
        elif kind == KIND_WINDOW_SCALE and length == 3:
            append(WindowScale(raw[i + 2]))
        elif kind == KIND_SACK_PERMITTED and length == 2:
            append(SACK_PERMITTED)
        elif kind in _FIXED_LENGTHS:
            raise WireError(
                f"tcp.option.{_NAMES[kind]}.length",
                base + i + 1,
                f"{length} is not the fixed length {_FIXED_LENGTHS[kind]}",
            )
        else:
            append(UnknownOption(kind, raw[i + 2 : end]))
        i = end
    return tuple(opts)


def encode_options(options: Iterable[TcpOption]) -> bytes:
    """Emit options in the order given, padded with zeros to a 32-bit boundary
    (RFC 9293 §3.1 "the TCP header padding ... is composed of zeros")."""
    raw = b"".join([o.encode() for o in options])
    if len(raw) & 3:
        raw += b"\x00" * (4 - (len(raw) & 3))
    if len(raw) > MAX_OPTIONS_LEN:
        raise WireError("tcp.options", None, f"{len(raw)} bytes exceed the {MAX_OPTIONS_LEN} a header holds")
    return raw
