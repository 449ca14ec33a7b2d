"""Read-only invariants of a :class:`refstack.stack.Stack`, checked after every fuzzed frame.

Nothing here changes the stack: every check reads attributes (some private, as a
debugger would) and returns the broken invariants as sentences, so that a failure
says which object broke which rule and by how much.  :func:`check_stack` is the
entry point; :func:`frame_disposition` checks the counters a single frame moved.

What is checked (RFC clauses and the module each rule comes from):

- TCP (``refstack/tcp/endpoint.py``; RFC 9293 §3.3.1, §3.4): for every connection
  and listener the stack indexes, SND.UNA =< SND.NXT =< SND.MAX both as unwrapped
  stream positions and modulo 2**32 (RFC 1982 serial arithmetic: each pair less than
  2**31 apart), ISS =< SND.UNA, IRS < RCV.NXT once synchronized, the advertised right
  edge not behind RCV.NXT, the send queue within SO_SNDBUF, the receive queue within
  SO_RCVBUF, the out-of-order queue within tcp_rmem[2], the send window within
  65535 << 14 (RFC 7323 §2.3), window scales =< 14, cwnd > 0, the TCB's index keys
  matching its addresses, no CLOSED endpoint left in the tables, queued children
  pointing back at their listener.
- UDP (``refstack/udp.py``): the queued byte count equals the queue, and a queue of
  two or more datagrams stays within SO_RCVBUF (one datagram may exceed it, as Linux).
- IPv4 reassembly (``refstack/net/reassembly.py``, RFC 815): memory accounting equals
  the sum over queues, stays under ``ipfrag_high_thresh`` plus the one fragment
  Linux >= 4.17 lets through at the threshold, every queue has an armed timer no
  later than ``ipfrag_time`` after now, holes are ordered and disjoint.
- IGMP (``refstack/net/igmp.py``, RFC 3376 §5.1): retransmission counts non-negative,
  no group with neither members nor pending reports.
- Timers (``refstack/timers.py``): every armed deadline finite; after ``poll(now)``
  none is due at or before ``now``.
- Counters (``refstack/counters.py``): non-negative; ReasmOKs + ReasmFails =<
  ReasmReqds, ReasmTimeout and ReasmOverlaps =< ReasmFails.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from refstack.net.reassembly import QUEUE_COST, fragment_cost
from refstack.stack import Stack
from refstack.tcp.endpoint import TcpEndpoint
from refstack.tcp.seq import MASK, seq_le
from refstack.tcp.state import TcpState
from refstack.udp import UdpEndpoint

S = TcpState
MAX_SCALED_WINDOW = 0xFFFF << 14  # RFC 7323 §2.3
HALF = 1 << 31

# Where a frame handed to Stack.receive can end: exactly one of these moves per frame
# (tests/net/test_robustness.py and the RX fuzz; the RX ring's drop is counted apart).
DISPOSITIONS = frozenset(
    {
        "eth_rx_malformed",
        "eth_rx_not_for_us",
        "eth_rx_unknown_ethertype",
        "arp_rx_malformed",
        "arp_rx_unsupported",
        "arp_rx",
        "ip_rx_malformed",
        "ip_rx_bad_checksum",
        "ip_rx_martian_source",
        "ip_rx_martian_destination",
        "ip_rx_not_for_us",
        "kernel_path_rx_fragments",
        "ip_rx_delivered",
    }
)


class InvariantError(AssertionError):
    """One or more invariants do not hold; the message lists each."""


def tcp_endpoints(stack: Stack) -> list[TcpEndpoint]:
    """Every TCB the stack can still reach: connections, listeners and their queues."""
    seen: dict[int, TcpEndpoint] = {}
    for ep in [*stack.tcp.connections.values(), *stack.tcp.listeners.values()]:
        seen[id(ep)] = ep
        for child in (*ep.syn_queue, *ep.accept_queue):
            seen[id(child)] = child
    return list(seen.values())


def check_tcp(ep: TcpEndpoint) -> list[str]:
    """The TCB rules of the module docstring for one endpoint."""
    out: list[str] = []
    where = repr(ep)
    if ep.state == S.CLOSED:
        return out  # a reset child still waiting in an accept queue: nothing to check
    if ep.state == S.LISTEN:
        for child in (*ep.syn_queue, *ep.accept_queue):
            if child.state != S.CLOSED and child.parent is not ep and child in ep.syn_queue:
                out.append(f"{where}: SYN-queue child {child!r} does not point back at its listener")
        if len(ep.syn_queue) > ep.layer.stack.profile.tcp_max_syn_backlog:
            out.append(f"{where}: SYN queue {len(ep.syn_queue)} > tcp_max_syn_backlog")
        if len(ep.accept_queue) > ep.backlog + 1:
            out.append(f"{where}: accept queue {len(ep.accept_queue)} > backlog {ep.backlog} + 1")
        return out
    una, nxt, top = ep.snd_una, ep.snd_nxt, ep.snd_max
    if not una <= nxt <= top:
        out.append(f"{where}: SND.UNA {una} =< SND.NXT {nxt} =< SND.MAX {top} broken")
    if not (seq_le(una & MASK, nxt & MASK) and seq_le(nxt & MASK, top & MASK) and top - una < HALF):
        out.append(
            f"{where}: modulo 2**32, SND.UNA {una & MASK} =< SND.NXT {nxt & MASK}"
            f" =< SND.MAX {top & MASK} broken"
        )
    if una < ep.iss:
        out.append(f"{where}: SND.UNA {una} < ISS {ep.iss}")
    buf_end = ep._buf_seq + len(ep.snd_buf)
    if not ep._buf_seq - 1 <= una <= ep._buf_seq + 1:
        out.append(f"{where}: send buffer starts at {ep._buf_seq}, SND.UNA {una} is not within one of it")
    if top > buf_end + 1:  # data and at most a FIN
        out.append(f"{where}: SND.MAX {top} beyond the data queued ({buf_end}) plus a FIN")
    if len(ep.snd_buf) > ep.sndbuf:
        out.append(f"{where}: send queue {len(ep.snd_buf)} > SO_SNDBUF {ep.sndbuf}")
    if len(ep.rcv_buf) > ep.rcvbuf:
        out.append(f"{where}: receive queue {len(ep.rcv_buf)} > SO_RCVBUF {ep.rcvbuf}")
    bound = ep.layer.stack.profile.tcp_rmem[2]
    if ep.ooo.bytes_queued > bound:
        out.append(f"{where}: out-of-order queue {ep.ooo.bytes_queued} > tcp_rmem[2] {bound}")
    if ep.state != S.SYN_SENT:
        if ep.rcv_nxt <= ep.irs:
            out.append(f"{where}: RCV.NXT {ep.rcv_nxt} =< IRS {ep.irs}")
        if ep.state != S.SYN_RECEIVED and ep.rcv_adv < ep.rcv_nxt:
            out.append(f"{where}: advertised right edge {ep.rcv_adv} behind RCV.NXT {ep.rcv_nxt}")
    if not 0 <= ep.snd_wnd <= MAX_SCALED_WINDOW:
        out.append(f"{where}: SND.WND {ep.snd_wnd} outside 0..{MAX_SCALED_WINDOW}")
    if not (0 <= ep.snd_wscale <= 14 and 0 <= ep.rcv_wscale <= 14):
        out.append(f"{where}: window scales {ep.snd_wscale}/{ep.rcv_wscale} outside 0..14")
    if ep.cc.cwnd <= 0:
        out.append(f"{where}: cwnd {ep.cc.cwnd} =< 0")
    if ep.local is not None and ep.remote is not None:
        key = (ep.local[0], ep.local[1], ep.remote[0], ep.remote[1])
        if ep.layer.connections.get(key) is not ep and not (
            ep.parent is not None and ep in ep.parent.accept_queue
        ):
            out.append(f"{where}: not indexed under its own 4-tuple")
    return out


def check_udp(ep: UdpEndpoint) -> list[str]:
    out: list[str] = []
    queued = sum(len(d) for d, _ in ep.rx)
    if queued != ep.rx_bytes:
        out.append(f"{ep!r}: rx_bytes {ep.rx_bytes} != {queued} bytes queued")
    if len(ep.rx) > 1 and ep.rx_bytes > ep.rcvbuf:
        out.append(f"{ep!r}: {len(ep.rx)} datagrams, {ep.rx_bytes} bytes > SO_RCVBUF {ep.rcvbuf}")
    return out


def check_reassembly(stack: Stack) -> list[str]:
    out: list[str] = []
    r = stack.ip.reassembly
    queues = r._queues
    total = sum(q.memory for q in queues.values())
    if total != r.memory:
        out.append(f"reassembly: memory {r.memory} != {total}, the sum over its {len(queues)} queues")
    bound = stack.profile.ipfrag_high_thresh + QUEUE_COST + fragment_cost(0xFFFF)
    if r.memory > bound:
        out.append(f"reassembly: memory {r.memory} > ipfrag_high_thresh + one fragment ({bound})")
    if r.memory < 0:
        out.append(f"reassembly: memory {r.memory} < 0")
    for key, q in queues.items():
        if q.timer.deadline is None:
            out.append(f"reassembly: queue {key} has no expiry timer")
        elif q.timer.deadline > stack.now + stack.profile.ipfrag_time + 1e-9:
            out.append(f"reassembly: queue {key} expires at {q.timer.deadline}, after now + ipfrag_time")
        last = -1
        for hole in q.holes:
            if hole.first > hole.last or hole.first <= last:
                out.append(f"reassembly: queue {key} holes unordered or empty: {q.holes}")
                break
            last = hole.last
        if q.memory < QUEUE_COST:
            out.append(f"reassembly: queue {key} memory {q.memory} < the queue's own cost")
    return out


def check_igmp(stack: Stack) -> list[str]:
    out: list[str] = []
    for state in stack.igmp._ifaces.values():
        for group, entry in state.groups.items():
            name = f"igmp {state.iface.name} {'.'.join(map(str, group))}"
            if entry.mode_retrans < 0 or any(n <= 0 for n in entry.source_retrans.values()):
                out.append(
                    f"{name}: negative retransmission state {entry.mode_retrans} {entry.source_retrans}"
                )
            if not entry.members and not entry.reporting and entry.group != bytes((224, 0, 0, 1)):
                out.append(f"{name}: kept with neither members nor reports due")
    return out


def check_timers(stack: Stack, *, after_poll: bool) -> list[str]:
    out: list[str] = []
    for deadline, timer in stack.timers.armed():
        if not math.isfinite(deadline):
            out.append(f"timer {timer.name}: deadline {deadline} is not finite")
        elif after_poll and deadline <= stack.now:
            out.append(f"timer {timer.name}: due at {deadline} but still armed after poll({stack.now})")
    nd = stack.next_deadline()
    if nd is not None and not math.isfinite(nd):
        out.append(f"next_deadline() {nd} is not finite")
    return out


def check_counters(counters: Mapping[str, int]) -> list[str]:
    out = [f"counter {k} = {v} < 0" for k, v in counters.items() if v < 0]
    reqds, oks, fails = (
        counters.get("ReasmReqds", 0),
        counters.get("ReasmOKs", 0),
        counters.get("ReasmFails", 0),
    )
    if oks + fails > reqds:
        out.append(f"ReasmOKs {oks} + ReasmFails {fails} > ReasmReqds {reqds}")
    for part in ("ReasmTimeout", "ReasmOverlaps"):
        if counters.get(part, 0) > fails:
            out.append(f"{part} {counters.get(part, 0)} > ReasmFails {fails}")
    return out


def frame_disposition(before: Mapping[str, int], after: Mapping[str, int], onload_drop: int) -> list[str]:
    """One received frame moved ``rx_frames`` by one and exactly one disposition counter
    (or was dropped by the RX ring: ``onload_drop`` is that counter's increment)."""
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in DISPOSITIONS}
    moved = {k: v for k, v in moved.items() if v}
    rx = after.get("rx_frames", 0) - before.get("rx_frames", 0)
    if rx != 1:
        return [f"rx_frames moved by {rx} for one frame"]
    if onload_drop:
        return [] if not moved else [f"a frame dropped by the RX ring also moved {moved}"]
    if moved.get("kernel_path_rx_fragments") == 1 and moved.get("ip_rx_delivered", 1) == 1:
        moved.pop("ip_rx_delivered", None)  # the fragment that completes a datagram delivers it
    if sum(moved.values()) != 1:
        return [f"one frame moved {moved or 'no disposition counter'}"]
    return []


def check_stack(stack: Stack, *, after_poll: bool = True, udp: Iterable[UdpEndpoint] = ()) -> list[str]:
    """Every invariant of the module docstring; [] when all hold."""
    out: list[str] = []
    for ep in tcp_endpoints(stack):
        out += check_tcp(ep)
    for u in udp:
        out += check_udp(u)
    out += check_reassembly(stack)
    out += check_igmp(stack)
    out += check_timers(stack, after_poll=after_poll)
    out += check_counters(stack.counters)
    out += check_counters(stack.onload.counters)
    return out


def assert_stack(stack: Stack, *, after_poll: bool = True, udp: Iterable[UdpEndpoint] = ()) -> None:
    """:func:`check_stack`, raising :class:`InvariantError` with every broken rule."""
    broken = check_stack(stack, after_poll=after_poll, udp=udp)
    if broken:
        raise InvariantError(f"t={stack.now}: " + "; ".join(broken))
