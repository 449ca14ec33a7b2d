"""The receiver's out-of-order queue (RFC 9293 §3.10.7.4, "seventh, process the segment text").

RFC 9293 lets a receiver keep segments that arrive above RCV.NXT ("segments with
higher beginning sequence numbers SHOULD be held for later processing", §3.10.7.4,
first) and deliver them once the gap before them is filled.  :class:`ReassemblyQueue`
holds that data, keyed by unwrapped sequence numbers (see :mod:`refstack.tcp.seq`),
storing each octet once: a segment overlapping queued data keeps only its new
octets.  It does not know RCV.NXT until :meth:`ReassemblyQueue.pop_ready` is called;
the connection trims segments to the receive window before inserting them.
"""

from __future__ import annotations

from bisect import bisect_left

Range = tuple[int, int]


class ReassemblyQueue:
    """Out-of-order data above RCV.NXT, at most ``limit_bytes`` octets of it.

    Stored pieces are disjoint and sorted; adjacent pieces are not joined
    (:meth:`ranges` merges them for SACK).  ``refused`` counts insertions rejected
    because they would have exceeded the limit.
    """

    __slots__ = ("_bytes", "_pieces", "_starts", "limit_bytes", "refused")

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 0:
            raise ValueError(f"limit_bytes must not be negative, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self.refused = 0
        self._starts: list[int] = []  # sorted start sequence numbers, parallel to _pieces
        self._pieces: list[tuple[int, bytes]] = []
        self._bytes = 0

    @property
    def bytes_queued(self) -> int:
        """Octets held."""
        return self._bytes

    def __len__(self) -> int:
        """The number of stored pieces (not octets; see :attr:`bytes_queued`)."""
        return len(self._pieces)

    def clear(self) -> None:
        """Drop everything (the refused count is kept)."""
        self._starts.clear()
        self._pieces.clear()
        self._bytes = 0

    def ranges(self) -> list[Range]:
        """The queued data as merged half-open ``(left, right)`` ranges, ascending."""
        out: list[Range] = []
        for seq, data in self._pieces:
            end = seq + len(data)
            if out and out[-1][1] == seq:
                out[-1] = (out[-1][0], end)
            else:
                out.append((seq, end))
        return out

    def _gaps(self, seq: int, end: int) -> list[Range]:
        """The parts of [seq, end) not yet queued."""
        gaps: list[Range] = []
        # The piece before ``seq`` may reach into the new data.
        i = max(0, bisect_left(self._starts, seq) - 1)
        cursor = seq
        for p_seq, p_data in self._pieces[i:]:
            if p_seq >= end:
                break
            p_end = p_seq + len(p_data)
            if p_end <= cursor:
                continue
            if p_seq > cursor:
                gaps.append((cursor, p_seq))
            cursor = max(cursor, p_end)
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def insert(self, seq: int, data: bytes) -> Range | None:
        """Queue ``data`` starting at unwrapped ``seq``, keeping only octets not queued yet.

        Returns ``(first, end)``: the span from the first to just past the last newly
        stored octet.  The octets between were already queued, so the span lies in one
        merged range of :meth:`ranges` (the one a SACK block reports, RFC 2018 §4).
        Returns None when nothing is new, or when storing the new octets would take the
        queue beyond ``limit_bytes``: then nothing is stored (all or nothing) and
        :attr:`refused` is incremented.
        """
        end = seq + len(data)
        gaps = self._gaps(seq, end)
        new = sum(b - a for a, b in gaps)
        if new == 0:
            return None
        if self._bytes + new > self.limit_bytes:
            self.refused += 1
            return None
        for a, b in gaps:
            i = bisect_left(self._starts, a)
            self._starts.insert(i, a)
            self._pieces.insert(i, (a, bytes(data[a - seq : b - seq])))
        self._bytes += new
        return (gaps[0][0], gaps[-1][1])

    def pop_ready(self, rcv_nxt: int) -> bytes:
        """Remove and return the contiguous data starting at ``rcv_nxt`` (b"" if none).

        Pieces wholly below ``rcv_nxt`` are discarded (the gap was filled by other
        segments); a piece straddling it is trimmed to start there.
        """
        out: list[bytes] = []
        cursor = rcv_nxt
        n = 0
        for p_seq, p_data in self._pieces:
            p_end = p_seq + len(p_data)
            if p_end <= cursor:
                n += 1
                continue
            if p_seq > cursor:
                break
            out.append(p_data[cursor - p_seq :])
            cursor = p_end
            n += 1
        if n:
            removed = self._pieces[:n]
            del self._pieces[:n]
            del self._starts[:n]
            self._bytes -= sum(len(d) for _, d in removed)
        return b"".join(out)

    def __repr__(self) -> str:
        return f"<ReassemblyQueue {self._bytes}/{self.limit_bytes} bytes ranges={self.ranges()}>"
