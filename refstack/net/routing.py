"""The routing table: longest-prefix match (RFC 1812 §5.2.4.3, as hosts use it).

Each interface adds its connected route; further routes name a gateway.  A lookup
gives the interface, the next hop (the gateway, or the destination itself when it
is on-link) and the preferred source address (the interface's, RFC 1122 §3.3.4.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..wire.addresses import Ipv4Addr, ipv4_str
from .interface import Interface

_CACHE_LIMIT = 4096  # destinations remembered; the cache starts over when full


@dataclass(frozen=True)
class Route:
    network: int
    prefix_len: int
    interface: Interface
    gateway: Ipv4Addr | None = None

    def matches(self, addr: Ipv4Addr) -> bool:
        mask = (0xFFFFFFFF << (32 - self.prefix_len)) & 0xFFFFFFFF
        return int.from_bytes(addr, "big") & mask == self.network

    def __str__(self) -> str:
        dest = f"{ipv4_str(self.network.to_bytes(4, 'big'))}/{self.prefix_len}"
        via = f" via {ipv4_str(self.gateway)}" if self.gateway else ""
        return f"{dest}{via} dev {self.interface.name}"


@dataclass(frozen=True)
class NextHop:
    interface: Interface
    address: Ipv4Addr  # where to send the frame (gateway or destination)
    source: Ipv4Addr


class RoutingTable:
    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._cache: dict[Ipv4Addr, NextHop | None] = {}
        self.generation = 0  # moves on every change: routes cached elsewhere check it

    def add(
        self, network: Ipv4Addr, prefix_len: int, interface: Interface, gateway: Ipv4Addr | None = None
    ) -> Route:
        if not 0 <= prefix_len <= 32:
            raise ValueError(f"prefix length {prefix_len} is outside 0..32")
        mask = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF
        route = Route(int.from_bytes(network, "big") & mask, prefix_len, interface, gateway)
        self._routes.append(route)
        # Longest prefix first; among equals, the first added wins (stable sort).
        self._routes.sort(key=lambda r: -r.prefix_len)
        self._cache.clear()
        self.generation += 1
        return route

    def remove_interface(self, interface: Interface) -> None:
        self._routes = [r for r in self._routes if r.interface is not interface]
        self._cache.clear()
        self.generation += 1

    def lookup(self, dst: Ipv4Addr) -> NextHop | None:
        """Longest-prefix match, remembered per destination until the table changes
        (a host's route cache: the lookup runs for every datagram sent)."""
        try:
            return self._cache[dst]
        except KeyError:
            pass
        found = None
        for route in self._routes:
            if route.matches(dst):
                hop = route.gateway if route.gateway is not None else dst
                found = NextHop(route.interface, hop, route.interface.address)
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[dst] = found
        return found

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)
