"""Counters for everything that drops, falls back or runs out.

A :class:`Counters` is a ``collections.Counter`` of named events with one extra:
:meth:`since` gives what moved after a :meth:`mark`, so that a test can assert the
whole change at once and catch a counter nobody expected to move::

    mark = stack.counters.mark()
    ...
    assert stack.counters.since(mark) == {"ip_rx_delivered": 1, "udp_rx_delivered": 1}
"""

from __future__ import annotations

from collections import Counter


class Counters(Counter[str]):
    """Named event counts (missing names read as 0)."""

    def mark(self) -> dict[str, int]:
        return dict(self)

    def since(self, mark: dict[str, int]) -> dict[str, int]:
        """The counters that changed after ``mark``, with their increments."""
        return {k: v - mark.get(k, 0) for k, v in self.items() if v != mark.get(k, 0)}
