"""IPv4 fragment reassembly: the kernel path's (RFC 791 §3.2, RFC 815, RFC 1122 §3.3.2).

Onload never accelerates fragments: its filters match on L4 ports, so fragments
reach the kernel, which reassembles them and delivers the datagram through the
kernel socket behind every Onload UDP socket (UG1586 "IP Fragmentation";
``shared/onload/EF_OPTIONS.md``).  This module is that kernel path, modelled on
Linux ``net/ipv4/ip_fragment.c`` and ``net/ipv4/inet_fragment.c`` (read at 6.6):

- Queues are keyed by (source, destination, protocol, Identification) (RFC 791
  §3.2, "the reassembly resources are identified by the concatenation of ...").
- The received data is tracked with RFC 815's hole descriptor list; the datagram
  is complete when no hole is left (RFC 815 §3 step 8) and the last fragment
  (MF clear) has arrived.
- A queue lives ``timeout`` seconds from its first fragment, never extended by
  later ones (Linux ``ipfrag_time``, 30 s; the comment in ``ipv4_frags_init_net``
  calls RFC 791's per-fragment prolongation wrong).  RFC 1122 §3.3.2 recommends
  60..120 s: Linux's 30 s is a documented deviation kept for parity.  On expiry,
  ICMP Time Exceeded code 1 is sent only if fragment 0 arrived, quoting fragment
  0 (RFC 1122 §3.3.2 and its summary table; Linux ``ip_expire`` checks
  ``INET_FRAG_FIRST_IN`` and ``icmp_send``s the head fragment).
- Overlaps, ``overlaps="linux"`` (default), as ``inet_frag_queue_insert`` since
  Linux 4.19 (RFC 5722 §4 with erratum 3089, applied to IPv4 too): a fragment
  that lies wholly inside one *run* of contiguous fragments already queued is a
  duplicate, dropped while the queue is kept; any other overlap discards the
  whole datagram (``ReasmOverlaps`` and ``ReasmFails``).  A run is a chain of
  fragments each appended right after the highest one so far, so whether a
  covering copy counts as a duplicate depends on arrival order, as on Linux (the
  packetimpact note in ``shared/rfc/FRAGMENTATION_MULTICAST.md`` F-7).
  ``overlaps="rfc815"`` accepts overlaps as RFC 791/815 do, later data winning.
- Lengths as ``ip_frag_queue``: a non-final fragment's length is cut down to a
  multiple of 8; a final fragment that ends before data already queued or
  disagrees with an earlier final one, a non-final one reaching past the known
  end, and a fragment left empty all discard the queue (``ReasmFails``).  A
  datagram whose header plus data would exceed 65535 bytes is discarded when it
  completes (``ip_frag_reasm``'s ``out_oversize``).
- ECN as ``ip_frag_ecn_table`` (RFC 3168 §5.3): Not-ECT mixed with ECT or CE
  fragments discards the datagram; CE on any ECT fragment marks the whole CE.
- The reassembled datagram is fragment 0's header (options included) with Total
  Length, the fragment field and the checksum rewritten; DF is set only if the
  largest fragment carried it (``ip_frag_reasm``).
- Memory is bounded as ``net.ipv4.ipfrag_high_thresh`` (4 MiB).  Each queue costs
  200 bytes (``sizeof(struct ipq)``) and each fragment a modelled skb truesize:
  its length rounded up to a power of two plus 896 bytes, which gives the
  2944 bytes per 1500-byte fragment that ``ipv4_frags_init_net``'s comment
  quotes.  Linux >= 4.17 (``inet_frag_find``) refuses every fragment, new queue
  or not, while the total is above the threshold (``ReasmFails``), until
  timeouts free memory: ``evict_oldest=False``, the default.  With
  ``evict_oldest=True`` the least recently updated queues are evicted down to
  ``low_thresh`` (``ipfrag_low_thresh``, 3 MiB) before a fragment that would
  cross ``high_thresh`` is stored, so memory never exceeds it, as Linux before
  4.17 pruned (``ip_evictor``, later the ``inet_frags`` worker), each eviction
  counted in ``ReasmFails`` and ``ip_frag_evicted``.

- Stale fragments as ``ip_frag_too_far`` (``net.ipv4.ipfrag_max_dist``, 64): every
  fragment from a source counts on that source's counter; when more than
  ``max_dist`` of them arrived since a queue's previous fragment, the queue's
  fragments are taken as stale and dropped (``ip_frag_reinit``: ``ReasmFails``,
  ``ip_frag_too_far``, its timer restarted) before the new one is queued.

Not modelled: the l3mdev (VRF) part of the key.

Counters (Linux SNMP ``Ip``/``IpExt`` names, RFC 4293 ipSystemStats):
``ReasmReqds`` (every fragment offered), ``ReasmOKs``, ``ReasmFails``,
``ReasmTimeout``, ``ReasmOverlaps``; refstack's own detail: ``ip_frag_duplicate``,
``ip_frag_mem_full``, ``ip_frag_evicted``, ``ip_frag_oversize``,
``ip_frag_bad_length``, ``ip_frag_ecn_invalid``.

Sans-I/O: time is the ``now`` passed in, and each queue's expiry is a timer on the
stack's :class:`~refstack.timers.TimerQueue`, so ``Stack.next_deadline()`` reports it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Literal

from ..counters import Counters
from ..timers import Timer, TimerQueue
from ..wire.addresses import Ipv4Addr, ipv4_str
from ..wire.checksum import checksum
from ..wire.ipv4 import MAX_TOTAL_LEN, Ipv4Packet

FragmentKey = tuple[Ipv4Addr, Ipv4Addr, int, int]
"""(source, destination, protocol, Identification): RFC 791 §3.2's reassembly key."""

Overlaps = Literal["linux", "rfc815"]

IPFRAG_TIME = 30.0  # Linux IP_FRAG_TIME (net.ipv4.ipfrag_time), seconds
IPFRAG_HIGH_THRESH = 4 * 1024 * 1024  # Linux net.ipv4.ipfrag_high_thresh
IPFRAG_LOW_THRESH = 3 * 1024 * 1024  # Linux net.ipv4.ipfrag_low_thresh (obsolete since 4.17)
IPFRAG_MAX_DIST = 64  # Linux net.ipv4.ipfrag_max_dist (0: no check)
QUEUE_COST = 200  # sizeof(struct ipq), per ipv4_frags_init_net's comment
SKB_OVERHEAD = 896  # truesize beyond the power-of-two data buffer (2944 - 2048)

_INFINITY = 1 << 20  # RFC 815's "infinity": beyond any fragment end (8191 * 8 + 65535)
_NOT_ECT, _ECN_CE = 1, 8  # Linux IPFRAG_ECN_* bits: 1 << (tos & 3)


def fragment_cost(length: int) -> int:
    """The memory one stored fragment of ``length`` bytes is charged (modelled skb truesize)."""
    return (1 << max(0, length - 1).bit_length()) + SKB_OVERHEAD


@dataclass(slots=True)
class _Hole:
    """RFC 815 §3 hole descriptor: octets ``first``..``last`` (inclusive) are missing."""

    first: int
    last: int


@dataclass(slots=True)
class _Queue:
    """One datagram being reassembled (Linux ``struct ipq``)."""

    key: FragmentKey
    timer: Timer
    holes: list[_Hole] = field(default_factory=lambda: [_Hole(0, _INFINITY)])
    pieces: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, data), arrival order
    runs: list[list[int]] = field(default_factory=list)  # Linux fragment runs [start, end), sorted
    tail: tuple[int, int] | None = None  # the fragment that ends highest (Linux fragments_tail)
    first: Ipv4Packet | None = None  # fragment 0, for the header and the ICMP quote
    length: int = 0  # highest end seen; the data length once ``last_in`` (Linux q.len)
    last_in: bool = False
    ecn: int = 0
    max_size: int = 0
    max_df_size: int = 0
    memory: int = QUEUE_COST
    rid: int = 0  # the source's fragment count at this queue's last fragment (Linux qp->rid)


class Reassembler:
    """IPv4 reassembly queues with their timers, counters and memory bound.

    ``add(fragment, now)`` returns the whole datagram when ``fragment`` completes one,
    else None.  ``on_expired(first_fragment, now)`` is called when a queue that holds
    fragment 0 times out; the stack answers with ICMP Time Exceeded code 1.
    ``timeout``, ``high_thresh``, ``low_thresh``, ``evict_oldest`` and ``overlaps``
    are plain attributes: the stack copies them from its profile before each use.
    """

    def __init__(
        self,
        timers: TimerQueue,
        counters: Counters,
        on_expired: Callable[[Ipv4Packet, float], None] | None = None,
        *,
        timeout: float = IPFRAG_TIME,
        high_thresh: int = IPFRAG_HIGH_THRESH,
        low_thresh: int = IPFRAG_LOW_THRESH,
        evict_oldest: bool = False,
        overlaps: Overlaps = "linux",
    ) -> None:
        self._timers = timers
        self._counters = counters
        self._on_expired = on_expired
        self._queues: OrderedDict[FragmentKey, _Queue] = OrderedDict()  # least recently updated first
        self.memory = 0
        self.timeout = timeout
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh
        self.evict_oldest = evict_oldest
        self.overlaps: Overlaps = overlaps
        self.max_dist = IPFRAG_MAX_DIST
        self._peer_rid: dict[Ipv4Addr, int] = {}  # fragments seen per source (Linux inet_peer rid)

    def __len__(self) -> int:
        return len(self._queues)

    def __contains__(self, key: object) -> bool:
        return key in self._queues

    # --- input ----------------------------------------------------------------------
    def add(self, frag: Ipv4Packet, now: float) -> Ipv4Packet | None:
        """Queue one fragment (RFC 815 §3); the reassembled datagram once complete."""
        counters = self._counters
        counters["ReasmReqds"] += 1
        key: FragmentKey = (frag.src, frag.dst, frag.protocol, frag.ident)
        offset = frag.fragment_offset
        data = frag.payload
        end = offset + len(data)
        cost = fragment_cost(len(bytes(frag)))
        q = self._queues.get(key)
        if not self._memory_ok(cost + (QUEUE_COST if q is None else 0), key):
            counters["ReasmFails"] += 1
            counters["ip_frag_mem_full"] += 1
            return None
        if q is None:
            q = self._create(key, now)
        if self.max_dist:  # Linux ip_frag_too_far
            rid = self._peer_rid[frag.src] = self._peer_rid.get(frag.src, 0) + 1
            if q.pieces and rid - q.rid > self.max_dist:
                self._reinit(q, now)
            q.rid = rid
        # Linux ip_frag_queue: where the fragment ends, and whether that is consistent.
        if not frag.more_fragments:
            if end < q.length or (q.last_in and end != q.length):
                self._discard(q, "ip_frag_bad_length")
                return None
            q.last_in = True
            q.length = end
        else:
            end &= ~7  # a non-final fragment carries a multiple of 8 octets (RFC 791 §3.2)
            data = data[: end - offset] if end > offset else b""
            if end > q.length:
                if q.last_in:
                    self._discard(q, "ip_frag_bad_length")
                    return None
                q.length = end
        if end <= offset:
            self._discard(q, "ip_frag_bad_length")
            return None
        if self.overlaps == "linux":
            verdict = _insert_run(q, offset, end)
            if verdict == "dup":
                counters["ip_frag_duplicate"] += 1
                return None
            if verdict == "overlap":
                counters["ReasmOverlaps"] += 1
                self._discard(q, None)
                return None
        _fill_holes(q.holes, offset, end - 1, more=frag.more_fragments)
        q.pieces.append((offset, data))
        q.memory += cost
        self.memory += cost
        self._queues.move_to_end(key)
        q.ecn |= 1 << frag.ecn
        size = frag.header_length + len(data)
        q.max_size = max(q.max_size, size)
        if frag.dont_fragment:
            q.max_df_size = max(q.max_df_size, size)
        if offset == 0 and q.first is None:
            q.first = frag
        if q.holes or not q.last_in:
            return None
        return self._reassemble(q)

    def _memory_ok(self, cost: int, keep: FragmentKey) -> bool:
        """Linux >= 4.17 ``inet_frag_find``: nothing is queued while over the threshold.
        With ``evict_oldest``, make room instead (Linux < 4.17 ``ip_evictor``)."""
        if not self.evict_oldest:
            return self.memory <= self.high_thresh
        if self.memory + cost <= self.high_thresh:
            return True
        for key in list(self._queues):
            if self.memory + cost <= self.low_thresh:
                break
            if key != keep:
                self._counters["ip_frag_evicted"] += 1
                self._discard(self._queues[key], None)
        return self.memory + cost <= self.high_thresh

    def _create(self, key: FragmentKey, now: float) -> _Queue:
        name = f"ipfrag {ipv4_str(key[0])}>{ipv4_str(key[1])} proto {key[2]} id {key[3]}"
        q = _Queue(key, self._timers.timer(name, lambda t: self._expire(key, t)))
        q.timer.arm(now + self.timeout)  # RFC 1122 §3.3.2: fixed, from the first fragment
        self._queues[key] = q
        self.memory += QUEUE_COST
        return q

    def _reinit(self, q: _Queue, now: float) -> None:
        """Linux ``ip_frag_reinit``: the queue's fragments are stale; drop them and
        start the queue afresh, timer included."""
        self._counters["ReasmFails"] += 1
        self._counters["ip_frag_too_far"] += 1
        self.memory -= q.memory - QUEUE_COST
        fresh = _Queue(q.key, q.timer)
        for f in fields(_Queue):
            if f.name not in ("key", "timer"):
                setattr(q, f.name, getattr(fresh, f.name))
        q.timer.arm(now + self.timeout)

    def _drop(self, q: _Queue) -> None:
        q.timer.cancel()
        del self._queues[q.key]
        self.memory -= q.memory

    def _discard(self, q: _Queue, reason: str | None) -> None:
        """Linux ``discard_qp``: the whole datagram goes (``ReasmFails``)."""
        self._drop(q)
        self._counters["ReasmFails"] += 1
        if reason is not None:
            self._counters[reason] += 1

    # --- timeout (RFC 1122 §3.3.2) --------------------------------------------------
    def _expire(self, key: FragmentKey, now: float) -> None:
        q = self._queues.get(key)
        if q is None:
            return
        self._drop(q)
        self._counters["ReasmFails"] += 1
        self._counters["ReasmTimeout"] += 1
        # Time Exceeded code 1 only if fragment 0 was received (RFC 1122 §3.3.2).
        if q.first is not None and self._on_expired is not None:
            self._on_expired(q.first, now)

    # --- completion -------------------------------------------------------------------
    def _reassemble(self, q: _Queue) -> Ipv4Packet | None:
        """RFC 815 §3 step 8 done: one datagram from fragment 0's header and the data."""
        self._drop(q)
        first = q.first
        assert first is not None  # no hole left, so octet 0 arrived
        header = bytearray(first.header)
        total = len(header) + q.length
        if total > MAX_TOTAL_LEN:
            self._discard_done("ip_frag_oversize")
            return None
        ecn = q.ecn
        if ecn & _NOT_ECT and ecn != _NOT_ECT:
            self._discard_done("ip_frag_ecn_invalid")
            return None
        payload = bytearray(q.length)
        for offset, data in q.pieces:  # arrival order: later copies win (RFC 791 §3.2)
            payload[offset : offset + len(data)] = data
        header[1] |= 3 if ecn & _ECN_CE else 0
        header[2:4] = total.to_bytes(2, "big")
        header[6:8] = b"\x40\x00" if q.max_df_size == q.max_size else b"\x00\x00"
        header[10:12] = b"\x00\x00"
        header[10:12] = checksum(header).to_bytes(2, "big")
        self._counters["ReasmOKs"] += 1
        return Ipv4Packet(bytes(header) + bytes(payload))

    def _discard_done(self, reason: str) -> None:
        self._counters["ReasmFails"] += 1
        self._counters[reason] += 1


def _insert_run(q: _Queue, offset: int, end: int) -> Literal["ok", "dup", "overlap"]:
    """Linux ``inet_frag_queue_insert``: classify ``[offset, end)`` against the queued
    runs and, when it is new data, record it (RFC 5722 §4 with erratum 3089)."""
    tail = q.tail
    if tail is None:
        q.runs.append([offset, end])
    elif tail[1] < end:  # the common case: the fragment goes after everything queued
        if offset < tail[1]:
            return "overlap"
        if offset == tail[1]:
            q.runs[-1][1] = end  # appended to the last run
        else:
            q.runs.append([offset, end])
    else:
        for i, (start, run_end) in enumerate(q.runs):
            if end <= start:
                q.runs.insert(i, [offset, end])  # a run of its own, never the last
                return "ok"
            if offset < run_end:
                return "dup" if start <= offset and end <= run_end else "overlap"
        raise AssertionError("a fragment ending before the tail lies before some run")
    q.tail = (offset, end)
    return "ok"


def _fill_holes(holes: list[_Hole], first: int, last: int, *, more: bool) -> None:
    """RFC 815 §3 steps 1-7: take the octets ``first..last`` out of the hole list.

    For each hole the fragment touches, the hole is deleted (step 4) and replaced
    by what remains of it before the fragment (step 5) and after it (step 6), the
    latter only when the fragment has MF set (``more``): the last fragment ends
    the datagram, so nothing after it is missing.
    """
    i = 0
    while i < len(holes):
        hole = holes[i]
        if first > hole.last or last < hole.first:  # steps 2-3: no overlap with this hole
            i += 1
            continue
        del holes[i]  # step 4
        if first > hole.first:  # step 5
            holes.insert(i, _Hole(hole.first, first - 1))
            i += 1
        if last < hole.last and more:  # step 6
            holes.insert(i, _Hole(last + 1, hole.last))
            i += 1
