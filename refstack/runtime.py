"""The runtime under the socket API: a descriptor table and a driver that does the waiting.

Blocking without threads (``../shared/DESIGN.md``).  Every socket call is a
non-blocking attempt on a socket core plus the condition it waits for.  When the
attempt cannot complete, a blocking socket hands the condition to the runtime's
:class:`Driver`, which returns once the condition holds (or the timeout passes), and
the call retries.  One implementation of each call; the driver decides what waiting
means:

- :class:`VirtualDriver` steps a :class:`~refstack.simulation.Simulation` in virtual
  time until the condition holds: a blocked ``recv`` jumps the clock straight to the
  arrival of the datagram that ends it, and a ``settimeout(0.5)`` times out after
  exactly 0.5 virtual seconds.  Nothing sleeps.
- A real-time driver (an event loop thread feeding a TUN device) implements the same
  two methods later.

A :class:`Runtime` is what a process is to the kernel: it owns a :class:`Stack`, a
driver and a descriptor table.  Descriptors are allocated as POSIX does (the lowest
free number, from 3 since 0-2 are stdio) and refer to *open files*: socket cores
wrapped by :mod:`refstack.socket`, and epoll instances from :mod:`refstack.select`.
Readiness (``poll_mask``) and the ``activity`` counter that edge-triggered epoll
watches live on the open file, so select, poll and epoll need nothing else.

:func:`current`, :func:`set_current` and :func:`use` name the default runtime that
``refstack.socket.socket()`` uses when no ``runtime=`` is given.
"""

from __future__ import annotations

import errno
import heapq
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .simulation import Simulation
    from .stack import Stack

FIRST_FD = 3
"""The first descriptor handed out (0, 1 and 2 are stdin, stdout and stderr)."""

DEFAULT_HORIZON = 86400.0
"""How long (virtual seconds) :class:`VirtualDriver` lets a call without a timeout block
before it declares it blocked forever: one day, beyond every TCP timer but keepalive's
maximum."""


class Driver(Protocol):
    """What a runtime needs from whoever moves time and bytes."""

    def now(self) -> float:
        """The time in seconds, as the stack sees it (passed into every core call)."""

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        """Run until ``condition()`` holds (True) or ``timeout`` seconds pass (False).

        ``timeout`` None waits without a limit; 0 never moves time forwards.
        """


class BlockedForeverError(RuntimeError):
    """A call without a timeout waited for something that never happens."""


class Condition:
    """A wait condition with a name, so that "blocked forever" can say what it waited for."""

    __slots__ = ("_test", "description")

    def __init__(self, description: str, test: Callable[[], bool]) -> None:
        self.description = description
        self._test = test

    def __call__(self) -> bool:
        return self._test()

    def __repr__(self) -> str:
        return f"<Condition {self.description}>"


def describe(condition: Callable[[], bool]) -> str:
    """The description of a :class:`Condition`, or the qualified name of a plain callable."""
    if isinstance(condition, Condition):
        return condition.description
    return getattr(condition, "__qualname__", None) or repr(condition)


class VirtualDriver:
    """Waiting as stepping a :class:`~refstack.simulation.Simulation` in virtual time.

    ``wait_until(condition, timeout)`` is ``sim.run_until(condition, timeout)``: events
    run in order until the condition holds; on timeout the clock is left exactly
    ``timeout`` later.  Without a timeout the wait is bounded by ``horizon`` virtual
    seconds, after which :class:`BlockedForeverError` names the condition: a deterministic
    run in which nothing can ever wake the caller must fail, not hang.
    """

    __slots__ = ("_sim", "horizon")

    def __init__(self, sim: Simulation, *, horizon: float = DEFAULT_HORIZON) -> None:
        if not (math.isfinite(horizon) and horizon > 0):
            raise ValueError(f"horizon must be a finite number of seconds > 0, not {horizon}")
        self._sim = sim
        self.horizon = horizon

    @property
    def simulation(self) -> Simulation:
        return self._sim

    def now(self) -> float:
        return self._sim.now()

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        if timeout is not None and math.isinf(timeout) and timeout > 0:
            timeout = None
        if timeout is not None:
            if not timeout >= 0:  # also rejects NaN
                raise ValueError(f"timeout must be None or a number of seconds >= 0, not {timeout}")
            return self._sim.run_until(condition, timeout)
        start = self._sim.now()
        if self._sim.run_until(condition, self.horizon):
            return True
        left = self._sim.next_event()
        why = (
            "nothing is left to happen in the simulation"
            if left is None
            else f"the next event is at t={left}"
        )
        raise BlockedForeverError(
            f"blocked forever: waited from t={start} to t={self._sim.now()} (the {self.horizon} s horizon)"
            f" for {describe(condition)}, which never held; {why}"
        )


class OpenFile(Protocol):
    """What a descriptor refers to (a socket, an epoll instance), as select/poll/epoll see it."""

    def poll_mask(self) -> int:
        """The ``POLL*`` bits that hold now (Linux values, see :mod:`refstack.select`)."""

    @property
    def activity(self) -> int:
        """A counter bumped on anything that could wake a waiter (edge-triggered epoll)."""

    @property
    def wake_events(self) -> int:
        """The ``POLL*`` bits an ``activity`` bump can signal (Linux's keyed wake-ups)."""

    def release(self) -> None:
        """The last descriptor referring to this file was closed."""


class Runtime:
    """A stack, a driver and a descriptor table: the "process" the socket API runs in."""

    def __init__(self, stack: Stack, driver: Driver, *, name: str | None = None) -> None:
        self.stack = stack
        self.driver = driver
        self.name = name if name is not None else stack.name
        self._files: dict[int, OpenFile] = {}
        self._refs: dict[int, int] = {}  # id(file) -> descriptors referring to it
        self._free: list[int] = []  # heap of released descriptors below _next
        self._next = FIRST_FD

    # --- time -------------------------------------------------------------------------
    def now(self) -> float:
        return self.driver.now()

    def wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        return self.driver.wait_until(condition, timeout)

    # --- descriptors ------------------------------------------------------------------
    def install(self, file: OpenFile) -> int:
        """A new descriptor for ``file``: the lowest one free, as POSIX requires."""
        fd = heapq.heappop(self._free) if self._free else self._next
        if fd == self._next:
            self._next += 1
        self._files[fd] = file
        self._refs[id(file)] = self._refs.get(id(file), 0) + 1
        return fd

    def dup(self, fd: int) -> int:
        """Another descriptor for the file behind ``fd`` (``dup(2)``)."""
        return self.install(self.file(fd))

    def lookup(self, fd: int) -> OpenFile | None:
        """The open file behind ``fd``, or None when ``fd`` is not open."""
        return self._files.get(fd)

    def is_open(self, file: OpenFile) -> bool:
        """Whether some descriptor still refers to ``file``."""
        return id(file) in self._refs

    def file(self, fd: int) -> OpenFile:
        """The open file behind ``fd``; ``OSError(EBADF)`` when it is not open."""
        file = self._files.get(fd)
        if file is None:
            raise _ebadf()
        return file

    def close(self, fd: int) -> None:
        """Close ``fd``; the file is released when its last descriptor goes."""
        file = self._files.pop(fd, None)
        if file is None:
            raise _ebadf()
        heapq.heappush(self._free, fd)
        left = self._refs[id(file)] - 1
        if left:
            self._refs[id(file)] = left
        else:
            del self._refs[id(file)]
            file.release()

    def fds(self) -> dict[int, OpenFile]:
        """The open descriptors, lowest first (a copy)."""
        return dict(sorted(self._files.items()))

    def __repr__(self) -> str:
        return f"<Runtime {self.name} t={self.now()} fds={sorted(self._files)}>"


def _ebadf() -> OSError:
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


# --- the default runtime ------------------------------------------------------------------
_current: Runtime | None = None


def current() -> Runtime:
    """The default runtime; ``RuntimeError`` when none is set."""
    if _current is None:
        raise RuntimeError(
            "no current refstack runtime: pass runtime=... or set one with"
            " refstack.runtime.set_current(rt) / `with refstack.runtime.use(rt):`"
        )
    return _current


def set_current(runtime: Runtime | None) -> Runtime | None:
    """Make ``runtime`` the default (None: no default); returns the previous one."""
    global _current
    previous, _current = _current, runtime
    return previous


@contextmanager
def use(runtime: Runtime) -> Iterator[Runtime]:
    """``with use(rt):`` makes ``rt`` the default runtime for the block, then restores the previous."""
    previous = set_current(runtime)
    try:
        yield runtime
    finally:
        set_current(previous)
