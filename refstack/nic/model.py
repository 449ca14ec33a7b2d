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
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import McastJoinHandover
from ..counters import Counters
from ..wire.addresses import Ipv4Addr, ipv4_str
from .filters import Filter, FilterKind, FilterTable, FilterTableFullError

if TYPE_CHECKING:
    from ..net.interface import Interface
    from ..stack import Stack
    from ..tcp.endpoint import TcpEndpoint

__all__ = ["OnloadModel", "SocketRecord"]

ANY = bytes(4)
TCP, UDP = 6, 17


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
        (tcp_conn_request): with ``tcp_syncookies`` on (its default) a SYN beyond the
        request queue is answered with a cookie, which refstack approximates by keeping
        the request; with it off the SYN is dropped once the listener holds more than
        its backlog (inet_csk_reqsk_queue_is_full) or fewer than a quarter of
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

    # --- frames -------------------------------------------------------------------------
    def rx_frame(self) -> bool:
        """A frame arrived: it takes an RX descriptor, or is dropped when the ring is
        full (the stack has not polled since ``EF_RXQ_SIZE`` frames arrived)."""
        if self.rx_fill >= self.rxq_size:
            self.counters["rx_nodesc_drops"] += 1
            return False
        self.rx_fill += 1
        return True

    def polled(self) -> None:
        """The stack polled: every RX descriptor is free again."""
        self.rx_fill = 0

    def classify(self, protocol: int, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int]) -> bool:
        """Whether a received TCP/UDP datagram hit one of the stack's filters (counted
        as accelerated) or would have gone to the kernel (``no_match_pass_to_kernel_*``)."""
        if self.filters.lookup(protocol, local, remote) is not None:
            self.counters["rx_accelerated"] += 1
            return True
        name = {TCP: "tcp", UDP: "udp"}.get(protocol, "ip_other")
        self.counters[f"no_match_pass_to_kernel_{name}"] += 1
        return False
