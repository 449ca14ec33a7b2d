"""ARP packets (RFC 826 "Packet format"), generic in hardware and protocol address sizes.

Layout (RFC 826)::

    | ar$hrd (2) | ar$pro (2) | ar$hln (1) | ar$pln (1) | ar$op (2) |
    | ar$sha (hln) | ar$spa (pln) | ar$tha (hln) | ar$tpa (pln) |

Ethernet (hardware type 1, RFC 826; IANA "Hardware Types") with IPv4 (protocol
type 0x0800, the EtherType) gives hln 6, pln 4 and a 28-byte packet.  Anything after
the addresses (the Ethernet minimum-frame padding) is not part of the packet and is
ignored.  The ARP cache and the replies it drives are protocol state and live
elsewhere.
"""

from __future__ import annotations

import struct

from .addresses import Ipv4Addr, MacAddr, ipv4_str, mac_str
from .errors import WireError, check_range

FIXED_LEN = 8
ETHERNET_IPV4_LEN = FIXED_LEN + 2 * (6 + 4)

OP_REQUEST = 1
OP_REPLY = 2

HTYPE_ETHERNET = 1
PTYPE_IPV4 = 0x0800

_FIXED = struct.Struct("!HHBBH")


def _addresses(hlen: int, plen: int) -> tuple[tuple[str, int, str, int], ...]:
    """The four addresses in wire order: name, size, and the length field (and its offset) sizing it."""
    return (
        ("sender_hw", hlen, "arp.hlen", 4),
        ("sender_proto", plen, "arp.plen", 5),
        ("target_hw", hlen, "arp.hlen", 4),
        ("target_proto", plen, "arp.plen", 5),
    )


class ArpPacket:
    """A checked view of an ARP packet (RFC 826).

    The constructor checks that the fixed part and all four addresses, sized by
    ``hlen`` and ``plen``, are present; afterwards no getter can fail.  A truncated
    address is blamed on the length field that sizes it (``arp.hlen`` at offset 4 or
    ``arp.plen`` at offset 5), taking the addresses in wire order.
    """

    __slots__ = ("_buf", "_f", "_sha", "_spa", "_tha", "_tpa")
    _buf: bytes
    _f: tuple[int, int, int, int, int]
    _sha: bytes
    _spa: bytes
    _tha: bytes
    _tpa: bytes

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < FIXED_LEN:
            raise WireError("arp", 0, f"header needs {FIXED_LEN} bytes, got {n}")
        f = _FIXED.unpack_from(buf)
        hlen, plen = f[2], f[3]
        addrs: list[bytes] = []
        i = FIXED_LEN
        for name, size, field, offset in _addresses(hlen, plen):
            if i + size > n:
                raise WireError(
                    field,
                    offset,
                    f"{name} of {size} bytes at offset {i} runs past the {n}-byte buffer"
                    f" (hlen={hlen}, plen={plen} need {FIXED_LEN + 2 * (hlen + plen)})",
                )
            addrs.append(buf[i : i + size])
            i += size
        self._buf = buf[:i]
        self._f = f
        self._sha, self._spa, self._tha, self._tpa = addrs

    @property
    def htype(self) -> int:
        """Hardware address space (ar$hrd), 1 for Ethernet."""
        return self._f[0]

    @property
    def ptype(self) -> int:
        """Protocol address space (ar$pro), an EtherType: 0x0800 for IPv4."""
        return self._f[1]

    @property
    def hlen(self) -> int:
        return self._f[2]

    @property
    def plen(self) -> int:
        return self._f[3]

    @property
    def op(self) -> int:
        """Opcode (ar$op): OP_REQUEST or OP_REPLY (RFC 826); other values are carried as is."""
        return self._f[4]

    @property
    def sender_hw(self) -> bytes:
        return self._sha

    @property
    def sender_proto(self) -> bytes:
        return self._spa

    @property
    def target_hw(self) -> bytes:
        return self._tha

    @property
    def target_proto(self) -> bytes:
        return self._tpa

    @property
    def is_ethernet_ipv4(self) -> bool:
        """Ethernet hardware and IPv4 protocol addresses, with their 6 and 4 byte sizes."""
        f = self._f
        return f[0] == HTYPE_ETHERNET and f[1] == PTYPE_IPV4 and f[2] == 6 and f[3] == 4

    def __bytes__(self) -> bytes:
        """The packet without any trailing padding."""
        return self._buf

    def __repr__(self) -> str:
        if self.is_ethernet_ipv4:
            spa, tpa, sha = ipv4_str(self._spa), ipv4_str(self._tpa), mac_str(self._sha)
            if self.op == OP_REQUEST:
                return f"<ArpPacket who-has {tpa} tell {spa} ({sha})>"
            if self.op == OP_REPLY:
                return f"<ArpPacket {spa} is-at {sha} (to {tpa})>"
        return (
            f"<ArpPacket op={self.op} htype={self.htype} ptype={self.ptype:#06x}"
            f" sha={self._sha.hex()} spa={self._spa.hex()} tha={self._tha.hex()} tpa={self._tpa.hex()}>"
        )


def build_arp_raw(
    *,
    htype: int,
    ptype: int,
    op: int,
    sender_hw: bytes,
    sender_proto: bytes,
    target_hw: bytes,
    target_proto: bytes,
) -> bytes:
    """Emit an ARP packet for any address spaces (RFC 826); hlen and plen come from the
    address lengths, which must agree between sender and target and fit one octet."""
    check_range("arp.htype", htype, 0xFFFF)
    check_range("arp.ptype", ptype, 0xFFFF)
    check_range("arp.op", op, 0xFFFF)
    hlen, plen = len(sender_hw), len(sender_proto)
    if len(target_hw) != hlen:
        raise WireError("arp.hlen", None, f"target_hw has {len(target_hw)} bytes, sender_hw {hlen}")
    if len(target_proto) != plen:
        raise WireError("arp.plen", None, f"target_proto has {len(target_proto)} bytes, sender_proto {plen}")
    check_range("arp.hlen", hlen, 0xFF)
    check_range("arp.plen", plen, 0xFF)
    return _FIXED.pack(htype, ptype, hlen, plen, op) + sender_hw + sender_proto + target_hw + target_proto


def build_arp(
    op: int,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_mac: MacAddr,
    target_ip: Ipv4Addr,
) -> bytes:
    """Emit an Ethernet/IPv4 ARP packet (RFC 826): 28 bytes, hlen 6, plen 4.

    A request carries the zero MAC (or whatever the caller wants) as ``target_mac``;
    this builder does not choose it.
    """
    if len(sender_mac) != 6 or len(target_mac) != 6:
        raise WireError("arp.hlen", None, "Ethernet addresses must be 6 bytes")
    if len(sender_ip) != 4 or len(target_ip) != 4:
        raise WireError("arp.plen", None, "IPv4 addresses must be 4 bytes")
    return build_arp_raw(
        htype=HTYPE_ETHERNET,
        ptype=PTYPE_IPV4,
        op=op,
        sender_hw=sender_mac,
        sender_proto=sender_ip,
        target_hw=target_mac,
        target_proto=target_ip,
    )
