"""An arriving TCP segment as the state machine sees it (RFC 9293 §3.10.7).

The wire view (:class:`refstack.wire.tcp.TcpSegment`) carries 32-bit numbers; the
connection works on *unwrapped* sequence numbers (stream positions that never
wrap), so an :class:`Incoming` holds SEG.SEQ unwrapped against RCV.NXT and SEG.ACK
unwrapped against SND.UNA (RFC 9293 §3.4 comparisons are then plain ``<``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.tcp import ACK, FIN, PSH, RST, SYN, URG, TcpSegment
from ..wire.tcp_options import Mss, Sack, SackPermitted, Timestamps, WindowScale
from .seq import unwrap


@dataclass(slots=True)
class Incoming:
    """SEG.* of RFC 9293 §3.3.1, plus the options the state machine reads."""

    seq: int
    ack: int
    flags: int
    wnd: int  # the raw 16-bit window field
    up: int
    payload: bytes
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts: tuple[int, int] | None = None  # (TSval, TSecr)
    sack_blocks: tuple[tuple[int, int], ...] = ()
    ce: bool = False  # the IP header's ECN field was CE (RFC 3168 §5)
    gso_size: int = 0  # a super-segment from the device: the size of the segments it stands for
    # Where it came from and went to: (address, port) of the sender and of us.
    source: tuple[bytes, int] = (bytes(4), 0)
    destination: tuple[bytes, int] = (bytes(4), 0)

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & ACK)

    @property
    def psh(self) -> bool:
        return bool(self.flags & PSH)

    @property
    def urg(self) -> bool:
        return bool(self.flags & URG)

    @property
    def seg_len(self) -> int:
        """SEG.LEN: payload octets plus one for SYN and one for FIN (RFC 9293 §3.4)."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    @property
    def end(self) -> int:
        return self.seq + self.seg_len


def incoming(seg: TcpSegment, rcv_ref: int, snd_ref: int, src: bytes, dst: bytes) -> Incoming:
    """Decode ``seg`` (from ``src`` to ``dst``), unwrapping SEQ near ``rcv_ref`` and ACK
    (and SACK edges) near ``snd_ref``."""
    inc = Incoming(
        seq=unwrap(seg.seq, rcv_ref),
        ack=unwrap(seg.ack, snd_ref),
        flags=seg.flags,
        wnd=seg.window,
        up=seg.urgent_pointer,
        payload=seg.payload,
        source=(src, seg.src_port),
        destination=(dst, seg.dst_port),
    )
    for opt in seg.options:
        if isinstance(opt, Mss):
            inc.mss = opt.value
        elif isinstance(opt, WindowScale):
            inc.wscale = opt.shift
        elif isinstance(opt, SackPermitted):
            inc.sack_permitted = True
        elif isinstance(opt, Timestamps):
            inc.ts = (opt.tsval, opt.tsecr)
        elif isinstance(opt, Sack):
            inc.sack_blocks = tuple((unwrap(a, snd_ref), unwrap(b, snd_ref)) for a, b in opt.blocks)
    return inc
