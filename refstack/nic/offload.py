"""Checksum and segmentation offloads: what a virtual NIC does for the stack.

Onload's NICs check checksums on receive and fill them in on transmit, and they
cut large TCP sends into MSS-sized frames (TSO).  A Linux TAP device opened with
``IFF_VNET_HDR`` offers the same to a user-space stack through the virtio-net
header (virtio spec §5.1.6 "Device Operation"; ``include/uapi/linux/virtio_net.h``):

- on receive, the kernel may hand over a TCP *super-segment* of up to 64 KB that
  stands for several MSS-sized segments (GSO; ``gso_size`` is their size), and
  frames whose transport checksum is not filled in (``NEEDS_CSUM``: the frame
  never crossed a wire) or already verified (``DATA_VALID``);
- on transmit, the stack may leave the transport checksum as the pseudo-header
  sum only (``NEEDS_CSUM`` with ``csum_start``/``csum_offset``) and hand over one
  TCP super-segment that the kernel segments (``gso_type`` TCPV4).

:class:`RxOffload` is the per-frame receive metadata the link passes to
``Stack.receive``; :class:`TxOffloadFrame` is a frame on an interface's TX queue
that carries the transmit metadata for the link to encode.  An interface asks for
transmit offloads with ``Interface.tx_csum_offload`` and ``Interface.tso``; a link
that cannot do them (a MemoryLink, a plain TAP) never sets them, so every frame it
carries is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

TSO_MAX_DATAGRAM = 65535
"""The largest IPv4 datagram a TSO super-segment may be (the IP total length field)."""


@dataclass(frozen=True, slots=True)
class RxOffload:
    """What the device says about one received frame.

    ``csum_valid``: the transport (TCP/UDP) checksum is not to be verified, because
    the device verified it (virtio ``DATA_VALID``) or the frame never crossed a wire
    and carries only the pseudo-header sum (``NEEDS_CSUM``).  The IPv4 header
    checksum is always complete and always checked.

    ``gso_size``: when > 0, the frame is a TCP super-segment standing for segments
    of this many payload octets each (Linux GRO/GSO ``gso_size``).  The receiver
    uses it, not the super-segment's length, as the peer's segment size (Linux
    ``tcp_measure_rcv_mss``) and counts the segments it stands for when deciding
    to acknowledge (RFC 1122 §4.2.3.2 "at least every second full-sized segment").
    """

    csum_valid: bool = False
    gso_size: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.gso_size <= 0xFFFF:
            raise ValueError(f"gso_size {self.gso_size} is outside 0..65535")


class TxOffloadFrame(bytes):
    """A frame (link header included) whose transport checksum and segmentation the
    device finishes.

    ``csum_start`` is the offset of the transport header in the frame and
    ``csum_offset`` that of the checksum field within it (16 for TCP, 6 for UDP); the
    field holds the pseudo-header sum, not complemented (virtio ``NEEDS_CSUM``).
    ``gso_size`` > 0 makes it a TCP super-segment the device cuts into segments of
    that many payload octets, each with its own sequence number, IP ID and checksums
    (``VIRTIO_NET_HDR_GSO_TCPV4``); ``hdr_len`` is then the length of the headers
    (link, IP, TCP with options) every segment repeats.
    """

    csum_start: int
    csum_offset: int
    gso_size: int
    hdr_len: int

    def __new__(
        cls, frame: bytes, *, csum_start: int, csum_offset: int, gso_size: int = 0, hdr_len: int = 0
    ) -> TxOffloadFrame:
        self = super().__new__(cls, frame)
        if not 0 <= csum_start < len(frame) or not 0 <= csum_start + csum_offset + 2 <= len(frame):
            raise ValueError(f"checksum at {csum_start}+{csum_offset} lies outside a {len(frame)}-byte frame")
        if gso_size and not csum_start < hdr_len <= len(frame):
            raise ValueError(f"gso hdr_len {hdr_len} does not end the headers of a {len(frame)}-byte frame")
        self.csum_start = csum_start
        self.csum_offset = csum_offset
        self.gso_size = gso_size
        self.hdr_len = hdr_len
        return self

    def framed(self, link_header: bytes) -> TxOffloadFrame:
        """This datagram behind ``link_header`` (an Ethernet header): the offsets move."""
        n = len(link_header)
        return TxOffloadFrame(
            link_header + self,
            csum_start=self.csum_start + n,
            csum_offset=self.csum_offset,
            gso_size=self.gso_size,
            hdr_len=self.hdr_len + n if self.gso_size else 0,
        )
