"""Clocks for the drivers of a sans-I/O stack.

The stack never reads a clock (``../shared/DESIGN.md``, "Sans-I/O"): every call into it
carries ``now``, a float count of seconds.  A driver owns a :class:`Clock` and passes its
reading in.  Two clocks exist:

- :class:`VirtualClock` -- time that moves only when told to.  The simulation driver
  jumps it to the next timer or frame arrival, so ten virtual minutes cost a few
  thousand function calls and no sleeping.
- :class:`MonotonicClock` -- real elapsed time (``time.monotonic``, Linux
  ``CLOCK_MONOTONIC``), rebased to start at 0 so both clocks read "seconds since the
  driver started".

Both are monotonic: no reading is ever smaller than an earlier one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time, in seconds since its origin, never going backwards."""

    def now(self) -> float: ...


class VirtualClock:
    """Time that moves only when a driver moves it, and only forwards.

    ``advance_to`` jumps to an absolute time, ``advance`` by a duration.  Time is a
    float, so repeated ``advance(0.1)`` accumulates the usual binary rounding; tests
    that compare times exactly use binary fractions (0.5, 0.125, ...).
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"a clock starts at a finite time, not {start}")
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance_to(self, t: float) -> None:
        """Move the clock to ``t``; staying put is allowed, going back is a ``ValueError``."""
        if not math.isfinite(t):
            raise ValueError(f"cannot move the clock from {self._now} to {t}: not a finite time")
        if t < self._now:
            raise ValueError(f"cannot move the clock backwards from {self._now} to {t}")
        self._now = float(t)

    def advance(self, dt: float) -> None:
        """Move the clock forwards by ``dt`` seconds (``dt >= 0``)."""
        if not dt >= 0:  # also rejects NaN
            raise ValueError(
                f"cannot advance the clock by {dt} s: it would move from {self._now} to {self._now + dt}"
            )
        self.advance_to(self._now + dt)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now})"


class MonotonicClock:
    """Real elapsed time in seconds, 0 at construction.

    Reads ``time.monotonic()`` (Linux ``CLOCK_MONOTONIC``: unaffected by wall-clock
    changes, never backwards) minus the reading taken when the clock was made.
    ``source`` replaces ``time.monotonic`` (for tests, or ``time.perf_counter``).
    """

    __slots__ = ("_origin", "_source")

    def __init__(self, source: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._origin = source()

    def now(self) -> float:
        return self._source() - self._origin

    def __repr__(self) -> str:
        return f"MonotonicClock(now={self.now()})"
