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

    __slots__ = ("_gen", "_key", "_queue", "_queued", "callback", "deadline", "name")

    def __init__(self, queue: TimerQueue, name: str, callback: Callable[[float], None]) -> None:
        self._queue = queue
        self._gen = 0
        self._key = 0  # arming order: timers due at the same time fire in it
        self._queued: float | None = None  # the time of this timer's live heap entry
        self.name = name
        self.callback = callback
        self.deadline: float | None = None

    def arm(self, deadline: float) -> None:
        """(Re)arm to fire at ``deadline``.

        Pushed lazily: a timer moved *later* (the retransmission timer on every ACK)
        keeps its earlier heap entry, which is pushed again at the new deadline when it
        surfaces; only a move earlier pushes a new entry.  Either way it fires at
        ``deadline``, ordered among timers due at the same time by this arming."""
        self.deadline = deadline
        self._key = next(self._queue._order)
        queued = self._queued
        if queued is not None and queued <= deadline:
            return
        self._gen += 1
        self._queued = deadline
        self._queue._push(deadline, self._key, self, self._gen)

    def arm_if_earlier(self, deadline: float) -> None:
        if self.deadline is None or deadline < self.deadline:
            self.arm(deadline)

    def cancel(self) -> None:
        self.deadline = None  # its heap entry, if any, is dropped when it surfaces

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

    def _push(self, deadline: float, key: int, timer: Timer, gen: int) -> None:
        heapq.heappush(self._heap, (deadline, key, timer, gen))

    def _settle(self) -> None:
        """Make the head of the heap a timer due at its entry's time: drop entries of
        cancelled or re-pushed timers, and push again those armed later since."""
        heap = self._heap
        while heap:
            when, _, timer, gen = heap[0]
            if gen != timer._gen:
                heapq.heappop(heap)  # superseded by an earlier entry of the same timer
                continue
            deadline = timer.deadline
            if deadline == when:
                return
            heapq.heappop(heap)
            if deadline is None:
                timer._queued = None
            else:
                timer._gen += 1
                timer._queued = deadline
                heapq.heappush(heap, (deadline, timer._key, timer, timer._gen))

    def next_deadline(self) -> float | None:
        self._settle()
        return self._heap[0][0] if self._heap else None

    def armed(self) -> list[tuple[float, Timer]]:
        """Every armed timer as (deadline, timer), earliest first (for introspection)."""
        timers = {id(t): t for _, _, t, gen in self._heap if gen == t._gen}
        armed = [(t.deadline, t._key, t) for t in timers.values() if t.deadline is not None]
        return [(deadline, t) for deadline, _, t in sorted(armed, key=lambda x: (x[0], x[1]))]

    def __len__(self) -> int:
        """Heap entries, live or not (a measure of the queue's memory)."""
        return len(self._heap)

    def run_due(self, now: float) -> int:
        """Fire every timer due at or before ``now``; timers armed by callbacks for a
        time <= now fire in the same call.  Returns the number fired."""
        fired = 0
        heap = self._heap
        while True:
            self._settle()
            if not heap or heap[0][0] > now:
                return fired
            _, _, timer, _ = heapq.heappop(heap)
            timer.deadline = None
            timer._queued = None
            timer._gen += 1
            timer.callback(now)
            fired += 1
