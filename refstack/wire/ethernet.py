"""Ethernet II frames (RFC 894; IEEE 802.3 clause 3.1.1), with one IEEE 802.1Q tag.

Layout, without and with an 802.1Q tag (IEEE 802.1Q §9.3), FCS not included::

    | Destination (6) | Source (6) | EtherType (2) | Payload ...
    | Destination (6) | Source (6) | 0x8100 (2) | TCI (2) | EtherType (2) | Payload ...

The TCI splits into PCP (3 bits), DEI (1 bit) and VID (12 bits), IEEE 802.1Q §9.6.

A type/length value below 0x0600 is an IEEE 802.3 length field (clause 3.2.6), not
an Ethernet II EtherType; such frames carry LLC and are rejected here, both in the
outer position and after a tag.

Only a single 802.1Q tag is parsed.  In a double-tagged (QinQ) frame the outer tag
is returned as :attr:`EthernetFrame.vlan`, :attr:`EthernetFrame.ethertype` is the
second 0x8100 and the inner tag starts the payload.  An 802.1ad S-tag (0x88A8) is
not treated as a tag: it is returned as the EtherType.

The payload is every byte after the header: the minimum-frame padding of IEEE 802.3
clause 3.2.8 is left to the upper layer (IPv4 trims by Total Length, ARP by its
address lengths).  The FCS is not expected in the buffer (capture and TUN/TAP
conventions).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .addresses import MacAddr, mac_str
from .errors import WireError, check_range

HEADER_LEN = 14
TAG_LEN = 4
TAGGED_HEADER_LEN = HEADER_LEN + TAG_LEN
MIN_FRAME_LEN = 60  # 64-byte minimum frame (IEEE 802.3 clause 4.4.2) minus the 4-byte FCS
MIN_ETHERTYPE = 0x0600  # IEEE 802.3 clause 3.2.6: values below are lengths, not types

# EtherTypes (IEEE Registration Authority).
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100
ETHERTYPE_IPV6 = 0x86DD

_HDR = struct.Struct("!6s6sH")
_TAG = struct.Struct("!HH")


@dataclass(frozen=True, slots=True)
class VlanTag:
    """One IEEE 802.1Q tag's control information (§9.6): priority, drop eligible, VLAN id.

    The fields are range-checked on construction (``pcp`` 0..7, ``dei`` 0..1,
    ``vid`` 0..4095); VID 0 (priority tag) and 4095 (reserved) are carried as is.
    """

    pcp: int = 0
    dei: int = 0
    vid: int = 0

    def __post_init__(self) -> None:
        check_range("ethernet.vlan.pcp", self.pcp, 7)
        check_range("ethernet.vlan.dei", self.dei, 1)
        check_range("ethernet.vlan.vid", self.vid, 0xFFF)

    @property
    def tci(self) -> int:
        """The 16-bit Tag Control Information as carried."""
        return (self.pcp << 13) | (self.dei << 12) | self.vid

    @classmethod
    def from_tci(cls, tci: int) -> VlanTag:
        return cls(tci >> 13, (tci >> 12) & 1, tci & 0xFFF)


class EthernetFrame:
    """A checked view of an Ethernet II frame (RFC 894), optionally 802.1Q-tagged.

    The constructor checks the header length (14 bytes, 18 when tagged) and that each
    EtherType is one (at least 0x0600); afterwards no getter can fail.
    """

    __slots__ = ("_buf", "_dst", "_ethertype", "_hlen", "_src", "_vlan")
    _buf: bytes
    _dst: MacAddr
    _src: MacAddr
    _ethertype: int
    _hlen: int
    _vlan: VlanTag | None

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        buf = data if type(data) is bytes else bytes(data)
        n = len(buf)
        if n < HEADER_LEN:
            raise WireError("ethernet", 0, f"header needs {HEADER_LEN} bytes, got {n}")
        dst, src, ethertype = _HDR.unpack_from(buf)
        if ethertype < MIN_ETHERTYPE:
            raise WireError(
                "ethernet.ethertype", 12, f"{ethertype:#06x} is an IEEE 802.3 length, not an EtherType"
            )
        vlan = None
        hlen = HEADER_LEN
        if ethertype == ETHERTYPE_VLAN:
            if n < TAGGED_HEADER_LEN:
                raise WireError(
                    "ethernet.vlan", 14, f"tagged header needs {TAGGED_HEADER_LEN} bytes, got {n}"
                )
            tci, ethertype = _TAG.unpack_from(buf, HEADER_LEN)
            if ethertype < MIN_ETHERTYPE:
                raise WireError(
                    "ethernet.ethertype", 16, f"{ethertype:#06x} is an IEEE 802.3 length, not an EtherType"
                )
            vlan = VlanTag.from_tci(tci)
            hlen = TAGGED_HEADER_LEN
        self._buf = buf
        self._dst = dst
        self._src = src
        self._ethertype = ethertype
        self._hlen = hlen
        self._vlan = vlan

    @property
    def dst(self) -> MacAddr:
        return self._dst

    @property
    def src(self) -> MacAddr:
        return self._src

    @property
    def ethertype(self) -> int:
        """The EtherType of the payload (the one after the tag in a tagged frame)."""
        return self._ethertype

    @property
    def vlan(self) -> VlanTag | None:
        """The 802.1Q tag, or None for an untagged frame."""
        return self._vlan

    @property
    def header_length(self) -> int:
        """14, or 18 with a tag."""
        return self._hlen

    @property
    def payload(self) -> bytes:
        """Every byte after the header, link padding included."""
        return self._buf[self._hlen :]

    def __bytes__(self) -> bytes:
        return self._buf

    def __repr__(self) -> str:
        tag = ""
        if self._vlan is not None:
            tag = f" vlan={self._vlan.vid} pcp={self._vlan.pcp}{' dei' if self._vlan.dei else ''}"
        return (
            f"<EthernetFrame {mac_str(self._src)} > {mac_str(self._dst)}{tag}"
            f" type={self._ethertype:#06x} len={len(self._buf) - self._hlen}>"
        )


def build_ethernet(
    dst: MacAddr,
    src: MacAddr,
    ethertype: int,
    payload: bytes = b"",
    *,
    vlan: VlanTag | None = None,
    pad: bool = False,
) -> bytes:
    """Emit an Ethernet II frame (RFC 894), without FCS, optionally with one 802.1Q tag.

    ``pad=True`` appends zero octets up to the 60-byte minimum frame (64 with FCS,
    IEEE 802.3 clause 3.2.8), counting the tag when there is one.  ``ethertype`` must be
    an EtherType (0x0600..0xFFFF); building QinQ is ``ethertype=ETHERTYPE_VLAN`` with the
    inner tag at the start of ``payload``.
    """
    if len(dst) != 6 or len(src) != 6:
        raise WireError("ethernet.address", None, "addresses must be 6 bytes")
    check_range("ethernet.ethertype", ethertype, 0xFFFF)
    if ethertype < MIN_ETHERTYPE:
        raise WireError("ethernet.ethertype", None, f"{ethertype:#06x} is an IEEE 802.3 length")
    if vlan is None:
        frame = _HDR.pack(dst, src, ethertype) + payload
    else:
        frame = _HDR.pack(dst, src, ETHERTYPE_VLAN) + _TAG.pack(vlan.tci, ethertype) + payload
    if pad and len(frame) < MIN_FRAME_LEN:
        frame += bytes(MIN_FRAME_LEN - len(frame))
    return frame
