"""The ARP cache of one Ethernet interface (RFC 826, RFC 1122 §2.3.2).

- Requests for one of our addresses are answered, and the sender's mapping is
  learned (RFC 826 "Packet Reception": merge, then add if we are the target).
- Any ARP packet refreshes an entry we already hold (the merge flag).
- Datagrams for a next hop that is not resolved wait in a small per-neighbour
  queue (RFC 1122 §2.3.2.2 SHOULD save at least one; Linux keeps ~3 by default via
  unres_qlen_bytes) while requests are retransmitted once a second, at most
  ``solicit`` times (RFC 1122 §2.3.2.1 rate limit of one per second; Linux
  mcast_solicit 3).  When resolution fails the queued datagrams are dropped and
  the stack reports host unreachable to their senders, as Linux does.
- Entries are trusted for ``reachable_time`` (Linux base_reachable_time 30 s);
  an older entry is still used while it is re-resolved (the "stale" state).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..counters import Counters
from ..nic.offload import TxOffloadFrame
from ..timers import Timer, TimerQueue
from ..wire.addresses import BROADCAST_MAC, Ipv4Addr, MacAddr
from ..wire.arp import OP_REPLY, OP_REQUEST, ArpPacket, build_arp
from ..wire.errors import WireError
from ..wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, build_ethernet
from ..wire.ethernet import HEADER_LEN as ETHERNET_HEADER_LEN
from .interface import Interface

QUEUE_LIMIT = 3


def _frame(dst: MacAddr, src: MacAddr, datagram: bytes) -> bytes:
    """The Ethernet II frame of an IPv4 datagram, keeping its offload metadata
    (:class:`~refstack.nic.offload.TxOffloadFrame`) for the device."""
    frame = build_ethernet(dst, src, ETHERTYPE_IPV4, datagram)
    if isinstance(datagram, TxOffloadFrame):
        return datagram.framed(frame[:ETHERNET_HEADER_LEN])
    return frame


@dataclass(eq=False)
class _Entry:
    mac: MacAddr | None = None
    confirmed: float = 0.0
    tries: int = 0
    pending: deque[bytes] = field(default_factory=deque)
    timer: Timer | None = None


class ArpCache:
    """Neighbour resolution for one Ethernet interface."""

    def __init__(
        self,
        interface: Interface,
        timers: TimerQueue,
        counters: Counters,
        on_unreachable: Callable[[bytes, float], None],
        *,
        reachable_time: float = 30.0,
        retrans_time: float = 1.0,
        solicit: int = 3,
    ) -> None:
        if interface.mac is None:
            raise ValueError(f"{interface.name} is not an Ethernet interface")
        self._iface = interface
        self._mac: MacAddr = interface.mac
        self._timers = timers
        self._counters = counters
        self._on_unreachable = on_unreachable
        self.reachable_time = reachable_time
        self.retrans_time = retrans_time
        self.solicit = solicit
        self._entries: dict[Ipv4Addr, _Entry] = {}

    def lookup(self, addr: Ipv4Addr) -> MacAddr | None:
        entry = self._entries.get(addr)
        return entry.mac if entry is not None else None

    def entries(self) -> dict[Ipv4Addr, MacAddr | None]:
        return {a: e.mac for a, e in self._entries.items()}

    def add_static(self, addr: Ipv4Addr, mac: MacAddr) -> None:
        self._entries[addr] = _Entry(mac=mac, confirmed=float("inf"))

    def send_ipv4(self, next_hop: Ipv4Addr, datagram: bytes, now: float) -> None:
        """Frame ``datagram`` for ``next_hop``, resolving it first if need be."""
        entry = self._entries.get(next_hop)
        if entry is not None and entry.mac is not None:
            self._iface.tx.append(_frame(entry.mac, self._mac, datagram))
            if now - entry.confirmed > self.reachable_time and entry.timer is None:
                self._start_resolution(next_hop, entry, now)  # stale: refresh in the background
            return
        if entry is None:
            entry = _Entry()
            self._entries[next_hop] = entry
            self._start_resolution(next_hop, entry, now)
        if len(entry.pending) >= QUEUE_LIMIT:
            entry.pending.popleft()
            self._counters["arp_queue_overflow"] += 1
        entry.pending.append(datagram)

    def _start_resolution(self, addr: Ipv4Addr, entry: _Entry, now: float) -> None:
        entry.tries = 0
        entry.timer = self._timers.timer(f"arp {addr.hex()}", lambda t: self._retransmit(addr, t))
        self._request(addr, entry, now)

    def _request(self, addr: Ipv4Addr, entry: _Entry, now: float) -> None:
        entry.tries += 1
        request = build_arp(OP_REQUEST, self._mac, self._iface.address, bytes(6), addr)
        self._iface.tx.append(build_ethernet(BROADCAST_MAC, self._mac, ETHERTYPE_ARP, request))
        self._counters["arp_tx_request"] += 1
        assert entry.timer is not None
        entry.timer.arm(now + self.retrans_time)

    def _retransmit(self, addr: Ipv4Addr, now: float) -> None:
        entry = self._entries.get(addr)
        if entry is None:
            return
        if entry.tries < self.solicit:
            self._request(addr, entry, now)
            return
        # Resolution failed (RFC 1122 §2.3.2.1): give up and tell the senders.
        entry.timer = None
        if entry.mac is None:
            del self._entries[addr]
            self._counters["arp_resolution_failed"] += 1
            for datagram in entry.pending:
                self._on_unreachable(datagram, now)
        else:
            entry.confirmed = now  # stale entry kept: Linux would mark it FAILED; we keep using it
        entry.pending.clear()

    def input(self, frame_payload: bytes, now: float) -> None:
        """Process a received ARP packet (RFC 826 "Packet Reception")."""
        try:
            arp = ArpPacket(frame_payload)
        except WireError:
            self._counters["arp_rx_malformed"] += 1
            return
        if not arp.is_ethernet_ipv4:
            self._counters["arp_rx_unsupported"] += 1
            return
        # count every packet taken in, so that each received frame is accounted
        # for by some counter (one not for us used to leave no trace).
        self._counters["arp_rx"] += 1
        sender = arp.sender_proto
        entry = self._entries.get(sender)
        merged = False
        if entry is not None and sender != bytes(4):
            self._learn(sender, entry, arp.sender_hw, now)
            merged = True
        if arp.target_proto != self._iface.address:
            return
        if not merged and sender != bytes(4):
            entry = _Entry()
            self._entries[sender] = entry
            self._learn(sender, entry, arp.sender_hw, now)
        if arp.op == OP_REQUEST:
            reply = build_arp(OP_REPLY, self._mac, self._iface.address, arp.sender_hw, sender)
            self._iface.tx.append(build_ethernet(arp.sender_hw, self._mac, ETHERTYPE_ARP, reply))
            self._counters["arp_tx_reply"] += 1

    def _learn(self, addr: Ipv4Addr, entry: _Entry, mac: MacAddr, now: float) -> None:
        entry.mac = mac
        entry.confirmed = now
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        while entry.pending:
            self._iface.tx.append(_frame(mac, self._mac, entry.pending.popleft()))
