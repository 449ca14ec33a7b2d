"""A timer queue for a sans-I/O stack: deadlines in, due callbacks out.

The stack never sleeps.  Owners (connections, the ARP cache, ICMP rate limiters)
arm named timers; ``Stack.poll(now)`` runs the ones that are due and
``Stack.next_deadline()`` is the earliest still armed.  Re-arming or cancelling a
timer is O(log n): old heap entries are left behind and skipped when popped
(lazy deletion), keyed by a per-timer generation number.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Timer:
    """One re-armable timer.  ``deadline`` is None while disarmed."""

    __slots__ = ("_gen", "_queue", "callback", "deadline", "name")

    def __init__(self, queue: TimerQueue, name: str, callback: Callable[[float], None]) -> None:
        self._queue = queue
        self._gen = 0
        self.name = name
        self.callback = callback
        self.deadline: float | None = None

    def arm(self, deadline: float) -> None:
        """(Re)arm to fire at ``deadline``."""
        self._gen += 1
        self.deadline = deadline
        self._queue._push(deadline, self, self._gen)

    def arm_if_earlier(self, deadline: float) -> None:
        if self.deadline is None or deadline < self.deadline:
            self.arm(deadline)

    def cancel(self) -> None:
        self._gen += 1
        self.deadline = None

    @property
    def armed(self) -> bool:
        return self.deadline is not None

    def __repr__(self) -> str:
        return f"<Timer {self.name} at {self.deadline}>"


class TimerQueue:
    """A heap of armed timers ordered by deadline, then by arming order."""

    __slots__ = ("_heap", "_order")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer, int]] = []
        self._order = itertools.count()

    def timer(self, name: str, callback: Callable[[float], None]) -> Timer:
        return Timer(self, name, callback)

    def _push(self, deadline: float, timer: Timer, gen: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._order), timer, gen))

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap and heap[0][3] != heap[0][2]._gen:
            heapq.heappop(heap)

    def next_deadline(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def run_due(self, now: float) -> int:
        """Fire every timer due at or before ``now``; timers armed by callbacks for a
        time <= now fire in the same call.  Returns the number fired."""
        fired = 0
        heap = self._heap
        while True:
            self._drop_stale()
            if not heap or heap[0][0] > now:
                return fired
            _, _, timer, _ = heapq.heappop(heap)
            timer.deadline = None
            timer._gen += 1
            timer.callback(now)
            fired += 1
