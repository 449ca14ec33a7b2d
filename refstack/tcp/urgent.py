"""TCP urgent data (RFC 9293 §3.8.5, RFC 6093) as BSD and Linux implement it.

The urgent mechanism marks a point in the stream: the *urgent pointer* of a segment
with URG set is an offset from SEG.SEQ.  RFC 9293 §3.8.5 (MUST-62) and RFC 6093 §2
settle that it points to the octet *after* the last urgent octet, which is what BSD
and Linux have always sent; Linux's ``tcp_stdurg`` sysctl (off by default) reads it
the RFC 1122 way instead, as pointing *at* the last urgent octet.

The sockets API built on it keeps exactly one urgent octet, the last one before the
pointer, "out of band" (RFC 6093 §3 describes the practice; Linux, net/ipv4/tcp.c):

- ``send(..., MSG_OOB)`` sets SND.UP to the end of the data queued so far
  (``tcp_mark_urg``); every segment sent while SND.UNA has not passed SND.UP, and
  whose sequence number is below it, carries URG and SND.UP - SEG.SEQ, even a pure
  ACK or a window probe sent before the urgent octet itself can go
  (``__tcp_transmit_skb``, :func:`pointer_for`).
- The receiver remembers the newest pointer (``tcp_check_urg``) and, once the octet
  before it has arrived, holds that octet for ``recv(..., MSG_OOB)`` (``tcp_urg``):
  :class:`UrgentReceive`.  Without SO_OOBINLINE the octet is then skipped by reads
  of the normal stream, and a read stops at it (the "mark", SIOCATMARK).  A newer
  pointer replaces an older one whose octet was not read: that older octet stays in
  the normal stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class UrgentState(Enum):
    """Linux's ``tp->urg_data`` flags."""

    NONE = "none"  # no urgent data (urg_data == 0)
    PENDING = "pending"  # the pointer is known, its octet has not arrived (TCP_URG_NOTYET)
    VALID = "valid"  # the octet is held for recv(MSG_OOB) (TCP_URG_VALID)
    READ = "read"  # the application took it; the mark stays until read past (TCP_URG_READ)


@dataclass(slots=True)
class UrgentReceive:
    """The receiver's urgent state: RCV.UP of RFC 9293 §3.3.1 as Linux keeps it.

    ``seq`` is the unwrapped sequence number of the urgent octet (Linux ``urg_seq``),
    so RCV.UP = ``seq + 1``; ``octet`` is its value once it has arrived."""

    state: UrgentState = UrgentState.NONE
    seq: int = 0
    octet: int = 0

    @property
    def active(self) -> bool:
        """A mark is set (Linux: ``urg_data != 0``): reads stop at ``seq``."""
        return self.state is not UrgentState.NONE


def urgent_octet(seg_seq: int, seg_up: int, *, stdurg: bool = False) -> int:
    """The sequence number of the urgent octet a segment's pointer names.

    RFC 6093 §2 (RFC 9293 MUST-62): the pointer is the octet after the urgent data, so
    the urgent octet is SEG.SEQ + SEG.UP - 1; with ``stdurg`` (RFC 1122 §4.2.2.4,
    Linux ``tcp_stdurg``) it is SEG.SEQ + SEG.UP.  A zero pointer names SEG.SEQ in
    both readings, as in Linux's ``tcp_check_urg``."""
    if seg_up and not stdurg:
        seg_up -= 1
    return seg_seq + seg_up


def pointer_for(seq: int, snd_una: int, snd_up: int, snd_nxt: int) -> int | None:
    """The urgent pointer field of a segment starting at ``seq``, or None for no URG.

    As Linux's ``__tcp_transmit_skb``: only in urgent mode (SND.UP beyond SND.UNA) and
    for a segment that starts before SND.UP.  The pointer is SND.UP - SEG.SEQ when it
    fits in 16 bits; otherwise 0xFFFF (a point at least that far on) while the
    segment is within 0xFFFF of SND.NXT, and no URG at all beyond that."""
    if snd_up <= snd_una or seq >= snd_up:
        return None
    if snd_up - seq < 0x10000:
        return snd_up - seq
    if seq + 0xFFFF > snd_nxt:
        return 0xFFFF
    return None
