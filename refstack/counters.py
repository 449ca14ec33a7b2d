"""Counters for everything that drops, falls back or runs out.

A :class:`Counters` is a ``collections.Counter`` of named events with one extra:
:meth:`since` gives what moved after a :meth:`mark`, so that a test can assert the
whole change at once and catch a counter nobody expected to move::

    mark = stack.counters.mark()
    ...
    assert stack.counters.since(mark) == {"ip_rx_delivered": 1, "udp_rx_delivered": 1}

Names: a counter Linux or Onload already has keeps that name, so a report can put the
two side by side: IP reassembly uses Linux's SNMP names (``ReasmReqds``,
``ReasmOKs``, ``ReasmFails``, ``ReasmTimeout`` from RFC 4293's ipSystemStats as
``/proc/net/snmp`` shows them, ``ReasmOverlaps`` from ``/proc/net/netstat``; see
:mod:`refstack.net.reassembly`).  Traffic the accelerated path never takes is counted
under ``kernel_path_*`` (``kernel_path_rx_fragments``: every IPv4 fragment, which
Onload leaves to the kernel).  Everything else is ``<layer>_<rx|tx>_<what>``.
"""

from __future__ import annotations

from collections import Counter

KERNEL_PATH_RX_FRAGMENTS = "kernel_path_rx_fragments"
REASSEMBLY_SNMP = ("ReasmReqds", "ReasmOKs", "ReasmFails", "ReasmTimeout", "ReasmOverlaps")


class Counters(Counter[str]):
    """Named event counts (missing names read as 0)."""

    def mark(self) -> dict[str, int]:
        return dict(self)

    def since(self, mark: dict[str, int]) -> dict[str, int]:
        """The counters that changed after ``mark``, with their increments."""
        return {k: v - mark.get(k, 0) for k, v in self.items() if v != mark.get(k, 0)}
