"""The hardware filters Onload would install for a stack's sockets, derived from socket state.

refstack does not model the NIC's filter table yet (issue 4's ``FilterTable``), so
``refstack stackdump filters`` shows what Onload's filter manager (``oof_filters.c``)
would install for the sockets as they are now, by the rules of
``shared/onload/FILTERS_AND_HANDOVER.md``:

- a connected TCP socket (active open) and a connected UDP socket get a **full
  match** filter on the 5-tuple (``oof_socket_add_full_hw``);
- a passively accepted TCP connection **shares its listener's wild filter** (software
  filter only, ``lpa_n_full_sharers``) while the listener listens; once the listener
  is gone it needs a full-match filter of its own;
- a listener, and a bound unconnected UDP socket, get a 3-tuple filter (proto, local
  address, port): one on the bound address (**semi-wild**), or, bound to INADDR_ANY,
  one per local address of every accelerated interface (**wild**,
  ``oof_socket_add_wild``);
- a UDP socket's multicast memberships get one **multicast** filter per (group,
  port) and interface (``oof_mcast_install``), none with EF_MCAST_RECV=0 (the kernel
  receives); a socket bound to a group address it has not joined is
  ``UNREACHABLE (need IP_ADD_MEMBERSHIP)``.

Loopback is not an accelerated interface (Onload hands such sockets to the kernel),
nor is an interface EF_INTERFACE_WHITELIST leaves out or EF_INTERFACE_BLACKLIST
names.  Identical filters are one hardware filter shared by their sockets.  The
per-socket words are Onload's (``ACCELERATED (full)``, ``ACCELERATED (wild)``,
``ACCELERATED (sharing wild)``...); ``HANDOVER (...)`` marks a socket Onload would
not accelerate at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from ..introspect import ANY, SocketView, listener_of, memberships, sockets
from ..tcp.endpoint import TcpEndpoint
from ..udp import UdpEndpoint
from ..wire.addresses import Ipv4Addr, ipv4_str, is_multicast_ipv4

if TYPE_CHECKING:
    from ..net.interface import Interface
    from ..stack import Stack

Kind = Literal["full", "wild", "semi-wild", "mcast"]
FilterKey = tuple[str, str, str, int, str, int, str]  # kind, proto, laddr, lport, raddr, rport, interface

LOOPBACK = "lo"


@dataclass
class Filter:
    """One hardware filter and the sockets (ids) that receive through it."""

    kind: Kind
    proto: Literal["TCP", "UDP"]
    laddr: str
    lport: int
    interface: str
    raddr: str = "0.0.0.0"
    rport: int = 0
    sockets: list[int] = field(default_factory=list)

    @property
    def key(self) -> FilterKey:
        return (self.kind, self.proto, self.laddr, self.lport, self.raddr, self.rport, self.interface)


@dataclass
class SocketFilters:
    """One socket, its Onload filter state and the keys of the filters it uses."""

    socket: SocketView
    state: str
    uses: list[FilterKey] = field(default_factory=list)


@dataclass
class FilterTable:
    """The derived filters of a stack, in the order the sockets were seen."""

    filters: list[Filter]
    sockets: list[SocketFilters]
    interfaces: list[str]  # the accelerated interfaces (Onload's hwports)
    capacity: int  # EF_MAX_FILTERS

    @property
    def over_capacity(self) -> bool:
        return len(self.filters) > self.capacity


def accelerated_interfaces(stack: Stack) -> list[Interface]:
    """The interfaces Onload would accelerate: not loopback, allowed by the lists."""
    white, black = stack.config.interface_whitelist, stack.config.interface_blacklist
    return [
        iface
        for iface in stack.interfaces.values()
        if iface.name != LOOPBACK and (not white or iface.name in white) and iface.name not in black
    ]


def derive_filters(stack: Stack) -> FilterTable:
    """The filters Onload would install for ``stack``'s sockets now (see the module doc)."""
    b = _Builder(stack)
    for v in sockets(stack):
        if v.local is None:
            continue
        row = SocketFilters(v, "")
        state = b.tcp(v, row) if v.proto == "TCP" else b.udp(v, row)
        if state is not None:
            row.state = state
            b.rows.append(row)
    return FilterTable(list(b.table.values()), b.rows, [i.name for i in b.ifaces], stack.config.max_filters)


HANDOVER = "HANDOVER (not an accelerated address)"


class _Builder:
    """The filter table under construction: shared filters and per-socket rows."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ifaces = accelerated_interfaces(stack)
        self.by_addr = {iface.address: iface for iface in self.ifaces}
        self.table: dict[FilterKey, Filter] = {}
        self.rows: list[SocketFilters] = []

    def use(self, row: SocketFilters, f: Filter) -> None:
        shared = self.table.setdefault(f.key, f)
        shared.sockets.append(row.socket.id)
        row.uses.append(f.key)

    def wild(self, row: SocketFilters, proto: Literal["TCP", "UDP"], laddr: Ipv4Addr, lport: int) -> bool:
        """3-tuple filters for a listener or a bound UDP socket; False if none apply."""
        if laddr == ANY:
            for iface in self.ifaces:
                self.use(row, Filter("wild", proto, ipv4_str(iface.address), lport, iface.name))
            return bool(self.ifaces)
        bound = self.by_addr.get(laddr)
        if bound is None:
            return False
        self.use(row, Filter("semi-wild", proto, ipv4_str(laddr), lport, bound.name))
        return True

    def full(self, row: SocketFilters, v: SocketView) -> bool:
        """The 5-tuple filter of a connected socket; False if its address is not accelerated."""
        assert v.local is not None and v.remote is not None
        iface = self.by_addr.get(v.local[0])
        if iface is None:
            return False
        laddr, raddr = ipv4_str(v.local[0]), ipv4_str(v.remote[0])
        self.use(row, Filter("full", v.proto, laddr, v.local[1], iface.name, raddr, v.remote[1]))
        return True

    def tcp(self, v: SocketView, row: SocketFilters) -> str | None:
        assert v.local is not None
        if v.state == "CLOSED" or (v.state != "LISTEN" and v.remote is None):
            return None  # bound only: Onload installs TCP filters at listen/connect
        if v.state == "LISTEN":
            return "ACCELERATED (wild)" if self.wild(row, "TCP", *v.local) else HANDOVER
        listener = listener_of(self.stack, v.endpoint) if isinstance(v.endpoint, TcpEndpoint) else None
        if v.passive and listener is not None and listener.local is not None:
            iface = self.by_addr.get(v.local[0])
            if iface is None:
                return HANDOVER
            kind: Kind = "wild" if listener.local[0] == ANY else "semi-wild"
            self.use(row, Filter(kind, "TCP", ipv4_str(v.local[0]), v.local[1], iface.name))
            return "ACCELERATED (sharing wild)"
        return "ACCELERATED (full)" if self.full(row, v) else HANDOVER

    def udp(self, v: SocketView, row: SocketFilters) -> str:
        assert v.local is not None and isinstance(v.endpoint, UdpEndpoint)
        laddr, lport = v.local
        joined = memberships(self.stack, v.endpoint)
        if is_multicast_ipv4(laddr):
            joined = [(name, g) for name, g in joined if g == ipv4_str(laddr)]
        names = {i.name for i in self.ifaces}
        mcast = [(name, g) for name, g in joined if name in names]
        recv = self.stack.config.mcast_recv
        if recv:
            for name, group in mcast:
                self.use(row, Filter("mcast", "UDP", group, lport, name))
        if is_multicast_ipv4(laddr):
            if not joined:
                return "UNREACHABLE (need IP_ADD_MEMBERSHIP)"
            return "ACCELERATED (multicast laddr)" if mcast and recv else "KERNEL (multicast laddr)"
        if v.remote is not None:
            unicast = "ACCELERATED (full)" if self.full(row, v) else HANDOVER
        else:
            unicast = "ACCELERATED (wild)" if self.wild(row, "UDP", laddr, lport) else HANDOVER
        if mcast and not recv:
            return f"{unicast}; KERNEL (multicast: EF_MCAST_RECV=0)"
        return unicast
