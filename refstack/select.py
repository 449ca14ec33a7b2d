"""``select``, ``poll`` and ``epoll`` over refstack descriptors, as Python's :mod:`select` on Linux.

Readiness comes from the open file behind each descriptor (:class:`~refstack.runtime.OpenFile`):
``poll_mask()`` gives the ``POLL*`` bits that hold now, computed from the socket core as
Linux's ``udp_poll``/``tcp_poll`` do, and ``activity`` counts wake-ups.  Waiting is the
runtime driver's ``wait_until`` with the call's timeout; in virtual time a ``select``
returns at the exact instant the datagram that makes it ready arrives, and a timeout of 0
never moves time (events due at the current instant still run).

Linux semantics kept here:

- ``POLLERR`` and ``POLLHUP`` are reported whether or not they were asked for;
  ``select`` counts them as readable (and ``POLLERR`` as writable), as
  ``fs/select.c``'s ``POLLIN_SET``/``POLLOUT_SET`` do; its exceptional set is ``POLLPRI``.
- ``poll`` reports ``POLLNVAL`` for a registered descriptor that is not open.
- ``epoll`` is level-triggered by default.  With ``EPOLLET`` a descriptor is reported
  when a wake-up put it on the ready list since it was last reported: its readiness
  gained a bit, or its ``activity`` moved with a kind of event it waits for (a datagram
  arriving wakes ``EPOLLIN`` waiters, not ``EPOLLOUT`` ones, as Linux's keyed wake-ups).
  Readiness is observed whenever the epoll instance is looked at, which under the
  virtual driver is before every simulation step of a wait.
- ``EPOLLONESHOT`` disables a registration after one report until ``modify``;
  ``modify`` (and ``register``) report current readiness again, even edge-triggered.
- A closed file leaves every epoll interest list silently; level-triggered
  descriptors that stay ready are reported round-robin when ``maxevents`` cuts the list.

Descriptors are per runtime.  Socket objects carry their runtime; a bare ``int`` is
looked up in the runtime of the sockets beside it (``select``), of the poll object
(given, or taken from the first socket registered) or in :func:`refstack.runtime.current`.
"""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Iterable
from typing import Final, Protocol, TypeVar

from . import runtime as _runtime
from .runtime import Condition, Driver, OpenFile, Runtime

# Linux values (include/uapi/asm-generic/poll.h, include/uapi/linux/eventpoll.h).
POLLIN: Final = 0x001
POLLPRI: Final = 0x002
POLLOUT: Final = 0x004
POLLERR: Final = 0x008
POLLHUP: Final = 0x010
POLLNVAL: Final = 0x020
POLLRDNORM: Final = 0x040
POLLRDBAND: Final = 0x080
POLLWRNORM: Final = 0x100
POLLWRBAND: Final = 0x200
POLLMSG: Final = 0x400
POLLRDHUP: Final = 0x2000

EPOLLIN: Final = POLLIN
EPOLLPRI: Final = POLLPRI
EPOLLOUT: Final = POLLOUT
EPOLLERR: Final = POLLERR
EPOLLHUP: Final = POLLHUP
EPOLLRDNORM: Final = POLLRDNORM
EPOLLRDBAND: Final = POLLRDBAND
EPOLLWRNORM: Final = POLLWRNORM
EPOLLWRBAND: Final = POLLWRBAND
EPOLLMSG: Final = POLLMSG
EPOLLRDHUP: Final = POLLRDHUP
EPOLLEXCLUSIVE: Final = 1 << 28
EPOLLWAKEUP: Final = 1 << 29
EPOLLONESHOT: Final = 1 << 30
EPOLLET: Final = 1 << 31
EPOLL_CLOEXEC: Final = 0o2000000

error = OSError

_FD_SETSIZE: Final = 1024
_SELECT_IN: Final = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR  # fs/select.c POLLIN_SET
_SELECT_OUT: Final = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR  # POLLOUT_SET
_SELECT_EX: Final = POLLPRI  # POLLEX_SET


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


FileDescriptorLike = int | _HasFileno
_T = TypeVar("_T", bound=FileDescriptorLike)


def _oserror(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def _fd_of(obj: FileDescriptorLike) -> int:
    """The descriptor number of an int or of an object with ``fileno()``, checked as CPython does."""
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise TypeError("argument must be an int, or have a fileno() method.")
        fd = fileno()
        if not isinstance(fd, int):
            raise TypeError("fileno() returned a non-integer")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def _runtime_of(obj: object) -> Runtime | None:
    rt = getattr(obj, "runtime", None)
    return rt if isinstance(rt, Runtime) else None


# --- timeouts, rounded up to the unit of each call as CPython and Linux do ---------------------
def _ceil_ns(seconds: float) -> int:
    return math.ceil(seconds * 1e9)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _seconds_arg(timeout: float | None, what: str) -> float:
    try:
        value = float(timeout)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a float or None") from None
    if math.isnan(value):
        raise ValueError("Invalid value NaN (not a number)")
    return value


def _select_timeout(timeout: float | None) -> float | None:
    """select: seconds, rounded up to the microsecond (a ``struct timeval``)."""
    if timeout is None:
        return None
    value = _seconds_arg(timeout, "timeout")
    if value < 0:
        raise ValueError("timeout must be non-negative")
    return _ceil_div(_ceil_ns(value), 1000) / 1e6


def _ms_timeout(ms: float) -> float | None:
    """A millisecond timeout for poll/epoll_wait: negative blocks, else rounded up to 1 ms."""
    if math.isinf(ms) and ms > 0:
        return None
    whole = _ceil_div(_ceil_ns(ms / 1000), 1_000_000)
    return None if whole < 0 else whole / 1000


def _common_driver(runtimes: Iterable[Runtime]) -> Driver:
    drivers = {id(rt.driver): rt.driver for rt in runtimes}
    if len(drivers) != 1:
        raise ValueError("the descriptors belong to runtimes that do not share one driver")
    return next(iter(drivers.values()))


# --- select ------------------------------------------------------------------------------------
def select(
    rlist: Iterable[_T], wlist: Iterable[_T], xlist: Iterable[_T], timeout: float | None = None
) -> tuple[list[_T], list[_T], list[_T]]:
    """Wait until some of the descriptors are ready; returns the ready subsets of the three lists.

    ``timeout`` in seconds (None: no limit).  Entries are returned as given (objects or ints).
    """
    wait = _select_timeout(timeout)
    lists = (list(rlist), list(wlist), list(xlist))
    everything = [obj for group in lists for obj in group]
    owners = [rt for obj in everything if (rt := _runtime_of(obj)) is not None]
    plain = owners[0] if owners else None
    if plain is None:
        plain = _runtime.current()
    entries: list[list[tuple[_T, OpenFile]]] = []
    for group in lists:
        resolved = []
        for obj in group:
            fd = _fd_of(obj)
            rt = _runtime_of(obj) or plain
            resolved.append((obj, rt.file(fd)))
        entries.append(resolved)
    driver = _common_driver([*owners, plain])
    bits = (_SELECT_IN, _SELECT_OUT, _SELECT_EX)

    def scan() -> tuple[list[_T], list[_T], list[_T]]:
        r, w, x = (
            [obj for obj, f in group if f.poll_mask() & mask]
            for group, mask in zip(entries, bits, strict=True)
        )
        return r, w, x

    ready = scan()
    if any(ready):
        return ready
    names = ",".join(str(_fd_of(obj)) for obj in everything)
    driver.wait_until(Condition(f"select([{names}]) to find a descriptor ready", lambda: any(scan())), wait)
    return scan()


# --- poll --------------------------------------------------------------------------------------
class poll:  # noqa: N801 - the name of the object Python's select.poll() returns
    """``select.poll()``: register descriptors with event masks, then ``poll(timeout_ms)``."""

    def __init__(self, *, runtime: Runtime | None = None) -> None:
        self._rt = runtime
        self._fds: dict[int, int] = {}

    def _bind(self, obj: FileDescriptorLike) -> int:
        fd = _fd_of(obj)
        rt = _runtime_of(obj)
        if self._rt is None:
            self._rt = rt if rt is not None else _runtime.current()
        elif rt is not None and rt is not self._rt:
            raise ValueError(f"{obj!r} belongs to runtime {rt.name}, this poll object to {self._rt.name}")
        return fd

    def register(self, fd: FileDescriptorLike, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        """Watch ``fd`` for ``eventmask`` (registering again replaces the mask)."""
        if not 0 <= eventmask <= 0xFFFF:
            raise OverflowError("Python int too large for C unsigned short")
        self._fds[self._bind(fd)] = eventmask

    def modify(self, fd: FileDescriptorLike, eventmask: int) -> None:
        number = self._bind(fd)
        if number not in self._fds:
            raise _oserror(errno.ENOENT)
        self.register(number, eventmask)

    def unregister(self, fd: FileDescriptorLike) -> None:
        number = _fd_of(fd)
        if number not in self._fds:
            raise KeyError(number)
        del self._fds[number]

    def _scan(self, rt: Runtime) -> list[tuple[int, int]]:
        out = []
        for fd, events in self._fds.items():
            file = rt.lookup(fd)
            revents = POLLNVAL if file is None else file.poll_mask() & (events | POLLERR | POLLHUP)
            if revents:
                out.append((fd, revents))
        return out

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """The ``(fd, revents)`` ready now, or after waiting up to ``timeout`` milliseconds
        (None or negative: no limit)."""
        wait = None if timeout is None else _ms_timeout(_seconds_arg(timeout, "timeout"))
        rt = self._rt if self._rt is not None else _runtime.current()
        ready = self._scan(rt)
        if ready:
            return ready
        fds = ",".join(map(str, self._fds))
        condition = Condition(f"poll([{fds}]) to find a descriptor ready", lambda: bool(self._scan(rt)))
        rt.wait_until(condition, wait)
        return self._scan(rt)


# --- epoll -------------------------------------------------------------------------------------
class _Interest:
    """One entry of an epoll interest list (Linux's ``struct epitem``)."""

    __slots__ = ("armed", "events", "file", "seen_activity", "seen_mask")

    def __init__(self, file: OpenFile, events: int) -> None:
        self.file = file
        self.events = events
        self.armed = True  # False after an EPOLLONESHOT report, until modify
        self.seen_mask = 0
        self.seen_activity = file.activity

    def mask(self) -> int:
        if not self.armed:
            return 0
        return self.file.poll_mask() & (self.events | EPOLLERR | EPOLLHUP)


class _EpollFile:
    """The kernel side of an epoll instance: the interest list and the ready list."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self.items: dict[int, _Interest] = {}
        self.ready: dict[int, None] = {}  # an ordered set of descriptors, in wake-up order
        self.wakeups = 0

    # --- the OpenFile interface (an epoll descriptor can itself be polled) ----------------
    def poll_mask(self) -> int:
        return POLLIN | POLLRDNORM if self.has_ready() else 0

    @property
    def activity(self) -> int:
        self.observe()
        return self.wakeups

    @property
    def wake_events(self) -> int:
        return POLLIN | POLLRDNORM

    def release(self) -> None:
        self.items.clear()
        self.ready.clear()

    # --- the ready list -------------------------------------------------------------------
    def arm(self, fd: int, item: _Interest) -> None:
        """register/modify: report current readiness (Linux ep_insert/ep_modify)."""
        self.items[fd] = item
        item.armed = True
        mask = item.mask()
        item.seen_mask, item.seen_activity = mask, item.file.activity
        if mask and fd not in self.ready:
            self.ready[fd] = None
            self.wakeups += 1

    def observe(self) -> None:
        """Deliver the wake-ups since the last look (Linux's ep_poll_callback)."""
        for fd, item in list(self.items.items()):
            if not self._rt.is_open(item.file):  # closing the file removes it everywhere
                del self.items[fd]
                self.ready.pop(fd, None)
                continue
            mask = item.mask()
            activity = item.file.activity
            woken = bool(mask & ~item.seen_mask) or (
                activity != item.seen_activity and bool(mask & item.file.wake_events)
            )
            if mask and (woken or not item.events & EPOLLET) and fd not in self.ready:
                self.ready[fd] = None
                self.wakeups += 1
            item.seen_mask, item.seen_activity = mask, activity

    def has_ready(self) -> bool:
        self.observe()
        return any(fd in self.items and self.items[fd].mask() for fd in self.ready)

    def collect(self, maxevents: int) -> list[tuple[int, int]]:
        """Report and consume (Linux's ep_send_events)."""
        self.observe()
        out: list[tuple[int, int]] = []
        for fd in list(self.ready):
            if len(out) >= maxevents:
                break
            del self.ready[fd]
            item = self.items.get(fd)
            mask = item.mask() if item is not None else 0
            if item is None or not mask:
                continue
            out.append((fd, mask))
            if item.events & EPOLLONESHOT:
                item.armed = False
            elif not item.events & EPOLLET:
                self.ready[fd] = None  # level-triggered: back on the tail of the ready list
        return out


class epoll:  # noqa: N801 - the name of Python's select.epoll
    """``select.epoll()``: an interest list with level- or edge-triggered reporting."""

    def __init__(self, sizehint: int = -1, flags: int = 0, *, runtime: Runtime | None = None) -> None:
        if sizehint != -1 and sizehint <= 0:
            raise ValueError("negative sizehint")
        self._rt = runtime if runtime is not None else _runtime.current()
        self._file = _EpollFile(self._rt)
        self._fd = self._rt.install(self._file)

    @property
    def runtime(self) -> Runtime:
        return self._rt

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _check(self) -> None:
        if self._fd < 0:
            raise ValueError("I/O operation on closed epoll object")

    def close(self) -> None:
        """Close the epoll descriptor (idempotent)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self._rt.close(fd)

    def fileno(self) -> int:
        self._check()
        return self._fd

    def __enter__(self) -> epoll:
        self._check()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _target(self, obj: FileDescriptorLike) -> tuple[int, OpenFile]:
        self._check()
        fd = _fd_of(obj)
        rt = _runtime_of(obj)
        if rt is not None and rt is not self._rt:
            raise ValueError(f"{obj!r} belongs to runtime {rt.name}, this epoll object to {self._rt.name}")
        file = self._rt.file(fd)
        if file is self._file:
            raise _oserror(errno.EINVAL)
        return fd, file

    def _registered(self, fd: int, file: OpenFile) -> _Interest | None:
        self._file.observe()  # drops entries of closed files
        item = self._file.items.get(fd)
        return item if item is not None and item.file is file else None

    def register(self, fd: FileDescriptorLike, eventmask: int = EPOLLIN | EPOLLPRI | EPOLLOUT) -> None:
        """Add ``fd`` with ``eventmask``; ``FileExistsError`` if it is registered already."""
        number, file = self._target(fd)
        if self._registered(number, file) is not None:
            raise _oserror(errno.EEXIST)
        self._file.arm(number, _Interest(file, eventmask & 0xFFFFFFFF))

    def modify(self, fd: FileDescriptorLike, eventmask: int) -> None:
        """Change the mask (re-arming a one-shot registration); ``FileNotFoundError`` if absent."""
        number, file = self._target(fd)
        item = self._registered(number, file)
        if item is None:
            raise _oserror(errno.ENOENT)
        item.events = eventmask & 0xFFFFFFFF
        self._file.ready.pop(number, None)
        self._file.arm(number, item)

    def unregister(self, fd: FileDescriptorLike) -> None:
        number, file = self._target(fd)
        if self._registered(number, file) is None:
            raise _oserror(errno.ENOENT)
        del self._file.items[number]
        self._file.ready.pop(number, None)

    def poll(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[int, int]]:
        """``(fd, events)`` pairs, waiting up to ``timeout`` seconds (None or negative: no limit)."""
        self._check()
        if maxevents == -1:
            maxevents = _FD_SETSIZE - 1
        elif maxevents < 1:
            raise ValueError(f"maxevents must be greater than 0, got {maxevents}")
        wait = None if timeout is None else _ms_timeout(_seconds_arg(timeout, "timeout") * 1000)
        ready = self._file.collect(maxevents)
        if ready:
            return ready
        fds = ",".join(map(str, self._file.items))
        condition = Condition(f"epoll fd {self._fd} ([{fds}]) to have an event", self._file.has_ready)
        self._rt.wait_until(condition, wait)
        return self._file.collect(maxevents)

    def __repr__(self) -> str:
        return f"<refstack.select.epoll fd={self._fd} registered={sorted(self._file.items)}>"
