"""The virtio-net header: how a TUN/TAP device opened with ``IFF_VNET_HDR`` says what it
did and what it wants done (virtio spec v1.2 §5.1.6 "Device Operation", §5.1.6.2
"Packet Transmission", §5.1.6.4 "Processing of Incoming Packets";
``include/uapi/linux/virtio_net.h``, ``struct virtio_net_hdr``)::

    struct virtio_net_hdr {             /* 10 bytes, before every frame */
        __u8   flags;                   /* NEEDS_CSUM 1, DATA_VALID 2 */
        __u8   gso_type;                /* NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5; | ECN 0x80 */
        __virtio16 hdr_len;             /* headers every GSO segment repeats */
        __virtio16 gso_size;            /* payload octets per GSO segment */
        __virtio16 csum_start;          /* where checksumming starts (the transport header) */
        __virtio16 csum_offset;         /* where, after csum_start, the checksum goes */
    };

``__virtio16`` is little-endian for a modern (virtio 1.0) device and host-endian for a
legacy one; a TUN/TAP device uses the host's byte order unless told otherwise
(``TUNSETVNETLE``/``TUNSETVNETBE``, ``Documentation/networking/tuntap.rst``), which on
every host refstack runs on is little-endian: this codec is little-endian.

:class:`VnetHeader` is the checked codec: :meth:`VnetHeader.parse` (what the kernel
wrote before a frame it hands over), :meth:`VnetHeader.encode`, and the translation to
and from refstack's offload metadata (:mod:`refstack.nic.offload`):
:meth:`VnetHeader.to_rx_offload` and :meth:`VnetHeader.for_tx`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Final

from .offload import RxOffload, TxOffloadFrame

__all__ = [
    "VIRTIO_NET_HDR_F_DATA_VALID",
    "VIRTIO_NET_HDR_F_NEEDS_CSUM",
    "VIRTIO_NET_HDR_GSO_ECN",
    "VIRTIO_NET_HDR_GSO_NONE",
    "VIRTIO_NET_HDR_GSO_TCPV4",
    "VIRTIO_NET_HDR_GSO_TCPV6",
    "VIRTIO_NET_HDR_GSO_UDP",
    "VIRTIO_NET_HDR_GSO_UDP_L4",
    "VNET_HDR_LEN",
    "VnetHeader",
]

# include/uapi/linux/virtio_net.h
VIRTIO_NET_HDR_F_NEEDS_CSUM: Final = 1
"""Only the pseudo-header sum is in the checksum field: checksum from csum_start,
store at csum_start + csum_offset (§5.1.6.2)."""
VIRTIO_NET_HDR_F_DATA_VALID: Final = 2
"""The device verified the transport checksum (§5.1.6.4)."""
VIRTIO_NET_HDR_GSO_NONE: Final = 0
VIRTIO_NET_HDR_GSO_TCPV4: Final = 1
VIRTIO_NET_HDR_GSO_UDP: Final = 3
VIRTIO_NET_HDR_GSO_TCPV6: Final = 4
VIRTIO_NET_HDR_GSO_UDP_L4: Final = 5
VIRTIO_NET_HDR_GSO_ECN: Final = 0x80
"""Or-ed into gso_type: the TCP super-segment has CWR set (needs TSO with ECN)."""

VNET_HDR_LEN: Final = 10
"""``sizeof(struct virtio_net_hdr)``: what ``TUNSETVNETHDRSZ`` is set to."""

_KNOWN_FLAGS: Final = VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID
_KNOWN_GSO: Final = frozenset(
    {
        VIRTIO_NET_HDR_GSO_NONE,
        VIRTIO_NET_HDR_GSO_TCPV4,
        VIRTIO_NET_HDR_GSO_UDP,
        VIRTIO_NET_HDR_GSO_TCPV6,
        VIRTIO_NET_HDR_GSO_UDP_L4,
    }
)
_GSO_NAMES: Final = {
    VIRTIO_NET_HDR_GSO_NONE: "NONE",
    VIRTIO_NET_HDR_GSO_TCPV4: "TCPV4",
    VIRTIO_NET_HDR_GSO_UDP: "UDP",
    VIRTIO_NET_HDR_GSO_TCPV6: "TCPV6",
    VIRTIO_NET_HDR_GSO_UDP_L4: "UDP_L4",
}
_STRUCT: Final = struct.Struct("<BBHHHH")
_FIELD_ENDS: Final = (
    ("flags", 1),
    ("gso_type", 2),
    ("hdr_len", 4),
    ("gso_size", 6),
    ("csum_start", 8),
    ("csum_offset", 10),
)
_ZERO_BYTES: Final = bytes(VNET_HDR_LEN)

# RxOffload is frozen: the metadata of frames without GSO is shared.
_RX_PLAIN: Final = RxOffload()
_RX_CSUM_VALID: Final = RxOffload(csum_valid=True)


@dataclass(frozen=True, slots=True)
class VnetHeader:
    """One ``struct virtio_net_hdr`` (see the module doc), checked on construction.

    ``flags`` may hold only NEEDS_CSUM and DATA_VALID; ``gso_type`` is one of the GSO
    types of ``virtio_net.h``, optionally or-ed with ECN, and needs a ``gso_size`` > 0
    when it is not NONE (§5.1.6.2: "the driver MUST set gso_size" for a GSO packet);
    the four 16-bit fields are 0..65535.  Violations raise :class:`ValueError` naming
    the field.
    """

    flags: int = 0
    gso_type: int = VIRTIO_NET_HDR_GSO_NONE
    hdr_len: int = 0
    gso_size: int = 0
    csum_start: int = 0
    csum_offset: int = 0

    ZERO: ClassVar[VnetHeader]
    """The all-zero header: a complete frame, no offload asked for or done."""

    def __post_init__(self) -> None:
        if not 0 <= self.flags <= 0xFF or self.flags & ~_KNOWN_FLAGS:
            raise ValueError(
                f"virtio_net_hdr flags {self.flags:#x}: only NEEDS_CSUM (1) and DATA_VALID (2) are defined"
            )
        if not 0 <= self.gso_type <= 0xFF or self.gso_type & ~VIRTIO_NET_HDR_GSO_ECN not in _KNOWN_GSO:
            raise ValueError(f"virtio_net_hdr gso_type {self.gso_type:#x} is not a VIRTIO_NET_HDR_GSO_* type")
        for field in ("hdr_len", "gso_size", "csum_start", "csum_offset"):
            value = getattr(self, field)
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"virtio_net_hdr {field} {value} is outside 0..65535")
        if self.gso_type != VIRTIO_NET_HDR_GSO_NONE and self.gso_size == 0:
            raise ValueError(f"virtio_net_hdr gso_size is 0 with gso_type {self.gso_name}")

    @property
    def gso_name(self) -> str:
        """``gso_type`` spelt as in ``virtio_net.h`` (``"TCPV4|ECN"``)."""
        name = _GSO_NAMES.get(self.gso_type & ~VIRTIO_NET_HDR_GSO_ECN, f"{self.gso_type:#x}")
        return name + "|ECN" if self.gso_type & VIRTIO_NET_HDR_GSO_ECN else name

    # --- the codec -------------------------------------------------------------------------
    @classmethod
    def parse(cls, buf: bytes) -> tuple[VnetHeader, bytes]:
        """The header at the start of ``buf`` (one read from the device) and the frame
        after it.  Raises :class:`ValueError` naming the field for a ``buf`` shorter than
        the header or a header :class:`VnetHeader` rejects."""
        if len(buf) < VNET_HDR_LEN:
            field = next(name for name, end in _FIELD_ENDS if len(buf) < end)
            raise ValueError(f"virtio_net_hdr truncated at {field}: {len(buf)} of {VNET_HDR_LEN} bytes")
        if buf[:VNET_HDR_LEN] == _ZERO_BYTES:  # the common case: a complete frame
            return cls.ZERO, buf[VNET_HDR_LEN:]
        return cls(*_STRUCT.unpack_from(buf)), buf[VNET_HDR_LEN:]

    def encode(self) -> bytes:
        """The 10 bytes of this header, little-endian."""
        return _STRUCT.pack(
            self.flags, self.gso_type, self.hdr_len, self.gso_size, self.csum_start, self.csum_offset
        )

    # --- refstack's offload metadata -----------------------------------------------------------
    def to_rx_offload(self) -> RxOffload:
        """What this header says about a received frame, as :class:`RxOffload`.

        ``csum_valid`` when NEEDS_CSUM (the frame never crossed a wire and carries only
        the pseudo-header sum, §5.1.6.4) or DATA_VALID (the device checked it);
        ``gso_size`` for a TCPV4 super-segment.  refstack asks the device for TCPv4 GSO
        only (``TUN_F_TSO4``, not ``TUN_F_TSO_ECN``/``TSO6``/``UFO``), so any other GSO
        type, or the ECN bit, raises :class:`ValueError` (the link counts and drops it).
        """
        gso = self.gso_type
        csum_valid = self.flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID) != 0
        if gso == VIRTIO_NET_HDR_GSO_NONE:
            return _RX_CSUM_VALID if csum_valid else _RX_PLAIN
        if gso != VIRTIO_NET_HDR_GSO_TCPV4:
            raise ValueError(
                f"virtio_net_hdr gso_type {self.gso_name}: refstack receives TCPV4 super-segments only"
            )
        return RxOffload(csum_valid=csum_valid, gso_size=self.gso_size)

    @classmethod
    def for_tx(cls, frame: bytes) -> VnetHeader:
        """The header to write before ``frame``.

        Plain bytes: :attr:`ZERO` (a complete frame).  A
        :class:`~refstack.nic.offload.TxOffloadFrame`: NEEDS_CSUM with its
        ``csum_start``/``csum_offset`` (§5.1.6.2: the device sums from csum_start to the
        end and stores the result at csum_start + csum_offset), and when its ``gso_size``
        is > 0 also gso_type TCPV4, ``gso_size`` and ``hdr_len``: the device cuts it into
        segments (``VIRTIO_NET_HDR_GSO_TCPV4``).
        """
        if not isinstance(frame, TxOffloadFrame):
            return cls.ZERO
        if frame.gso_size > 0:
            return cls(
                VIRTIO_NET_HDR_F_NEEDS_CSUM,
                VIRTIO_NET_HDR_GSO_TCPV4,
                frame.hdr_len,
                frame.gso_size,
                frame.csum_start,
                frame.csum_offset,
            )
        return cls(
            VIRTIO_NET_HDR_F_NEEDS_CSUM,
            VIRTIO_NET_HDR_GSO_NONE,
            frame.hdr_len,
            0,
            frame.csum_start,
            frame.csum_offset,
        )


VnetHeader.ZERO = VnetHeader()
