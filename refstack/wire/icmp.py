"""ICMPv4 messages (RFC 792), with the next-hop MTU of RFC 1191 §4 and the quoting
rule of RFC 1812 §4.3.2.3.

Layout (RFC 792, every message)::

     0                   1                   2                   3
    |     Type      |     Code      |          Checksum             |
    |              rest of header (meaning depends on Type)         |
    |                          body ...                             |

The "rest of header" word is kept raw (:attr:`IcmpMessage.rest`) and read through
typed getters: identifier and sequence number (echo, timestamp), gateway address
(redirect), pointer (parameter problem), next-hop MTU in its low 16 bits
(destination unreachable code 4, RFC 1191 §4).

Error messages (destination unreachable, source quench, redirect, time exceeded,
parameter problem) carry "Internet Header + 64 bits of Original Data Datagram"
(RFC 792).  The view requires exactly that much: a structurally valid IPv4 header
followed by at least 8 bytes, as Linux does (``icmp_socket_deliver`` drops anything
shorter than ``ihl * 4 + 8``).  RFC 1812 §4.3.2.3 lets a sender quote more, up to a
576-byte ICMP datagram; :func:`quote_datagram` cuts a datagram that way.

The checksum covers the whole ICMP message (RFC 792 "Checksum"); it is not verified
on construction: call :meth:`IcmpMessage.checksum_ok`.  This module holds no
protocol state: rate limits and replies belong to the stack.
"""

from __future__ import annotations

import struct

from .addresses import Ipv4Addr, ipv4_str
from .checksum import checksum, checksum_ok
from .errors import WireError, check_range
from .ipv4 import Ipv4Packet

HEADER_LEN = 8
QUOTED_DATA_LEN = 8  # RFC 792: "64 bits of Original Data Datagram"
MAX_ERROR_DATAGRAM = 576  # RFC 1812 §4.3.2.3: an ICMP error datagram should not exceed 576 bytes

# Types (RFC 792).
ECHO_REPLY = 0
DEST_UNREACHABLE = 3
SOURCE_QUENCH = 4
REDIRECT = 5
ECHO_REQUEST = 8
TIME_EXCEEDED = 11
PARAMETER_PROBLEM = 12
TIMESTAMP = 13
TIMESTAMP_REPLY = 14

ERROR_TYPES = frozenset((DEST_UNREACHABLE, SOURCE_QUENCH, REDIRECT, TIME_EXCEEDED, PARAMETER_PROBLEM))

TYPE_NAMES = {
    ECHO_REPLY: "echo-reply",
    DEST_UNREACHABLE: "dest-unreachable",
    SOURCE_QUENCH: "source-quench",
    REDIRECT: "redirect",
    ECHO_REQUEST: "echo-request",
    TIME_EXCEEDED: "time-exceeded",
    PARAMETER_PROBLEM: "parameter-problem",
    TIMESTAMP: "timestamp",
    TIMESTAMP_REPLY: "timestamp-reply",
}

# Destination unreachable codes (RFC 792; RFC 1191 §4; RFC 1812 §5.2.7.1).
UNREACH_NET = 0
UNREACH_HOST = 1
UNREACH_PROTOCOL = 2
UNREACH_PORT = 3
UNREACH_FRAG_NEEDED = 4
UNREACH_SOURCE_ROUTE_FAILED = 5
UNREACH_NET_UNKNOWN = 6
UNREACH_HOST_UNKNOWN = 7
UNREACH_HOST_ISOLATED = 8
UNREACH_NET_PROHIBITED = 9
UNREACH_HOST_PROHIBITED = 10
UNREACH_NET_TOS = 11
UNREACH_HOST_TOS = 12
UNREACH_ADMIN_PROHIBITED = 13
UNREACH_PRECEDENCE_VIOLATION = 14
UNREACH_PRECEDENCE_CUTOFF = 15

# Redirect codes (RFC 792).
REDIRECT_NET = 0
REDIRECT_HOST = 1
REDIRECT_TOS_NET = 2
REDIRECT_TOS_HOST = 3

# Time exceeded codes (RFC 792).
TIME_EXCEEDED_TTL = 0
TIME_EXCEEDED_REASSEMBLY = 1

# Parameter problem codes (RFC 792 code 0; RFC 1122 §3.2.2.5 adds 1, "required option is missing").
PARAMETER_POINTER = 0
PARAMETER_MISSING_OPTION = 1

_HDR = struct.Struct("!BBH4s")


class IcmpMessage:
    """A checked view of an ICMPv4 message (RFC 792).

    The constructor checks the 8-byte header and, for error types, that the body
    quotes an IPv4 header plus at least 8 bytes of original data (which it parses
    once, see :attr:`quoted`); afterwards no getter can fail.  The typed getters
    read the "rest of header" word whatever the type: each is meaningful only for
    the types named in its docstring.  Bodies of other types (echo data,
    timestamps) are not interpreted.
    """

    __slots__ = ("_buf", "_f", "_quoted")
    _buf: bytes
    _f: tuple[int, int, int, bytes]
    _quoted: Ipv4Packet | None

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < HEADER_LEN:
            raise WireError("icmp", 0, f"header needs {HEADER_LEN} bytes, got {n}")
        f = _HDR.unpack_from(buf)
        quoted = None
        if f[0] in ERROR_TYPES:
            body = buf[HEADER_LEN:]
            try:
                quoted = Ipv4Packet(body, truncated=True)
            except WireError as e:
                offset = HEADER_LEN + (e.offset or 0)
                raise WireError("icmp.quoted", offset, f"{e.field}: {e.reason}") from e
            hlen = quoted.header_length
            if len(body) - hlen < QUOTED_DATA_LEN:
                raise WireError(
                    "icmp.quoted",
                    HEADER_LEN + hlen,
                    f"{len(body) - hlen} bytes of original data after the quoted header,"
                    f" RFC 792 requires {QUOTED_DATA_LEN}",
                )
        self._buf = buf
        self._f = f
        self._quoted = quoted

    @property
    def type(self) -> int:
        return self._f[0]

    @property
    def code(self) -> int:
        return self._f[1]

    @property
    def checksum(self) -> int:
        return self._f[2]

    @property
    def rest(self) -> bytes:
        """The 4 bytes after the checksum ("rest of header"), raw."""
        return self._f[3]

    @property
    def body(self) -> bytes:
        """Everything after the 8-byte header (echo data, quoted datagram, timestamps)."""
        return self._buf[HEADER_LEN:]

    @property
    def ident(self) -> int:
        """Identifier (echo, echo reply, timestamp, timestamp reply): bytes 4-5."""
        return (self._buf[4] << 8) | self._buf[5]

    @property
    def sequence(self) -> int:
        """Sequence number (echo, echo reply, timestamp, timestamp reply): bytes 6-7."""
        return (self._buf[6] << 8) | self._buf[7]

    @property
    def next_hop_mtu(self) -> int:
        """Next-hop MTU of a "fragmentation needed" (type 3 code 4, RFC 1191 §4): bytes 6-7.

        Zero from routers that predate RFC 1191.
        """
        return (self._buf[6] << 8) | self._buf[7]

    @property
    def pointer(self) -> int:
        """Octet of the quoted datagram in error (parameter problem, RFC 792): byte 4."""
        return self._buf[4]

    @property
    def gateway(self) -> Ipv4Addr:
        """Gateway Internet address (redirect, RFC 792): bytes 4-7."""
        return self._f[3]

    @property
    def is_error(self) -> bool:
        """True for the error types of RFC 792: 3, 4, 5, 11, 12."""
        return self._quoted is not None

    @property
    def quoted(self) -> Ipv4Packet | None:
        """The quoted datagram of an error message (header + at least 8 bytes,
        ``truncated=True``); ``None`` for non-error types."""
        return self._quoted

    def checksum_ok(self) -> bool:
        """Verify the checksum over the whole message (RFC 792 "Checksum")."""
        return checksum_ok(self._buf)

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        t = self._f[0]
        name = TYPE_NAMES.get(t, f"type-{t}")
        extra = ""
        if t in (ECHO_REQUEST, ECHO_REPLY, TIMESTAMP, TIMESTAMP_REPLY):
            extra = f" id={self.ident} seq={self.sequence}"
        elif t == DEST_UNREACHABLE and self._f[1] == UNREACH_FRAG_NEEDED:
            extra = f" mtu={self.next_hop_mtu}"
        elif t == PARAMETER_PROBLEM:
            extra = f" ptr={self.pointer}"
        elif t == REDIRECT:
            extra = f" gw={ipv4_str(self._f[3])}"
        if self._quoted is not None:
            extra += f" quoted={self._quoted!r}"
        return f"<IcmpMessage {name} code={self._f[1]}{extra} len={len(self._buf)}>"


def build_icmp(
    type: int,
    code: int,
    rest: bytes = b"\0\0\0\0",
    body: bytes = b"",
    *,
    checksum_value: int | None = None,
) -> bytes:
    """Emit any ICMP message (RFC 792) with its checksum computed over the whole message.

    Nothing about ``body`` is checked (an error type with a short quote can be built
    on purpose).  ``checksum_value`` overrides the checksum.
    """
    check_range("icmp.type", type, 0xFF)
    check_range("icmp.code", code, 0xFF)
    if len(rest) != 4:
        raise WireError("icmp.rest", None, f"needs 4 bytes, got {len(rest)}")
    if checksum_value is not None:
        check_range("icmp.checksum", checksum_value, 0xFFFF)
    msg = _HDR.pack(type, code, 0, bytes(rest)) + bytes(body)
    if checksum_value is None:
        checksum_value = checksum(msg)
    return msg[:2] + checksum_value.to_bytes(2, "big") + msg[4:]


def build_icmp_echo(ident: int, sequence: int, data: bytes = b"", *, reply: bool = False) -> bytes:
    """Echo request (type 8) or, with ``reply=True``, echo reply (type 0) (RFC 792)."""
    check_range("icmp.ident", ident, 0xFFFF)
    check_range("icmp.sequence", sequence, 0xFFFF)
    return build_icmp(ECHO_REPLY if reply else ECHO_REQUEST, 0, struct.pack("!HH", ident, sequence), data)


def build_icmp_unreachable(code: int, quoted: bytes, *, next_hop_mtu: int = 0) -> bytes:
    """Destination unreachable (type 3, RFC 792) quoting ``quoted`` (see :func:`quote_datagram`).

    ``next_hop_mtu`` goes in the low 16 bits of the rest word (RFC 1191 §4) and is
    only allowed with code 4 (fragmentation needed): for other codes the word is unused
    and must be zero (RFC 792).
    """
    check_range("icmp.code", code, 0xFF)
    check_range("icmp.next_hop_mtu", next_hop_mtu, 0xFFFF)
    if next_hop_mtu and code != UNREACH_FRAG_NEEDED:
        raise WireError("icmp.next_hop_mtu", None, f"only code {UNREACH_FRAG_NEEDED} carries one, not {code}")
    return build_icmp(DEST_UNREACHABLE, code, struct.pack("!HH", 0, next_hop_mtu), quoted)


def build_icmp_time_exceeded(code: int, quoted: bytes) -> bytes:
    """Time exceeded (type 11, RFC 792): code 0 TTL exceeded in transit, 1 reassembly."""
    return build_icmp(TIME_EXCEEDED, code, b"\0\0\0\0", quoted)


def build_icmp_parameter_problem(pointer: int, quoted: bytes, *, code: int = PARAMETER_POINTER) -> bytes:
    """Parameter problem (type 12, RFC 792): ``pointer`` is the octet of ``quoted`` in error."""
    check_range("icmp.pointer", pointer, 0xFF)
    return build_icmp(PARAMETER_PROBLEM, code, bytes((pointer, 0, 0, 0)), quoted)


def build_icmp_redirect(code: int, gateway: Ipv4Addr, quoted: bytes) -> bytes:
    """Redirect (type 5, RFC 792) to ``gateway``."""
    if len(gateway) != 4:
        raise WireError("icmp.gateway", None, f"needs 4 bytes, got {len(gateway)}")
    return build_icmp(REDIRECT, code, gateway, quoted)


def quote_datagram(ip_packet: bytes, max_icmp_len: int = MAX_ERROR_DATAGRAM) -> bytes:
    """The part of an offending datagram an ICMP error quotes (RFC 1812 §4.3.2.3).

    As much of ``ip_packet`` (up to its Total Length) as keeps the whole error
    datagram -- a 20-byte IPv4 header without options, the 8-byte ICMP header and the
    quote -- within ``max_icmp_len`` (576 by default; Linux ``icmp_send`` uses the
    smaller of the route MTU and 576), but never less than the header plus 8 bytes of
    data (RFC 792), nor more than there is.  (Linux differs only for a limit below
    that floor: it sends no error when fewer than 21 bytes would remain, and
    otherwise cuts the quote to fit.)  ``ip_packet`` must start with a structurally
    valid IPv4 header (else the :class:`Ipv4Packet` :class:`WireError`).
    """
    check_range("icmp.max_icmp_len", max_icmp_len, 0xFFFF)
    packet = Ipv4Packet(ip_packet, truncated=True)
    room = max_icmp_len - 20 - HEADER_LEN
    keep = max(room, packet.header_length + QUOTED_DATA_LEN)
    return bytes(packet)[:keep]
