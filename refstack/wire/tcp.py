"""TCP segments (RFC 9293 §3.1 "Header Format"), checksummed with the IPv4
pseudo-header (RFC 9293 §3.1 "Checksum").

Layout::

    |          Source Port          |       Destination Port        |
    |                        Sequence Number                        |
    |                    Acknowledgment Number                      |
    |  DOff | Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    |                               |A|E|U|A|P|R|S|F|               |
    |           Checksum            |         Urgent Pointer        |
    |                           [Options]                           |

The flags are returned as one 12-bit value: the eight RFC 9293 control bits
(CWR ECE URG ACK PSH RST SYN FIN) in the low byte, the AE bit of RFC 9768 (AccECN,
formerly NS of RFC 3540) at 0x100, and the three reserved bits above it, so that
nothing on the wire is lost.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from typing import TypeVar

from .addresses import Ipv4Addr
from .checksum import checksum_ok, pseudo_header_base, pseudo_header_sum, transport_checksum
from .errors import WireError, check_range
from .ipv4 import PROTO_TCP
from .tcp_options import (
    Mss,
    Sack,
    SackPermitted,
    TcpOption,
    Timestamps,
    WindowScale,
    encode_options,
    parse_options,
)

HEADER_LEN = 20


_O = TypeVar("_O", Mss, WindowScale, SackPermitted, Sack, Timestamps)

FIN = 0x001
SYN = 0x002
RST = 0x004
PSH = 0x008
ACK = 0x010
URG = 0x020
ECE = 0x040
CWR = 0x080
AE = 0x100


class TcpFlag(enum.IntFlag):
    """The control bits, for readable code; getters return plain ints for speed."""

    FIN = FIN
    SYN = SYN
    RST = RST
    PSH = PSH
    ACK = ACK
    URG = URG
    ECE = ECE
    CWR = CWR
    AE = AE


_LETTERS = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (URG, "U"), (ECE, "E"), (CWR, "W"), (AE, "A"))


def flags_str(flags: int) -> str:
    """tcpdump/packetdrill letters: ``S.`` for SYN|ACK, ``P.`` for PSH|ACK, ``-`` for none."""
    out = "".join(letter for bit, letter in _LETTERS if flags & bit)
    if flags & ACK:
        out += "."
    return out or "-"


_HDR = struct.Struct("!HHIIBBHHH")


class TcpSegment:
    """A checked view of a TCP segment (RFC 9293 §3.1).

    The constructor checks the data offset (at least 5 words, within the buffer)
    and parses the whole option list; afterwards no getter can fail.  The checksum
    is not verified on construction: call :meth:`checksum_ok` with the IPv4
    addresses (it needs the pseudo-header).
    """

    __slots__ = ("_buf", "_f", "_hlen", "_options")
    _buf: bytes
    _f: tuple[int, int, int, int, int, int, int, int, int]
    _hlen: int
    _options: tuple[TcpOption, ...]

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < HEADER_LEN:
            raise WireError("tcp", 0, f"header needs {HEADER_LEN} bytes, got {n}")
        f = _HDR.unpack_from(buf)
        hlen = (f[4] >> 4) * 4
        if hlen < HEADER_LEN:
            raise WireError("tcp.data_offset", 12, f"{hlen // 4} words is below the minimum 5")
        if hlen > n:
            raise WireError("tcp.data_offset", 12, f"{hlen}-byte header is longer than the {n}-byte segment")
        self._buf = buf
        self._f = f
        self._hlen = hlen
        self._options = parse_options(buf[HEADER_LEN:hlen]) if hlen > HEADER_LEN else ()

    @property
    def src_port(self) -> int:
        return self._f[0]

    @property
    def dst_port(self) -> int:
        return self._f[1]

    @property
    def seq(self) -> int:
        return self._f[2]

    @property
    def ack(self) -> int:
        """The Acknowledgment Number field (meaningful only when the ACK flag is set)."""
        return self._f[3]

    @property
    def header_length(self) -> int:
        """Data offset in bytes."""
        return self._hlen

    @property
    def flags(self) -> int:
        """Control bits as described in the module docstring."""
        return ((self._f[4] & 0x0F) << 8) | self._f[5]

    @property
    def window(self) -> int:
        """The raw 16-bit Window field (not scaled: scaling is connection state)."""
        return self._f[6]

    @property
    def checksum(self) -> int:
        return self._f[7]

    @property
    def urgent_pointer(self) -> int:
        return self._f[8]

    @property
    def options(self) -> tuple[TcpOption, ...]:
        """Every option in wire order, NOP and EOL included."""
        return self._options

    @property
    def payload(self) -> bytes:
        return self._buf[self._hlen :]

    @property
    def payload_length(self) -> int:
        return len(self._buf) - self._hlen

    @property
    def segment_length(self) -> int:
        """SEG.LEN of RFC 9293 §3.4: payload octets plus one each for SYN and FIN."""
        f = self._f[5]
        return len(self._buf) - self._hlen + (f & SYN) // SYN + (f & FIN)

    # --- convenience lookups over the option list -----------------------------------
    def _find(self, cls: type[_O]) -> _O | None:
        for opt in self._options:
            if type(opt) is cls:
                return opt
        return None

    @property
    def mss(self) -> int | None:
        opt = self._find(Mss)
        return opt.value if opt is not None else None

    @property
    def window_scale(self) -> int | None:
        opt = self._find(WindowScale)
        return opt.shift if opt is not None else None

    @property
    def sack_permitted(self) -> bool:
        return self._find(SackPermitted) is not None

    @property
    def sack_blocks(self) -> tuple[tuple[int, int], ...]:
        opt = self._find(Sack)
        return opt.blocks if opt is not None else ()

    @property
    def timestamps(self) -> Timestamps | None:
        return self._find(Timestamps)

    def checksum_ok(self, src: Ipv4Addr, dst: Ipv4Addr) -> bool:
        """Verify the checksum over pseudo-header and segment (RFC 9293 §3.1)."""
        return checksum_ok(pseudo_header_sum(src, dst, PROTO_TCP, len(self._buf)), self._buf)

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        return (
            f"<TcpSegment {self.src_port} > {self.dst_port} {flags_str(self.flags)}"
            f" seq={self.seq} ack={self.ack} win={self.window} len={self.payload_length}"
            f" opts={list(self._options)}>"
        )


_HDR_TS = struct.Struct("!HHIIBBHHHIII")
_NOP_NOP_TS = 0x0101080A


def predicted_fields(buf: bytes) -> tuple[int, int, int, int, int, int, int, int, int, int] | None:
    """The fields of a segment of the common shape, or None for any other.

    The common shape is what header prediction (Van Jacobson, RFC 1323 Appendix;
    Linux ``tcp_rcv_established``) expects: no options, or exactly the timestamps
    option in the aligned layout of RFC 7323 Appendix A (NOP NOP kind 8 length 10).
    Returns ``(src_port, dst_port, seq, ack, flags, window, urgent_pointer,
    header_length, tsval, tsecr)`` with ``tsval`` = -1 when there are no options;
    the payload is ``buf[header_length:]``.  Anything else (other options, a short
    buffer, a bad data offset) returns None and goes to :class:`TcpSegment`, which
    checks and parses everything.
    """
    if len(buf) < HEADER_LEN:
        return None
    doff = buf[12] >> 4
    if doff == 5:
        f = _HDR.unpack_from(buf)
        return f[0], f[1], f[2], f[3], ((f[4] & 0x0F) << 8) | f[5], f[6], f[8], HEADER_LEN, -1, 0
    if doff == 8 and len(buf) >= 32:
        g = _HDR_TS.unpack_from(buf)
        if g[9] == _NOP_NOP_TS:
            return g[0], g[1], g[2], g[3], ((g[4] & 0x0F) << 8) | g[5], g[6], g[8], 32, g[10], g[11]
    return None


def build_tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: int,
    dst_port: int,
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = ACK,
    window: int = 65535,
    urgent_pointer: int = 0,
    options: Iterable[TcpOption] = (),
    payload: bytes | bytearray = b"",
    checksum_value: int | None = None,
    options_bytes: bytes | None = None,
    pseudo_base: int | None = None,
    partial_checksum: bool = False,
) -> bytes:
    """Emit a TCP segment with the pseudo-header checksum for ``src``/``dst`` (RFC 9293 §3.1).

    ``flags`` is the 12-bit value of :attr:`TcpSegment.flags`.  Options are emitted in
    the order given and zero-padded; ``options_bytes`` instead gives the encoded option
    area as is (a multiple of 4 bytes: the stack's fast path for NOP NOP TS).
    ``checksum_value`` overrides the checksum.  ``pseudo_base`` is the connection's
    constant pseudo-header sum (:func:`~refstack.wire.checksum.pseudo_header_base`),
    when the caller keeps it.  ``partial_checksum``: the checksum field holds the
    pseudo-header sum only, not complemented, for a device that finishes it
    (checksum offload, :mod:`refstack.nic.offload`; Linux CHECKSUM_PARTIAL).
    """
    if options_bytes is not None:
        if len(options_bytes) & 3 or len(options_bytes) > 40:
            raise WireError("tcp.options", None, f"{len(options_bytes)} bytes: not 0..40 in 32-bit words")
        opts = options_bytes
    else:
        opts = encode_options(options) if options else b""
    hlen = HEADER_LEN + len(opts)
    if not (
        0 <= src_port <= 0xFFFF
        and 0 <= dst_port <= 0xFFFF
        and 0 <= seq <= 0xFFFFFFFF
        and 0 <= ack <= 0xFFFFFFFF
        and 0 <= flags <= 0xFFF
        and 0 <= window <= 0xFFFF
        and 0 <= urgent_pointer <= 0xFFFF
    ):  # one test on the hot path; the named checks say which field is wrong
        check_range("tcp.src_port", src_port, 0xFFFF)
        check_range("tcp.dst_port", dst_port, 0xFFFF)
        check_range("tcp.seq", seq, 0xFFFFFFFF)
        check_range("tcp.ack", ack, 0xFFFFFFFF)
        check_range("tcp.flags", flags, 0xFFF)
        check_range("tcp.window", window, 0xFFFF)
        check_range("tcp.urgent_pointer", urgent_pointer, 0xFFFF)
    if pseudo_base is None and checksum_value is None:
        pseudo_base = pseudo_header_base(src, dst, PROTO_TCP)
    if checksum_value is None and partial_checksum:
        assert pseudo_base is not None
        checksum_value = (pseudo_base + hlen + len(payload)) % 0xFFFF or 0xFFFF
    if checksum_value is None:
        assert pseudo_base is not None
        header = _HDR.pack(
            src_port, dst_port, seq, ack, (hlen << 2) | (flags >> 8), flags & 0xFF, window, 0, urgent_pointer
        )
        checksum_value = transport_checksum(pseudo_base, header + opts, payload)
    header = _HDR.pack(
        src_port,
        dst_port,
        seq,
        ack,
        (hlen << 2) | (flags >> 8),
        flags & 0xFF,
        window,
        checksum_value,
        urgent_pointer,
    )
    return b"".join((header, opts, payload))
