"""Read-only views of a :class:`~refstack.stack.Stack` for the diagnostic tools.

``refstack stackdump`` and the derived filter table need to walk a stack's sockets,
timers and queues.  Public attributes are read where the classes have them
(``stack.tcp.connections``, ``stack.tcp.listeners``, ``stack.igmp.memberships``,
``ArpCache.entries``...); what only exists as private state (the UDP port table, the
per-connection timers, the timer heap) is read here, in one place, defensively
(``getattr`` with a default), so that a refactoring of those classes degrades a dump
instead of breaking it.  Nothing here changes the stack.

Every socket gets a small stable number, Onload's endpoint id (``TCP b:3``): ids are
handed out in the order the tools first see the sockets and live as long as the
socket object does (a weak reference), so two dumps of the same stack agree.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .wire.addresses import Ipv4Addr, ipv4_str

if TYPE_CHECKING:
    from .stack import Stack
    from .tcp.endpoint import TcpEndpoint
    from .udp import UdpEndpoint

ANY = bytes(4)
Address = tuple[Ipv4Addr, int]

TCP_TIMERS = (("rto", "_rtx_timer"), ("delack", "_delack_timer"), ("zwin", "_persist_timer"),
              ("kalive", "_keepalive_timer"), ("timewait", "_timewait_timer"))  # fmt: skip
"""Onload's names for a connection's timers (``tcp_debug.c``) and refstack's attributes."""


@dataclass(frozen=True)
class SocketView:
    """One socket as the tools see it."""

    id: int
    proto: Literal["TCP", "UDP"]
    local: Address | None
    remote: Address | None
    state: str  # "LISTEN", "ESTABLISHED", ... for TCP; "UDP" for UDP
    endpoint: TcpEndpoint | UdpEndpoint
    passive: bool = False  # TCP: a connection that came in through a listener


_ids: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
_counter = itertools.count(1)


def socket_id(endpoint: object) -> int:
    """The endpoint's id: stable for the life of the object, unique in the process."""
    found = _ids.get(endpoint)
    if found is None:
        found = _ids[endpoint] = next(_counter)
    return found


def fmt_addr(addr: Address | None) -> str:
    """``a.b.c.d:port`` (``0.0.0.0:0`` when unset), as stackdump prints addresses."""
    if addr is None:
        return "0.0.0.0:0"
    return f"{ipv4_str(addr[0])}:{addr[1]}"


def _tcp_endpoints(stack: Stack) -> Iterator[TcpEndpoint]:
    seen: set[int] = set()
    for ep in [*stack.tcp.listeners.values(), *stack.tcp.connections.values()]:
        if id(ep) not in seen:
            seen.add(id(ep))
            yield ep


def udp_endpoints(stack: Stack) -> list[UdpEndpoint]:
    """The bound, open UDP sockets (from the UDP layer's port table, which is private)."""
    table: dict[int, list[UdpEndpoint]] = getattr(stack.udp, "_bound", {})
    out: list[UdpEndpoint] = []
    seen: set[int] = set()
    for port in sorted(table):
        for ep in table[port]:
            if id(ep) not in seen and not ep.closed:
                seen.add(id(ep))
                out.append(ep)
    return out


def sockets(stack: Stack) -> list[SocketView]:
    """Every TCP and bound UDP socket of the stack, ordered by id."""
    views: list[SocketView] = []
    for tcp in _tcp_endpoints(stack):
        views.append(
            SocketView(
                socket_id(tcp),
                "TCP",
                tcp.local,
                tcp.remote,
                tcp.state.name,
                tcp,
                passive=bool(getattr(tcp, "passive", False)),
            )
        )
    for udp in udp_endpoints(stack):
        views.append(SocketView(socket_id(udp), "UDP", udp.local, udp.remote, "UDP", udp))
    return sorted(views, key=lambda v: v.id)


def listener_of(stack: Stack, ep: TcpEndpoint) -> TcpEndpoint | None:
    """The listener that owns a passively opened connection's local address now: its
    parent while in the accept queue, else the listener on the address or the wildcard
    (accept() forgets the parent)."""
    if ep.parent is not None:
        return ep.parent
    if ep.local is None:
        return None
    listeners = stack.tcp.listeners
    return listeners.get(ep.local) or listeners.get((ANY, ep.local[1]))


def tcp_timers(ep: TcpEndpoint) -> dict[str, float]:
    """The connection's armed timers: Onload name -> deadline (stack seconds)."""
    out: dict[str, float] = {}
    for name, attr in TCP_TIMERS:
        deadline = getattr(getattr(ep, attr, None), "deadline", None)
        if isinstance(deadline, float | int):
            out[name] = float(deadline)
    return out


def armed_timers(stack: Stack) -> list[tuple[float, str]]:
    """Every armed timer of the stack as (deadline, name), earliest first."""
    return [(deadline, timer.name) for deadline, timer in stack.timers.armed()]


def memberships(stack: Stack, ep: UdpEndpoint) -> list[tuple[str, str]]:
    """(interface name, group) for each multicast group the socket joined."""
    return stack.igmp.memberships(ep.owner)


@dataclass(frozen=True)
class ReassemblyView:
    """The kernel path's IPv4 reassembly queues (``refstack.net.reassembly``)."""

    queues: int
    memory: int
    high_thresh: int
    low_thresh: int
    timeout: float


def reassembly(stack: Stack) -> ReassemblyView:
    r = stack.ip.reassembly
    return ReassemblyView(len(r), r.memory, r.high_thresh, r.low_thresh, r.timeout)


def arp_entries(stack: Stack) -> dict[str, list[tuple[str, str]]]:
    """Per Ethernet interface, (address, MAC or ``(incomplete)``) of each ARP entry."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, cache in stack.arp.items():
        rows = []
        for addr, mac in sorted(cache.entries().items()):
            rows.append((ipv4_str(addr), mac.hex(":") if mac is not None else "(incomplete)"))
        out[name] = rows
    return out
