"""Selective acknowledgment: the receiver's blocks (RFC 2018 §4, D-SACK RFC 2883 §4)
and the sender's scoreboard (RFC 6675).

All sequence numbers are unwrapped ints (see :mod:`refstack.tcp.seq`) and every
range is half-open ``(left, right)``: ``left`` is the first octet, ``right`` the
octet just past the last, exactly like the Left and Right Edge of a SACK block
(RFC 2018 §3).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

Range = tuple[int, int]

MAX_BLOCKS_WITH_TIMESTAMPS = 3
"""RFC 2018 §3: 40 option bytes less 12 for timestamps (10 + 2 NOPs) leave room for 3 blocks."""
MAX_BLOCKS = 4
"""RFC 2018 §3: a SACK option of 2 + 8*n bytes fits at most 4 blocks into 40 option bytes."""


def _overlapping(ranges: list[Range], block: Range) -> Range | None:
    """The first range of ``ranges`` (sorted, disjoint) sharing an octet with ``block``."""
    left, right = block
    for r in ranges:
        if r[0] < right and left < r[1]:
            return r
    return None


def sack_blocks(
    out_of_order: list[Range],
    latest: Range | None,
    previous: list[Range],
    *,
    max_blocks: int,
    dsack: Range | None = None,
) -> list[Range]:
    """The SACK blocks a receiver sends on its next ACK (RFC 2018 §4, RFC 2883 §4).

    ``out_of_order`` is the queued data above RCV.NXT as merged ranges (what
    :meth:`refstack.tcp.reassembly.ReassemblyQueue.ranges` returns); ``latest`` is the
    segment just received that caused this ACK; ``previous`` is the receiver's
    history of blocks it reported, most recent first (the blocks of the last SACK
    option sent, or a longer history); ``dsack`` is a duplicate segment to report
    (RFC 2883).  Each of ``latest``, ``dsack`` and the ``previous`` blocks stands for
    the queued range it overlaps, which may have grown since (and is dropped when it
    no longer overlaps any: delivered, or never queued).

    Order:

    1. the D-SACK block, if any (RFC 2883 §4: the first block reports the duplicate;
       each duplicate is reported once only — the caller passes it once).  It may
       equal the block that follows it, as in RFC 2883's example of a duplicated
       out-of-order segment; no other block is repeated;
    2. if the duplicate lies within queued out-of-order data, the queued range
       containing it (RFC 2883 §4: the second block then specifies that larger block);
    3. the range containing ``latest`` (RFC 2018 §4: "the first SACK block ... MUST
       specify the contiguous block of data containing the segment which triggered
       this ACK");
    4. the ranges containing the previously reported blocks, most recent first,
       skipping any already included and any no longer queued (RFC 2018 §4: repeat the
       most recently reported blocks that are not subsets of a block already included).

    ``max_blocks`` bounds the list, D-SACK block included: 3 when the timestamps
    option is also sent, 4 without (:data:`MAX_BLOCKS_WITH_TIMESTAMPS`,
    :data:`MAX_BLOCKS`; RFC 2018 §3).
    Queued ranges that are neither the latest nor in the history are not reported
    (as Linux, which only reports what its history holds).
    """
    if max_blocks < 1:
        raise ValueError(f"max_blocks must be at least 1, got {max_blocks}")
    ranges = sorted(out_of_order)
    head: list[Range] = [] if dsack is None else [dsack]
    out: list[Range] = []  # the ordinary blocks, after the D-SACK block
    room = max_blocks - len(head)

    def add(block: Range | None) -> None:
        if block is not None and block not in out and len(out) < room:
            out.append(block)

    if dsack is not None:
        add(_overlapping(ranges, dsack))
    if latest is not None:
        add(_overlapping(ranges, latest))
    for block in previous:
        add(_overlapping(ranges, block))
    return head + out


class Scoreboard:
    """The data sender's record of SACKed octets (RFC 6675 §3, §4).

    It holds the SACKed ranges above SND.UNA, merged.  The connection owns the
    recovery variables and passes them in: ``snd_una`` (HighACK + 1), ``snd_nxt``
    (HighData + 1), ``high_rxt`` and ``rescue_rxt``.  All are *exclusive* like
    SND.NXT: ``high_rxt`` is one past the highest octet retransmitted in this
    recovery (``snd_una`` or below when nothing has been), so RFC 6675's "S1 <=
    HighRxt" reads ``s < high_rxt`` here.
    """

    __slots__ = ("_ranges", "dupthresh", "last_rule", "mss")

    def __init__(self, mss: int, dupthresh: int = 3) -> None:
        if mss <= 0:
            raise ValueError(f"SMSS must be positive, got {mss}")
        if dupthresh < 1:
            raise ValueError(f"DupThresh must be at least 1, got {dupthresh}")
        self.mss = mss
        self.dupthresh = dupthresh
        self._ranges: list[Range] = []
        self.last_rule: int | None = None
        """Which NextSeg rule (1-4) produced the last :meth:`next_seg` answer, or None."""

    # --- the scoreboard -----------------------------------------------------------
    @property
    def blocks(self) -> list[Range]:
        """The SACKed ranges above SND.UNA, merged and ascending."""
        return list(self._ranges)

    @property
    def sacked_bytes(self) -> int:
        """Octets SACKed above SND.UNA."""
        return sum(r - left for left, r in self._ranges)

    @property
    def highest_sacked(self) -> int | None:
        """The right edge (exclusive) of the highest SACKed range, or None without SACKs."""
        return self._ranges[-1][1] if self._ranges else None

    def is_sacked(self, seq: int) -> bool:
        """Has octet ``seq`` been SACKed?"""
        i = bisect_right(self._ranges, seq, key=lambda r: r[0]) - 1
        return i >= 0 and self._ranges[i][0] <= seq < self._ranges[i][1]

    def reset(self) -> None:
        """Forget every SACKed octet: after a retransmission timeout the sender SHOULD
        turn off all SACKed bits, as the receiver may have reneged (RFC 2018 §8;
        RFC 6675 §5.1)."""
        self._ranges = []
        self.last_rule = None

    def update(self, snd_una: int, blocks: Iterable[Range], *, snd_nxt: int | None = None) -> int:
        """Update() of RFC 6675 §4: mark the SACKed octets of an arriving ACK.

        Everything below ``snd_una`` is dropped (cumulatively acknowledged); blocks are
        clipped to it, so a D-SACK block below SND.UNA (RFC 2883) changes nothing.
        Blocks with ``right <= left`` are ignored, and, when ``snd_nxt`` is given,
        blocks reaching beyond it (they SACK data never sent).  Returns the octets
        newly SACKed by ``blocks``.
        """
        self._trim(snd_una)
        new = 0
        for left, right in blocks:
            if snd_nxt is not None and right > snd_nxt:
                continue
            start = max(left, snd_una)
            if right <= start:
                continue
            new += self._add(start, right)
        return new

    def _trim(self, snd_una: int) -> None:
        kept: list[Range] = []
        for left, right in self._ranges:
            if right > snd_una:
                kept.append((max(left, snd_una), right))
        self._ranges = kept

    def _add(self, left: int, right: int) -> int:
        """Merge [left, right) into the ranges (adjacent ones too); return octets added."""
        before = self.sacked_bytes
        merged: list[Range] = []
        for a, b in self._ranges:
            if b < left or a > right:
                merged.append((a, b))
            else:
                left, right = min(a, left), max(b, right)
        merged.append((left, right))
        merged.sort()
        self._ranges = merged
        return self.sacked_bytes - before

    # --- RFC 6675 §4 routines -------------------------------------------------------
    def _sacked_above(self, seq: int) -> tuple[int, int]:
        """(discontiguous SACKed ranges, SACKed octets) with sequence numbers above ``seq``."""
        count = octets = 0
        for left, right in self._ranges:
            if right > seq + 1:
                count += 1
                octets += right - max(left, seq + 1)
        return count, octets

    def is_lost(self, seq: int) -> bool:
        """IsLost(SeqNum) (RFC 6675 §4): at least DupThresh discontiguous SACKed ranges
        above ``seq``, or more than (DupThresh - 1) * SMSS SACKed octets above it.

        Each merged SACKed range stands for the "discontiguous SACKed sequences" of the
        RFC (the segment boundaries are not kept).  A SACKed octet is not lost.
        """
        if self.is_sacked(seq):
            return False
        count, octets = self._sacked_above(seq)
        return count >= self.dupthresh or octets > (self.dupthresh - 1) * self.mss

    def _holes(self, snd_una: int, snd_nxt: int) -> list[Range]:
        """The unSACKed ranges of [snd_una, snd_nxt), ascending."""
        holes: list[Range] = []
        start = snd_una
        for left, right in self._ranges:
            if left >= snd_nxt:
                break
            if left > start:
                holes.append((start, left))
            start = max(start, right)
        if start < snd_nxt:
            holes.append((start, snd_nxt))
        return holes

    def pipe(self, snd_una: int, snd_nxt: int, high_rxt: int) -> int:
        """SetPipe() (RFC 6675 §4): octets estimated in flight.

        For each unSACKed octet S1 in [snd_una, snd_nxt): (a) +1 unless IsLost(S1)
        (the original may still be in the network); (b) +1 if S1 < ``high_rxt`` (its
        retransmission is).  An octet retransmitted without being lost counts twice.
        IsLost is the same for every octet of one hole (the SACKed data above it is the
        same), so the sum is taken hole by hole.
        """
        total = 0
        for a, b in self._holes(snd_una, snd_nxt):
            if not self.is_lost(a):
                total += b - a
            total += max(0, min(b, high_rxt) - a)
        return total

    def next_seg(
        self,
        snd_una: int,
        snd_nxt: int,
        high_rxt: int,
        rescue_rxt: int | None,
        cwnd_allows_new: bool,
    ) -> Range | None:
        """NextSeg() (RFC 6675 §4): the range of the next segment to send, or None.

        ``cwnd_allows_new`` tells whether rule (2) may send new data: there is unsent
        data and the receiver's window allows it (the cwnd - pipe >= SMSS check of
        RFC 6675 §5 (C) is the caller's, before calling).  ``rescue_rxt`` is RescueRxt,
        None while undefined.  The rule used is left in :attr:`last_rule`; after a
        rule (4) rescue the caller sets RescueRxt to RecoveryPoint and leaves HighRxt
        alone; after rules (1) and (3) it raises HighRxt to the end of the range.

        1. the first unSACKed octet S2 >= ``high_rxt`` (1.a), below the highest SACKed
           octet (1.b), with IsLost(S2) (1.c): up to SMSS octets from S2, stopping at
           the next SACKed range;
        2. else, if ``cwnd_allows_new``: ``(snd_nxt, snd_nxt + SMSS)`` — the caller
           trims it to the data it has and the window it may use;
        3. else the first unSACKed octet meeting (1.a) and (1.b), as in (1);
        4. else, if unSACKed data is outstanding and RescueRxt is undefined or below
           HighACK (``snd_una > rescue_rxt``): one segment of up to SMSS octets ending
           with the highest outstanding unSACKed octet (the rescue retransmission).
           ``rescue_rxt`` is exclusive like the rest: pass RecoveryPoint as
           :attr:`NewReno.recover <refstack.tcp.congestion.NewReno.recover>` holds it.
        """
        self.last_rule = None
        holes = self._holes(max(snd_una, high_rxt), snd_nxt)
        highest = self.highest_sacked
        first: Range | None = None
        if holes and highest is not None and holes[0][0] < highest:
            a, b = holes[0]
            first = (a, min(b, a + self.mss))
        # (1) a lost octet to retransmit.  IsLost only decreases with the sequence
        # number, so only the first candidate can satisfy it.
        if first is not None and self.is_lost(first[0]):
            self.last_rule = 1
            return first
        # (2) new data.
        if cwnd_allows_new:
            self.last_rule = 2
            return (snd_nxt, snd_nxt + self.mss)
        # (3) an unSACKed octet below the highest SACK, not (yet) deemed lost.
        if first is not None:
            self.last_rule = 3
            return first
        # (4) the rescue retransmission, once per recovery.
        if rescue_rxt is None or snd_una > rescue_rxt:
            all_holes = self._holes(snd_una, snd_nxt)
            if all_holes:
                a, b = all_holes[-1]
                self.last_rule = 4
                return (max(a, b - self.mss), b)
        return None

    def __repr__(self) -> str:
        return f"<Scoreboard mss={self.mss} dupthresh={self.dupthresh} blocks={self._ranges}>"
