"""Readiness of refstack sockets on real file descriptors, for code that waits on fds.

A refstack socket has no kernel descriptor, yet ``select``/``poll``/``epoll``/``selectors``
(the real ones: ``socketserver`` registers ``fileno()`` with a ``PollSelector``) must see it
become readable and writable.  Each shimmed socket therefore owns a :class:`Signal`: one end
(``app``) of an ``AF_UNIX``/``SOCK_DGRAM`` socket pair, whose descriptor is what the shim's
``fileno()`` returns.  The kernel reports on that descriptor exactly the two bits we set:

- **readable** (``POLLIN``) while one datagram sits in ``app``'s receive queue: ``peer``
  sends one octet to set it, ``app`` reads it back to clear it;
- **writable** (``POLLOUT``) unless ``app`` has a datagram of :data:`STUFFING` octets
  outstanding in ``peer``'s queue: ``app``'s send buffer is pinned to the minimum
  (``SO_SNDBUF`` 1 -> 4608), so ``unix_writable`` (``wmem_alloc * 4 <= sndbuf``) is false
  while it is queued; ``peer`` reads it to make ``app`` writable again.

So all four combinations exist, level-triggered, and edge-triggered epoll sees each
transition.  The mapping from a refstack socket's ``poll_mask()`` is ``fs/select.c``'s:
readable = ``POLLIN|POLLRDNORM|POLLRDBAND|POLLHUP|POLLERR``, writable =
``POLLOUT|POLLWRNORM|POLLWRBAND|POLLERR``.  (``POLLPRI``, select's exceptional set,
has no carrier: urgent data shows only through refstack.select.)

:class:`ShimDriver` keeps the signals true: its loop thread re-reads every registered
socket's mask after each batch (timers and frames change readiness there), and the shim
re-reads one socket's mask after each call the application makes on it (``recv`` draining
the buffer makes it unreadable).  A syscall happens only when a bit changes.
"""

from __future__ import annotations

import contextlib
import os
import socket as _pysocket
import threading
from collections.abc import Callable
from typing import Any, Final

from .. import select as rselect
from ..tuntap import RealTimeDriver

__all__ = ["READABLE", "STUFFING", "WRITABLE", "ShimDriver", "Signal"]

READABLE: Final = rselect.POLLIN | rselect.POLLRDNORM | rselect.POLLRDBAND | rselect.POLLHUP | rselect.POLLERR
WRITABLE: Final = rselect.POLLOUT | rselect.POLLWRNORM | rselect.POLLWRBAND | rselect.POLLERR
STUFFING: Final = 2048
"""Octets of the datagram that makes ``app`` unwritable (> sndbuf/4, < sndbuf - 32)."""


class Signal:
    """A real descriptor (:meth:`fileno`) whose kernel readiness is set by :meth:`set`."""

    __slots__ = ("app", "peer", "readable", "writable")

    def __init__(self) -> None:
        self.app, self.peer = _pysocket.socketpair(_pysocket.AF_UNIX, _pysocket.SOCK_DGRAM)
        self.app.setsockopt(_pysocket.SOL_SOCKET, _pysocket.SO_SNDBUF, 1)
        self.app.setblocking(False)
        self.peer.setblocking(False)
        self.readable = False
        self.writable = True

    def fileno(self) -> int:
        return self.app.fileno()

    def set(self, readable: bool, writable: bool) -> None:
        """Make the descriptor report exactly ``readable``/``writable`` (syscalls on change only)."""
        if readable != self.readable:
            if readable:
                with contextlib.suppress(BlockingIOError):
                    self.peer.send(b"\0")
            else:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        self.app.recv(16)
            self.readable = readable
        if writable != self.writable:
            if writable:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        self.peer.recv(STUFFING)
            else:
                with contextlib.suppress(BlockingIOError):
                    self.app.send(bytes(STUFFING))
            self.writable = writable

    def close(self) -> None:
        self.app.close()
        self.peer.close()


class _SyncingCondition(threading.Condition):
    """The driver's condition variable, running a hook (under the lock) before each
    ``notify_all``: the loop thread notifies after every batch."""

    def __init__(self, lock: threading.RLock, hook: Callable[[], None]) -> None:
        super().__init__(lock)
        self._hook = hook

    def notify_all(self) -> None:
        self._hook()
        super().notify_all()


class ShimDriver(RealTimeDriver):
    """A :class:`RealTimeDriver` that mirrors refstack sockets' readiness on :class:`Signal`\\ s.

    No change to :mod:`refstack.tuntap`: the hook is the condition variable the loop thread
    already notifies after each batch, replaced by one that syncs the signals first.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cond = _SyncingCondition(self.lock, self.sync_all)
        self._signals: dict[int, tuple[int, Signal]] = {}  # signal fd -> (refstack fd, signal)
        self._orphans: list[tuple[Callable[[], None], Signal]] = []
        self.signal_syncs = 0

    def orphan(self, close: Callable[[], None], signal: Signal) -> None:
        """(Any thread, no lock: a garbage-collected shim socket.)  Close it at the loop's next
        safe point, as CPython closes a socket object nobody references any more."""
        self._orphans.append((close, signal))
        with contextlib.suppress(OSError):
            self.kick_loop()

    def kick_loop(self) -> None:
        """Make the loop thread run a batch (and so :meth:`sync_all`) soon."""
        if self._wake_fd >= 0:
            os.eventfd_write(self._wake_fd, 1)

    def register(self, refstack_fd: int, signal: Signal) -> None:
        """(Under the lock.)  Mirror refstack descriptor ``refstack_fd`` on ``signal``."""
        self._signals[signal.fileno()] = (refstack_fd, signal)
        self.sync(refstack_fd, signal)

    def unregister(self, signal: Signal) -> None:
        """(Under the lock.)"""
        self._signals.pop(signal.fileno(), None)

    def sync(self, refstack_fd: int, signal: Signal) -> None:
        """(Under the lock.)  Set ``signal`` from the socket's current ``poll_mask()``."""
        file = self.runtime.lookup(refstack_fd)
        if file is None:
            signal.set(True, True)  # closed under us: let the waiter find out (EBADF)
            return
        mask = file.poll_mask()
        if bool(mask & READABLE) != signal.readable or bool(mask & WRITABLE) != signal.writable:
            self.signal_syncs += 1
            signal.set(bool(mask & READABLE), bool(mask & WRITABLE))

    def sync_all(self) -> None:
        """(Under the lock, on the loop thread after every batch.)"""
        while self._orphans:
            close, signal = self._orphans.pop()
            self.unregister(signal)
            with contextlib.suppress(OSError):
                close()
            signal.close()
        for refstack_fd, signal in list(self._signals.values()):
            with contextlib.suppress(OSError):
                self.sync(refstack_fd, signal)
