"""The Onload model of a stack: endpoints, the filter table, VNIC rings and handover.

Onload accelerates a socket when it can give it an *endpoint* (``EF_MAX_ENDPOINTS``
per stack) and the hardware *filters* its traffic needs (a finite table); frames
that match no filter reach the kernel instead.  When a resource runs out:

- with ``EF_NO_FAIL=1`` (the default) the socket is **handed over**: it keeps
  working, served by the kernel path, and the stack counts why, under Onload's
  counter names (``tcp_handover_socket``, ``udp_bind_no_filter``, ...);
- with ``EF_NO_FAIL=0`` the call fails with the errno Onload returns (``ENOMEM``
  for an endpoint, ``EBUSY`` when the filter table is full: ``oof_socket_add_*``).

refstack is its own kernel path: a handed-over socket runs the same protocol code,
so what changes is what the stack records (``accelerated``, the reason, the
model's :attr:`OnloadModel.counters`) and which frames count as accelerated
(see :meth:`OnloadModel.classify`).
Policy follows ``../shared/onload/FILTERS_AND_HANDOVER.md``: ``EF_TCP=0`` /
``EF_UDP=0`` hand every socket of that protocol over at creation; binding to an
address that is not on an accelerated interface (loopback, or one excluded by
``EF_INTERFACE_WHITELIST``/``BLACKLIST``) hands the socket over whatever
``EF_NO_FAIL`` says, as Onload does; an accepted connection shares its listener's
wild filter; when endpoints run out, new connections to a listener are accepted
by the kernel's listening socket (``tcp_accept_os``).

The VNIC: frames received between two polls of the stack fill the RX ring; more
than ``EF_RXQ_SIZE`` of them and the rest are dropped (``rx_nodesc_drops``, the
NIC's "no descriptor" drop) and TCP recovers by retransmission.  A poll hands the
driver at most ``EF_TXQ_SIZE`` frames; the rest wait in the stack's overflow
queue (``tx_oflow``) for the next poll.

Packet buffers (``EF_MAX_PACKETS``, ``EF_MAX_RX_PACKETS``, ``EF_MAX_TX_PACKETS``;
:mod:`refstack.nic.buffers`): a received frame needs an RX buffer, and payload
queued on an accelerated socket keeps its buffers (found by a read-only look at
the sockets, :meth:`OnloadModel.rx_held`); with none free the frame is dropped
(``memory_pressure_drops``) and TCP recovers by retransmission.  A frame waiting
in the TX ring or overflow queue holds a TX buffer; a UDP send that cannot get
its buffers fails with ENOBUFS when ``EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1``,
else waits for them like Linux waits for send memory (a non-blocking socket gets
EAGAIN); any other frame without a TX buffer is dropped
(``memory_pressure_tx_drops``: TCP retransmits it).  Handed-over sockets use the
kernel's memory, not the pool.

Option effects wired here too: ``EF_TCP_SNDBUF``/``EF_TCP_RCVBUF`` (the default
buffers of a new accelerated TCP socket, :meth:`OnloadModel.tcp_buffer_defaults`),
``EF_MCAST_SEND`` (:meth:`OnloadModel.multicast_loops`) and ``EF_MCAST_RECV=0``
(memberships get no filter, so their datagrams are counted as kernel-path
traffic, ``no_match_pass_to_kernel_udp``, and still delivered).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import McastJoinHandover, McastSend
from ..counters import Counters
from ..wire.addresses import Ipv4Addr, ipv4_str
from ..wire.errors import WireError
from ..wire.ethernet import ETHERTYPE_IPV4, EthernetFrame
from ..wire.ipv4 import Ipv4Packet
from ..wire.tcp import TcpSegment
from .buffers import BufferPool
from .filters import Filter, FilterKind, FilterTable, FilterTableFullError

if TYPE_CHECKING:
    from ..net.interface import Interface
    from ..stack import Stack
    from ..tcp.endpoint import TcpEndpoint
    from ..udp import UdpEndpoint

__all__ = ["OnloadModel", "SocketRecord"]

ANY = bytes(4)
TCP, UDP = 6, 17
DEFAULT_MSS = 536  # RFC 9293 §3.7.1: a connection that has not advertised one yet


@dataclass
class SocketRecord:
    """What the model knows about one socket."""

    owner: int
    protocol: int
    accelerated: bool = True
    reason: str = ""  # why it was handed over
    endpoint: bool = False  # holds one of EF_MAX_ENDPOINTS

    @property
    def state(self) -> str:
        return "accelerated" if self.accelerated else f"kernel ({self.reason})"


class OnloadModel:
    """Endpoints, filters, rings and handover for one stack (one Onload netif)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        config = stack.config
        self.filters = FilterTable(config.max_filters)
        # Onload's own statistics (its names, shown by stackdump), apart from the
        # stack's Linux-like counters.
        self.counters = Counters()
        self.sockets: dict[int, SocketRecord] = {}
        self.endpoints_used = 0
        self.rx_fill = 0
        self._rx_bound = 0  # an upper bound on rx_held(): the last count + frames since
        self.buffers = BufferPool(config.max_packets, config.max_rx_packets, config.max_tx_packets)
        self._tx_wanted: dict[int, int] = {}  # owner -> TX buffers a blocked UDP send waits for
        self._next_owner = 0

    # --- the resources ------------------------------------------------------------------
    @property
    def max_endpoints(self) -> int:
        return self.stack.config.max_endpoints

    @property
    def rxq_size(self) -> int:
        return self.stack.config.effective_rxq_size

    @property
    def txq_size(self) -> int:
        return self.stack.config.effective_txq_size

    def accelerated_interface(self, iface: Interface) -> bool:
        """An interface Onload may use: not loopback, and allowed by the lists."""
        config = self.stack.config
        if iface.name == "lo":
            return False
        if config.interface_whitelist and iface.name not in config.interface_whitelist:
            return False
        return iface.name not in config.interface_blacklist

    # --- sockets ------------------------------------------------------------------------
    def new_socket(self, protocol: int) -> SocketRecord:
        """socket(): an endpoint, or a handover (EF_NO_FAIL=1) / ENOMEM (=0)."""
        self._next_owner += 1
        record = SocketRecord(self._next_owner, protocol)
        self.sockets[record.owner] = record
        name = "tcp" if protocol == TCP else "udp"
        enabled = self.stack.config.tcp if protocol == TCP else self.stack.config.udp
        if not enabled:
            self._hand_over(record, f"{name}_handover_socket", f"EF_{name.upper()}=0")
            return record
        if self.endpoints_used >= self.max_endpoints:
            if not self.stack.config.no_fail:
                del self.sockets[record.owner]
                self.counters[f"{name}_socket_no_endpoint"] += 1
                raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
            self._hand_over(record, f"{name}_handover_socket", "no free endpoint (EF_MAX_ENDPOINTS)")
            return record
        self.endpoints_used += 1
        record.endpoint = True
        return record

    def accepted(self, listener: int) -> SocketRecord:
        """A connection reached a listener: it needs an endpoint of its own and shares
        the listener's wild filter; without an endpoint the kernel accepts it."""
        parent = self.sockets.get(listener)
        self._next_owner += 1
        record = SocketRecord(self._next_owner, TCP)
        self.sockets[record.owner] = record
        if parent is not None and not parent.accelerated:
            record.accelerated, record.reason = False, parent.reason
        elif self.endpoints_used >= self.max_endpoints:
            self._hand_over(record, "tcp_accept_os", "no free endpoint (EF_MAX_ENDPOINTS)")
        else:
            self.endpoints_used += 1
            record.endpoint = True
        return record

    def syn_queue_full(self, listener: TcpEndpoint) -> bool:
        """Whether a SYN to ``listener`` finds no room for one more embryonic
        (SYN-RECEIVED) connection and is dropped without a SYN-ACK.

        Onload, when EF_TCP_BACKLOG_MAX / EF_TCP_SYNRECV_MAX are set (its syncookies
        are off by default, EF_TCP_SYNCOOKIES=0): at most EF_TCP_BACKLOG_MAX per
        listener and EF_TCP_SYNRECV_MAX in the whole stack.  Otherwise Linux
        (tcp_conn_request): with ``tcp_syncookies`` on (its default) the TCP layer has
        already answered a SYN beyond the request queue with a cookie
        (:mod:`refstack.tcp.syncookies`), so a SYN that gets here finds room; with it
        off the SYN is dropped once the listener holds more than its backlog
        (inet_csk_reqsk_queue_is_full) or fewer than a quarter of
        ``tcp_max_syn_backlog`` places are left."""
        queued = len(listener.syn_queue)
        config, profile = self.stack.config, self.stack.profile
        if config.is_set("EF_TCP_SYNRECV_MAX") or config.is_set("EF_TCP_BACKLOG_MAX"):
            total = sum(len(ep.syn_queue) for ep in self.stack.tcp.listeners.values())
            if total >= config.tcp_synrecv_max:
                self.counters["tcp_synrecv_max_drop"] += 1
                return True
            return queued >= config.tcp_backlog_max
        if profile.tcp_syncookies:
            return False
        limit = profile.tcp_max_syn_backlog
        return queued > listener.backlog or limit - queued < limit >> 2

    def close(self, owner: int) -> None:
        """The socket is gone for good: its endpoint and filters are free again."""
        record = self.sockets.pop(owner, None)
        self._tx_wanted.pop(owner, None)
        if record is None:
            return
        self.filters.remove(owner)
        if record.endpoint:
            self.endpoints_used -= 1

    # --- filters ------------------------------------------------------------------------
    def wild_filters(self, protocol: int, addr: Ipv4Addr, port: int) -> list[Filter] | None:
        """The wild filters a listener or bound UDP socket needs (one per accelerated
        local address for INADDR_ANY); None when ``addr`` is not on an accelerated
        interface (such a socket is handed over)."""
        ifaces = [i for i in self.stack.interfaces.values() if self.accelerated_interface(i)]
        if addr == ANY:
            return [Filter(FilterKind.WILD, protocol, (i.address, port)) for i in ifaces]
        if any(i.address == addr for i in ifaces):
            return [Filter(FilterKind.WILD, protocol, (addr, port))]
        return None

    def bound(self, owner: int, protocol: int, addr: Ipv4Addr, port: int, *, listen: bool) -> None:
        """bind() of a UDP socket, listen() of a TCP one: its wild filters."""
        record = self.sockets.get(owner)
        if record is None or not record.accelerated:
            return
        name = "tcp_handover_listen" if protocol == TCP else "udp_handover_bind"
        wild = self.wild_filters(protocol, addr, port)
        if wild is None:
            self._hand_over(record, name, f"{ipv4_str(addr)} is not on an accelerated interface")
            return
        self.filters.remove(owner)
        self._install(record, wild, "tcp_handover_listen" if listen else "udp_bind_no_filter")

    def connected(
        self, owner: int, protocol: int, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int]
    ) -> None:
        """connect(): a full-match filter replaces any wild one."""
        record = self.sockets.get(owner)
        if record is None or not record.accelerated:
            return
        iface = self._interface_of(local[0])
        if iface is None or not self.accelerated_interface(iface):
            name = "tcp_handover_connect" if protocol == TCP else "udp_handover_connect"
            self._hand_over(record, name, f"route via a non-accelerated interface to {ipv4_str(remote[0])}")
            return
        full = [Filter(FilterKind.FULL, protocol, local, remote)]
        self.filters.remove(owner)
        self._install(record, full, "tcp_handover_connect" if protocol == TCP else "udp_connect_no_filter")

    def joined(self, owner: int, group: Ipv4Addr, port: int, iface: Interface) -> None:
        """A multicast membership: the (group, port) filter, shared by every member."""
        record = self.sockets.get(owner)
        if record is None or not record.accelerated:
            return
        policy = self.stack.config.mcast_join_handover
        if policy is McastJoinHandover.ALWAYS or (
            policy is McastJoinHandover.KERNEL and not self.accelerated_interface(iface)
        ):
            self._hand_over(record, "udp_handover_setsockopt", f"EF_MCAST_JOIN_HANDOVER={int(policy)}")
            return
        if not self.stack.config.mcast_recv or not self.accelerated_interface(iface):
            record.reason = "multicast received through the kernel"
            self.counters["udp_mcast_kernel_rx"] += 1
            return
        self._install(record, [Filter(FilterKind.MULTICAST, UDP, (group, port))], "udp_handover_setsockopt")

    def left(self, owner: int, group: Ipv4Addr, port: int) -> None:
        self.filters.remove(owner, [Filter(FilterKind.MULTICAST, UDP, (group, port))])

    def _install(self, record: SocketRecord, filters: Iterable[Filter], counter: str) -> None:
        try:
            self.filters.insert(record.owner, filters)
        except FilterTableFullError as e:
            self.counters["sw_filter_insert_table_full"] += 1
            if not self.stack.config.no_fail:
                raise OSError(errno.EBUSY, f"{os.strerror(errno.EBUSY)}: filter table full ({e})") from None
            self._hand_over(record, counter, f"filter table full ({e})")

    def _hand_over(self, record: SocketRecord, counter: str, reason: str) -> None:
        record.accelerated = False
        record.reason = reason
        if record.endpoint:
            record.endpoint = False
            self.endpoints_used -= 1
        self.filters.remove(record.owner)
        self.counters[counter] += 1

    def _interface_of(self, addr: Ipv4Addr) -> Interface | None:
        for iface in self.stack.interfaces.values():
            if iface.address == addr:
                return iface
        return None

    # --- frames ------------------------------------------------------------------------
    def rx_frame(self, frame: bytes = b"", iface: Interface | None = None) -> bool:
        """A frame arrived: it takes an RX descriptor, or is dropped when the ring is
        full (the stack has not polled since ``EF_RXQ_SIZE`` frames arrived); then an
        RX packet buffer, or is dropped for memory pressure.

        Under memory pressure Onload still takes the segment that fills the hole at
        the head of a connection's out-of-order queue, from a small reserve (the
        ``pressure_pool`` of ``onload_stackdump``): else the queued segments, which
        cannot be read before it, would hold the buffers forever."""
        if self.rx_fill >= self.rxq_size:
            self.counters["rx_nodesc_drops"] += 1
            return False
        pool = self.buffers
        pool.set_tx(self.tx_held())
        # Counting what the sockets hold walks every connection: do it only when an
        # upper bound (the last count plus the frames taken since) says the pool may
        # be short, so a busy stack with many connections pays per frame O(1).
        pool.set_rx(self._rx_bound)
        if not pool.rx_room():
            self._rx_bound = self.rx_held()
            pool.set_rx(self._rx_bound)
        if not pool.rx_room():
            if not self._fills_a_hole(frame, iface):
                self.counters["memory_pressure_drops"] += 1
                return False
            self.counters["memory_pressure_pool_used"] += 1
        self._rx_bound += 1
        self.rx_fill += 1
        return True

    def _fills_a_hole(self, frame: bytes, iface: Interface | None) -> bool:
        """Whether ``frame`` is the next in-order TCP segment of an accelerated
        connection whose out-of-order queue holds data."""
        try:
            if iface is not None and iface.is_ethernet:
                eth = EthernetFrame(frame)
                if eth.ethertype != ETHERTYPE_IPV4:
                    return False
                frame = bytes(eth.payload)
            ip = Ipv4Packet(frame)
            if ip.protocol != TCP or ip.is_fragment:
                return False
            seg = TcpSegment(ip.payload)
        except WireError:
            return False
        conn = self.stack.tcp.connections.get((ip.dst, seg.dst_port, ip.src, seg.src_port))
        if conn is None or conn.onload is None or not conn.onload.accelerated:
            return False
        return conn.ooo.bytes_queued > 0 and seg.seq == conn.rcv_nxt

    def polled(self) -> None:
        """The stack polled: every RX descriptor is free again."""
        self.rx_fill = 0

    def rx_held(self) -> int:
        """RX buffers held by payload queued on accelerated sockets: one per UDP
        datagram, ``ceil(bytes / MSS)`` for a TCP connection's receive and out-of-order
        queues (a read-only look at the endpoints)."""
        held = 0
        udp_ports: dict[int, list[UdpEndpoint]] = getattr(self.stack.udp, "_bound", {})
        for endpoints in udp_ports.values():
            for ep in endpoints:
                if ep.rx and ep.onload.accelerated:
                    held += len(ep.rx)
        for conn in self.stack.tcp.connections.values():
            record = conn.onload
            if record is None or not record.accelerated:
                continue
            queued = len(conn.rcv_buf) + conn.ooo.bytes_queued
            if queued:
                held += -(-queued // (conn.mss_advertised or DEFAULT_MSS))
        return held

    def tx_held(self) -> int:
        """TX buffers held by frames in the TX rings and overflow queues."""
        held = 0
        for iface in self.stack.wired:
            held += len(iface.tx)
        return held

    def tx_frame(self) -> bool:
        """A frame is about to be queued for the TX ring: it takes a TX buffer, or is
        dropped (``memory_pressure_tx_drops``) and left to TCP's retransmission."""
        pool = self.buffers
        held = self.tx_held()
        if held + 1 > pool.max_tx or pool.rx + held + 1 > pool.max_packets:  # BufferPool.tx_room
            pool.set_tx(held)
            self.counters["memory_pressure_tx_drops"] += 1
            return False
        pool.set_tx(held + 1)
        return True

    def udp_send(self, record: SocketRecord, size: int) -> None:
        """Before a UDP send of ``size`` bytes: the TX buffers its frames need (one per
        IP fragment).  Short of them, EF_UDP_SEND_NONBLOCK_NO_PACKETS_MODE=1 fails with
        ENOBUFS; 0 (the default) behaves as Linux short of send memory: the call would
        block (``BlockingIOError``), so a blocking socket waits for the TX ring to drain
        and a non-blocking one gets EAGAIN.  (Onload's doc for mode 0: "Onload will
        mimic Linux kernel stack behaviour and block for packet buffers to be
        available", even in a non-blocking call; a sans-I/O attempt cannot block, and
        EAGAIN is what the non-blocking call would see were it to give up.)"""
        if not record.accelerated:
            return  # the kernel's memory, not the pool's
        needed = self._frames_for(size)
        pool = self.buffers
        pool.set_tx(self.tx_held())
        if pool.tx_room(needed):
            self._tx_wanted.pop(record.owner, None)
            return
        self.counters["udp_send_no_pkt_buf"] += 1
        if self.stack.config.udp_send_nonblock_no_packets_mode:
            raise OSError(errno.ENOBUFS, os.strerror(errno.ENOBUFS))
        self._tx_wanted[record.owner] = needed
        raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))

    def udp_send_ready(self, record: SocketRecord) -> bool:
        """Whether the TX buffers a blocked UDP send waits for are free (writability)."""
        if not record.accelerated:
            return True
        self.buffers.set_tx(self.tx_held())
        return self.buffers.tx_room(self._tx_wanted.get(record.owner, 1))

    def _frames_for(self, size: int) -> int:
        """The frames a UDP datagram of ``size`` payload bytes becomes (RFC 791 fragments)."""
        mtu = self.stack.primary.mtu
        if size + 28 <= mtu:
            return 1
        per_fragment = (mtu - 20) // 8 * 8
        return -(-(size + 8) // per_fragment)

    # --- option effects --------------------------------------------------------------------
    def tcp_buffer_defaults(self, core: object) -> None:
        """EF_TCP_SNDBUF / EF_TCP_RCVBUF: a new accelerated TCP socket's SO_SNDBUF /
        SO_RCVBUF, doubled as Linux doubles a request (Onload ``ci_tcp_state_init``:
        ``so.sndbuf = oo_adjust_SO_XBUF(tcp_sndbuf_user)``; 0 leaves the default)."""
        record = getattr(core, "onload", None)
        if record is None or not record.accelerated:
            return
        config = self.stack.config
        if config.tcp_sndbuf:
            core.sndbuf = 2 * config.tcp_sndbuf  # type: ignore[attr-defined]
            core.sndbuf_locked = True  # type: ignore[attr-defined]
        if config.tcp_rcvbuf:
            core.rcvbuf = 2 * config.tcp_rcvbuf  # type: ignore[attr-defined]
            core.rcvbuf_locked = True  # type: ignore[attr-defined]

    def multicast_loops(self, record: SocketRecord) -> bool:
        """Whether a multicast send of an IP_MULTICAST_LOOP socket is looped back to
        this stack's own members.  EF_MCAST_SEND: 0 (none) and 2 (ext: other stacks,
        by hardware loopback) do not loop to the same stack, 1 (local) and 3 (all) do,
        governed by IP_MULTICAST_LOOP.  Unset, refstack keeps Linux's behaviour (the
        corpus compares with Linux); a handed-over socket sends through the kernel,
        which loops per IP_MULTICAST_LOOP."""
        config = self.stack.config
        if not record.accelerated or not config.is_set("EF_MCAST_SEND"):
            return True
        if config.mcast_send & McastSend.LOCAL:
            return True
        self.counters["mcast_send_loop_suppressed"] += 1
        return False

    def classify(self, protocol: int, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int]) -> bool:
        """Whether a received TCP/UDP datagram hit one of the stack's filters (counted
        as accelerated) or would have gone to the kernel (``no_match_pass_to_kernel_*``)."""
        if self.filters.lookup(protocol, local, remote) is not None:
            self.counters["rx_accelerated"] += 1
            return True
        name = {TCP: "tcp", UDP: "udp"}.get(protocol, "ip_other")
        self.counters[f"no_match_pass_to_kernel_{name}"] += 1
        return False
