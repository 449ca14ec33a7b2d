"""The filter table: how an Onload-style NIC steers a frame to a stack's socket.

Onload installs one filter per socket that can receive (``oof_filters.c``; see
``../shared/onload/FILTERS_AND_HANDOVER.md``):

- **full match** (protocol, local address, local port, remote address, remote port)
  for a connected TCP or UDP socket;
- **wild** (protocol, local address, local port) for a listener or a bound UDP
  socket: one per local address of the stack's interfaces when bound to INADDR_ANY,
  else one for its address ("semi-wild");
- **multicast** (group, port) for a UDP socket's membership, shared by every socket
  of the stack with the same (group, port);
- an accepted TCP connection shares its listener's wild filter and takes no entry.

The table is finite (``EF_MAX_FILTERS``); an insertion that does not fit raises
:class:`FilterTableFullError` and leaves the table as it was (all of a socket's
filters or none, as ``oof_socket_add_wild`` needs them on every address).  A frame
that matches no filter is not the stack's: the NIC passes it to the kernel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum

from ..wire.addresses import Ipv4Addr, ipv4_str

__all__ = ["Filter", "FilterKind", "FilterTable", "FilterTableFullError"]


class FilterKind(Enum):
    FULL = "full"
    WILD = "wild"
    MULTICAST = "multicast"


@dataclass(frozen=True, slots=True)
class Filter:
    """One hardware filter.  ``remote`` is set for full-match filters only."""

    kind: FilterKind
    protocol: int  # 6 TCP, 17 UDP
    local: tuple[Ipv4Addr, int]
    remote: tuple[Ipv4Addr, int] | None = None

    def __str__(self) -> str:
        proto = {6: "TCP", 17: "UDP"}.get(self.protocol, str(self.protocol))
        local = f"{ipv4_str(self.local[0])}:{self.local[1]}"
        if self.remote is None:
            return f"{self.kind.value:9} {proto} {local}"
        return f"{self.kind.value:9} {proto} {local} {ipv4_str(self.remote[0])}:{self.remote[1]}"


class FilterTableFullError(Exception):
    """No room for a socket's filters (Onload: the hardware table is full, -EBUSY)."""


class FilterTable:
    """A finite table of filters, each held by one or more owners (socket ids)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._owners: dict[Filter, set[int]] = {}
        self._by_owner: dict[int, set[Filter]] = {}
        self.high_water = 0
        # What lookup() answered, by (protocol, local, remote), until the table changes:
        # a NIC matches in hardware; the model should not cost per frame what it cost.
        self._lookups: dict[tuple[int, tuple[Ipv4Addr, int], tuple[Ipv4Addr, int]], Filter | None] = {}

    def __len__(self) -> int:
        return len(self._owners)

    def __iter__(self) -> Iterator[tuple[Filter, frozenset[int]]]:
        for f, owners in sorted(self._owners.items(), key=lambda item: str(item[0])):
            yield f, frozenset(owners)

    def insert(self, owner: int, filters: Iterable[Filter]) -> None:
        """Give ``owner`` every filter of ``filters`` (shared with owners that hold the
        same one), or none of them when the new entries do not fit."""
        wanted = [f for f in dict.fromkeys(filters) if owner not in self._owners.get(f, ())]
        new = [f for f in wanted if f not in self._owners]
        if len(self._owners) + len(new) > self.capacity:
            raise FilterTableFullError(
                f"{len(new)} filter(s) needed, {self.capacity - len(self._owners)} free of {self.capacity}"
            )
        self._lookups.clear()
        for f in wanted:
            self._owners.setdefault(f, set()).add(owner)
            self._by_owner.setdefault(owner, set()).add(f)
        self.high_water = max(self.high_water, len(self._owners))

    def remove(self, owner: int, filters: Iterable[Filter] | None = None) -> None:
        """Drop ``owner``'s hold on ``filters`` (all of its filters by default); a filter
        nobody holds any more leaves the table."""
        held = self._by_owner.get(owner, set())
        self._lookups.clear()
        for f in list(held if filters is None else filters):
            if f not in held:
                continue
            held.discard(f)
            owners = self._owners.get(f)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._owners[f]
        if not held:
            self._by_owner.pop(owner, None)

    def held_by(self, owner: int) -> frozenset[Filter]:
        return frozenset(self._by_owner.get(owner, ()))

    def lookup(
        self, protocol: int, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int]
    ) -> Filter | None:
        """The filter a frame to ``local`` from ``remote`` hits: full match first, then
        wild or multicast on the destination (the NIC's precedence)."""
        key = (protocol, local, remote)
        try:
            return self._lookups[key]
        except KeyError:
            pass
        if len(self._lookups) >= 4096:
            self._lookups.clear()
        found = self._lookups[key] = self._match(protocol, local, remote)
        return found

    def _match(
        self, protocol: int, local: tuple[Ipv4Addr, int], remote: tuple[Ipv4Addr, int]
    ) -> Filter | None:
        full = Filter(FilterKind.FULL, protocol, local, remote)
        if full in self._owners:
            return full
        for kind in (FilterKind.WILD, FilterKind.MULTICAST):
            f = Filter(kind, protocol, local)
            if f in self._owners:
                return f
        return None
