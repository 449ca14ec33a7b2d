"""UDP datagrams (RFC 768), checksummed with the IPv4 pseudo-header.

Layout (RFC 768 "Format")::

    |          Source Port          |       Destination Port        |
    |            Length             |           Checksum            |
    |                          data octets ...

Length counts header and data, so it is at least 8.  The checksum covers the
pseudo-header (source and destination address, zero, protocol 17, UDP length), the
header and the data.  A transmitted checksum of zero means "none was computed"
(RFC 768 "Fields"); a computed checksum of zero is therefore sent as all ones.
Receivers must accept a zero checksum and verify any other (RFC 1122 §4.1.3.4);
whether a host may *send* without one is policy and is left to the caller.
"""

from __future__ import annotations

import struct

from .addresses import Ipv4Addr
from .checksum import checksum, checksum_ok, pseudo_header_sum
from .errors import WireError, check_range
from .ipv4 import PROTO_UDP

HEADER_LEN = 8
MAX_LENGTH = 0xFFFF


_HDR = struct.Struct("!HHHH")


class UdpDatagram:
    """A checked view of a UDP datagram (RFC 768).

    The constructor checks the Length field (at least 8, at most the buffer); bytes
    past Length (link or IP padding) are not part of the datagram and are ignored.
    After it returns no getter can fail.  The checksum is not verified on
    construction: call :meth:`checksum_ok` with the IPv4 addresses.
    """

    __slots__ = ("_buf", "_f")
    _buf: bytes
    _f: tuple[int, int, int, int]

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < HEADER_LEN:
            raise WireError("udp", 0, f"header needs {HEADER_LEN} bytes, got {n}")
        f = _HDR.unpack_from(buf)
        length = f[2]
        if length < HEADER_LEN:
            raise WireError("udp.length", 4, f"{length} is smaller than the {HEADER_LEN}-byte header")
        if length > n:
            raise WireError("udp.length", 4, f"{length} is larger than the {n}-byte buffer")
        self._buf = buf[:length] if length < n else buf
        self._f = f

    @property
    def src_port(self) -> int:
        return self._f[0]

    @property
    def dst_port(self) -> int:
        return self._f[1]

    @property
    def length(self) -> int:
        """The Length field: header plus data, in bytes."""
        return self._f[2]

    @property
    def checksum(self) -> int:
        return self._f[3]

    @property
    def has_checksum(self) -> bool:
        """False when the sender computed none (a zero field, RFC 768)."""
        return self._f[3] != 0

    @property
    def payload(self) -> bytes:
        """The data octets, up to Length."""
        return self._buf[HEADER_LEN:]

    def checksum_ok(self, src: Ipv4Addr, dst: Ipv4Addr) -> bool:
        """Verify the checksum over pseudo-header and datagram (RFC 768).

        True when no checksum was sent (a zero field): RFC 1122 §4.1.3.4 requires
        such datagrams to be accepted.  Check :attr:`has_checksum` to tell them apart.
        """
        if self._f[3] == 0:
            return True
        return checksum_ok(pseudo_header_sum(src, dst, PROTO_UDP, self._f[2]), self._buf)

    def __bytes__(self) -> bytes:
        """The datagram up to Length (padding dropped)."""
        return self._buf

    def __repr__(self) -> str:
        ck = f"{self._f[3]:#06x}" if self._f[3] else "none"
        return f"<UdpDatagram {self.src_port} > {self.dst_port} len={self.length} cksum={ck}>"


def build_udp(
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: int,
    dst_port: int,
    payload: bytes = b"",
    *,
    checksum_value: int | None = None,
    no_checksum: bool = False,
) -> bytes:
    """Emit a UDP datagram with the pseudo-header checksum for ``src_ip``/``dst_ip`` (RFC 768).

    A computed checksum of zero is sent as 0xFFFF (RFC 768 "Fields").  ``no_checksum``
    sends 0, "no checksum".  ``checksum_value`` puts any value in the field instead
    (for deliberately broken datagrams) and cannot be combined with ``no_checksum``.
    The Length field limits the datagram to 65535 bytes; the IP layer carrying it
    limits it further (65515 over IPv4 without options) and checks that itself.
    """
    check_range("udp.src_port", src_port, 0xFFFF)
    check_range("udp.dst_port", dst_port, 0xFFFF)
    length = HEADER_LEN + len(payload)
    if length > MAX_LENGTH:
        raise WireError("udp.length", None, f"{length} exceeds {MAX_LENGTH}")
    if len(src_ip) != 4 or len(dst_ip) != 4:
        raise WireError("ipv4.address", None, "addresses must be 4 bytes")
    if checksum_value is not None:
        if no_checksum:
            raise WireError("udp.checksum", None, "checksum_value and no_checksum are exclusive")
        check_range("udp.checksum", checksum_value, 0xFFFF)
        value = checksum_value
    elif no_checksum:
        value = 0
    else:
        value = (
            checksum(
                pseudo_header_sum(src_ip, dst_ip, PROTO_UDP, length),
                _HDR.pack(src_port, dst_port, length, 0),
                payload,
            )
            or 0xFFFF
        )
    return _HDR.pack(src_port, dst_port, length, value) + payload
