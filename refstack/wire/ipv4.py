"""IPv4 datagrams (RFC 791 §3.1), with options parsed as a list and the fragment fields.

Layout (RFC 791 §3.1)::

     0                   1                   2                   3
    |Version|  IHL  |   DSCP/ECN    |          Total Length         |
    |         Identification        |Flags|      Fragment Offset    |
    |  Time to Live |    Protocol   |         Header Checksum       |
    |                       Source Address                          |
    |                    Destination Address                        |
    |                    Options                    |    Padding    |

The TOS byte is split as RFC 2474 (DSCP, upper 6 bits) and RFC 3168 (ECN, lower 2).
The flags are reserved (the "evil bit" of RFC 3514 when set), DF and MF.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .addresses import Ipv4Addr, ipv4_str
from .checksum import checksum
from .errors import WireError, check_range

HEADER_LEN = 20
MAX_HEADER_LEN = 60
MAX_TOTAL_LEN = 0xFFFF

# Protocol numbers (IANA "Assigned Internet Protocol Numbers").
PROTO_ICMP = 1
PROTO_IGMP = 2
PROTO_TCP = 6
PROTO_UDP = 17

FLAG_EVIL = 0x4  # RFC 3514, reserved bit
FLAG_DF = 0x2
FLAG_MF = 0x1

# Option kinds (RFC 791 §3.1; Router Alert RFC 2113).
OPT_EOL = 0
OPT_NOP = 1
OPT_SECURITY = 130
OPT_LSRR = 131
OPT_SSRR = 137
OPT_RR = 7
OPT_STREAM_ID = 136
OPT_TIMESTAMP = 68
OPT_ROUTER_ALERT = 148

OPTION_NAMES = {
    OPT_EOL: "eol",
    OPT_NOP: "nop",
    OPT_SECURITY: "security",
    OPT_LSRR: "lsrr",
    OPT_SSRR: "ssrr",
    OPT_RR: "record_route",
    OPT_STREAM_ID: "stream_id",
    OPT_TIMESTAMP: "timestamp",
    OPT_ROUTER_ALERT: "router_alert",
}

_HDR = struct.Struct("!BBHHHBBH4s4s")
_PORTS = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class Ipv4Option:
    """One IPv4 option (RFC 791 §3.1): its kind and the bytes after the length octet.

    EOL and NOP are single octets and carry no data.  The copied flag, class and
    number are the three parts of the kind octet.
    """

    kind: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return OPTION_NAMES.get(self.kind, f"option-{self.kind}")

    @property
    def copied(self) -> bool:
        """Copied into every fragment (RFC 791 §3.1, the high bit of the kind)."""
        return bool(self.kind & 0x80)

    def encode(self) -> bytes:
        if self.kind in (OPT_EOL, OPT_NOP):
            if self.data:
                raise WireError("ipv4.option", None, f"{self.name} carries no data")
            return bytes((self.kind,))
        if not 0 <= self.kind <= 255:
            raise WireError("ipv4.option.kind", None, f"{self.kind} is outside 0..255")
        if len(self.data) > MAX_HEADER_LEN - HEADER_LEN - 2:
            raise WireError("ipv4.option.length", None, f"{len(self.data)} data bytes do not fit")
        return bytes((self.kind, len(self.data) + 2)) + self.data


ROUTER_ALERT = Ipv4Option(OPT_ROUTER_ALERT, b"\x00\x00")
"""RFC 2113 Router Alert with value 0, as IGMPv2/v3 messages carry it (RFC 3376 §4)."""


def parse_options(raw: bytes, base: int = HEADER_LEN) -> tuple[Ipv4Option, ...]:
    """Parse the option area of an IPv4 header (RFC 791 §3.1 "Options").

    ``base`` is the offset of ``raw`` in the packet, for error offsets.  Parsing
    stops at EOL; what follows EOL is padding and must be zero on the wire but is
    not checked (hosts ignore it).
    """
    opts: list[Ipv4Option] = []
    i = 0
    n = len(raw)
    while i < n:
        kind = raw[i]
        if kind == OPT_EOL:
            opts.append(Ipv4Option(OPT_EOL))
            break
        if kind == OPT_NOP:
            opts.append(Ipv4Option(OPT_NOP))
            i += 1
            continue
        if i + 1 >= n:
            raise WireError("ipv4.option.length", base + i, f"option {kind} has no length octet")
        length = raw[i + 1]
        if length < 2:
            raise WireError("ipv4.option.length", base + i + 1, f"{length} is below 2")
        if i + length > n:
            raise WireError(
                "ipv4.option.length",
                base + i + 1,
                f"option {kind} of {length} bytes runs past the header ({n - i} left)",
            )
        opts.append(Ipv4Option(kind, raw[i + 2 : i + length]))
        i += length
    return tuple(opts)


def encode_options(options: Iterable[Ipv4Option]) -> bytes:
    """Concatenate options and pad with zero (EOL) octets to a 32-bit boundary."""
    raw = b"".join(o.encode() for o in options)
    raw += b"\x00" * (-len(raw) % 4)
    if len(raw) > MAX_HEADER_LEN - HEADER_LEN:
        raise WireError("ipv4.options", None, f"{len(raw)} bytes exceed the 40 an IPv4 header holds")
    return raw


class Ipv4Packet:
    """A checked view of an IPv4 datagram (RFC 791 §3.1).

    The constructor checks version, IHL, total length against the buffer, and the
    option list; after it returns, no getter can fail.  Bytes after Total Length
    (link-layer padding) are not part of the datagram and are ignored.
    ``truncated=True`` reads a header quoted inside an ICMP error (RFC 792: "Internet
    Header + 64 bits of Original Data"): the datagram may be shorter than its Total
    Length, and a Total Length that disagrees with the bytes present is not an error.
    """

    __slots__ = ("_buf", "_end", "_f", "_hlen", "_options")
    _buf: bytes
    _f: tuple[int, int, int, int, int, int, int, int, bytes, bytes]
    _hlen: int
    _end: int
    _options: tuple[Ipv4Option, ...]

    def __init__(self, data: bytes | bytearray | memoryview, *, truncated: bool = False) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < HEADER_LEN:
            raise WireError("ipv4", 0, f"header needs {HEADER_LEN} bytes, got {n}")
        f = _HDR.unpack_from(buf)
        vihl = f[0]
        if vihl >> 4 != 4:
            raise WireError("ipv4.version", 0, f"{vihl >> 4} is not 4")
        hlen = (vihl & 0x0F) * 4
        if hlen < HEADER_LEN:
            raise WireError("ipv4.ihl", 0, f"{hlen // 4} words is below the minimum 5")
        if hlen > n:
            raise WireError("ipv4.ihl", 0, f"{hlen}-byte header is longer than the {n}-byte buffer")
        total = f[2]
        if total < hlen or total > n:
            if truncated:
                # A quoted header is taken as far as it goes, whatever its Total Length
                # says: Linux checks only IHL and the 8 data bytes (icmp_socket_deliver).
                total = n
            elif total < hlen:
                raise WireError("ipv4.total_length", 2, f"{total} is smaller than the {hlen}-byte header")
            else:
                raise WireError("ipv4.total_length", 2, f"{total} is larger than the {n}-byte buffer")
        self._buf = buf
        self._f = f
        self._hlen = hlen
        self._end = total
        self._options = parse_options(buf[HEADER_LEN:hlen]) if hlen > HEADER_LEN else ()

    # --- header fields -------------------------------------------------------------
    @property
    def version(self) -> int:
        return 4

    @property
    def header_length(self) -> int:
        """Header length in bytes (IHL x 4)."""
        return self._hlen

    @property
    def tos(self) -> int:
        return self._f[1]

    @property
    def dscp(self) -> int:
        return self._f[1] >> 2

    @property
    def ecn(self) -> int:
        return self._f[1] & 0x3

    @property
    def total_length(self) -> int:
        """The Total Length field as carried (may exceed the bytes present when truncated)."""
        return self._f[2]

    @property
    def ident(self) -> int:
        return self._f[3]

    @property
    def flags(self) -> int:
        """The three flag bits: reserved (4), DF (2), MF (1)."""
        return self._f[4] >> 13

    @property
    def evil(self) -> bool:
        return bool(self._f[4] & 0x8000)

    @property
    def dont_fragment(self) -> bool:
        return bool(self._f[4] & 0x4000)

    @property
    def more_fragments(self) -> bool:
        return bool(self._f[4] & 0x2000)

    @property
    def fragment_offset(self) -> int:
        """Fragment Offset in bytes (the field counts 8-octet units, RFC 791 §3.1)."""
        return (self._f[4] & 0x1FFF) * 8

    @property
    def is_fragment(self) -> bool:
        """A fragment is any datagram with MF set or a non-zero offset (RFC 791 §3.2)."""
        return bool(self._f[4] & 0x3FFF)

    @property
    def ttl(self) -> int:
        return self._f[5]

    @property
    def protocol(self) -> int:
        return self._f[6]

    @property
    def checksum(self) -> int:
        return self._f[7]

    @property
    def src(self) -> Ipv4Addr:
        return self._f[8]

    @property
    def dst(self) -> Ipv4Addr:
        return self._f[9]

    @property
    def options(self) -> tuple[Ipv4Option, ...]:
        return self._options

    @property
    def header(self) -> bytes:
        """The header bytes, options included."""
        return self._buf[: self._hlen]

    @property
    def payload(self) -> bytes:
        """The data after the header, up to Total Length (or the buffer's end when truncated)."""
        return self._buf[self._hlen : self._end]

    @property
    def ports(self) -> tuple[int, int]:
        """The first four payload octets as two 16-bit numbers: the source and
        destination ports of TCP and UDP (RFC 9293 §3.1, RFC 768), as a NIC's filter
        reads them.  The caller checks the protocol and that four octets are there."""
        return _PORTS.unpack_from(self._buf, self._hlen)

    @property
    def truncated(self) -> bool:
        return self._end < self._f[2]

    def checksum_ok(self) -> bool:
        """Verify the header checksum (RFC 791 §3.1 "Header Checksum"): the one's
        complement sum of the header words is -0 (see :mod:`refstack.wire.checksum`;
        a header is never all zero, its first octet being 0x4N)."""
        n = int.from_bytes(self._buf[: self._hlen], "big")
        return n % 0xFFFF == 0 and n != 0

    def __bytes__(self) -> bytes:
        return self._buf[: self._end]

    def __repr__(self) -> str:
        frag = ""
        if self.is_fragment:
            frag = f" frag off={self.fragment_offset}{' MF' if self.more_fragments else ''}"
        return (
            f"<Ipv4Packet {ipv4_str(self.src)} > {ipv4_str(self.dst)} proto={self.protocol}"
            f" len={self.total_length} id={self.ident} ttl={self.ttl}{frag}>"
        )


def build_ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: int,
    payload: bytes = b"",
    *,
    ttl: int = 64,
    tos: int = 0,
    ident: int = 0,
    dont_fragment: bool = False,
    more_fragments: bool = False,
    fragment_offset: int = 0,
    evil: bool = False,
    options: Iterable[Ipv4Option] = (),
    checksum_value: int | None = None,
) -> bytes:
    """Emit an IPv4 datagram (RFC 791 §3.1) with its header checksum computed.

    ``fragment_offset`` is in bytes and must be a multiple of 8.  ``checksum_value``
    overrides the computed checksum (to build deliberately broken packets).
    """
    opts = encode_options(options) if options else b""
    hlen = HEADER_LEN + len(opts)
    total = hlen + len(payload)
    if total > MAX_TOTAL_LEN:
        raise WireError("ipv4.total_length", None, f"{total} exceeds {MAX_TOTAL_LEN}")
    if fragment_offset % 8 or not 0 <= fragment_offset <= 0x1FFF * 8:
        raise WireError("ipv4.fragment_offset", None, f"{fragment_offset} is not a multiple of 8 in 0..65528")
    if not (0 <= ttl <= 0xFF and 0 <= tos <= 0xFF and 0 <= ident <= 0xFFFF and 0 <= protocol <= 0xFF):
        check_range("ipv4.ttl", ttl, 0xFF)
        check_range("ipv4.tos", tos, 0xFF)
        check_range("ipv4.ident", ident, 0xFFFF)
        check_range("ipv4.protocol", protocol, 0xFF)
    if len(src) != 4 or len(dst) != 4:
        raise WireError("ipv4.address", None, "addresses must be 4 bytes")
    frag = (
        (0x8000 if evil else 0)
        | (0x4000 if dont_fragment else 0)
        | (0x2000 if more_fragments else 0)
        | (fragment_offset >> 3)
    )
    vihl = 0x40 | (hlen >> 2)
    if checksum_value is None:
        checksum_value = checksum(_HDR.pack(vihl, tos, total, ident, frag, ttl, protocol, 0, src, dst) + opts)
    header = _HDR.pack(vihl, tos, total, ident, frag, ttl, protocol, checksum_value, src, dst)
    return b"".join((header, opts, payload))
